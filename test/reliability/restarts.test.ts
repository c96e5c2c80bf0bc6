import { createHash, randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startLocalRedis, type LocalRedis } from "../../src/cli/local-redis.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { checkout, tempDir } from "../helpers/checkouts.ts";
import { startStack, type Stack } from "../helpers/e2e-stack.ts";
import { pullRequestPayload, pushPayload } from "../helpers/payloads.ts";

// Redis restarted under the app and the agent, twice (once with a deploy running, once with one
// waiting), and the app killed during a deploy: nothing is lost, nobody is restarted by hand, and
// what was in flight completes. A Redis of the test's own, with AOF as README asks.

const OWNER = "sluice-restarts";
const REPO = "store";
const target = { owner: OWNER, repo: REPO, repoId: 9400, installation: 44 };
const suffix = randomUUID().slice(0, 6);
const ns = `restart-${suffix}`;
let redis: LocalRedis;
let redisDir = "";
let stack: Stack | undefined;
let nextSha = 1;
let nextPull = 1;
const sha = (): string => createHash("sha1").update(`restart-${suffix}-${nextSha++}`).digest("hex");
const s = (): Stack => {
  if (!stack) throw new Error("the stack is not running");
  return stack;
};

const config = `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${ns}\n`;
const files = (version: string): Record<string, string> => ({
  ".github/sluice.yml": config,
  "manifests/namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  "manifests/web.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`,
});

async function commit(version: string): Promise<string> {
  const id = sha();
  await s().github.addCommit(OWNER, REPO, id, await checkout(undefined, files(version)));
  return id;
}
async function push(version: string): Promise<string> {
  const id = await commit(version);
  s().github.setBranch(OWNER, REPO, "main", id);
  await s().deliver("push", pushPayload(target, id));
  return id;
}
async function openPull(version: string): Promise<number> {
  const number = nextPull++;
  const head = await commit(version);
  await s().deliver("pull_request", pullRequestPayload(target, "opened", number, s().github.branch(OWNER, REPO, "main") ?? "", head));
  return number;
}
const run = (commit: string) =>
  [...s().github.checkRuns.values()].find((r) => r.head_sha === commit && r.name === "sluice/deploy (production)");
const deployed = (commit: string, timeout = 120_000) =>
  expect.poll(() => run(commit)?.conclusion, { timeout, interval: 200 }).toBe("success");
const commented = (numbers: number[]) =>
  expect
    .poll(() => numbers.filter((n) => s().github.comments.some((c) => c.issue === n && c.body.includes(PREVIEW_MARKER))).length, {
      timeout: 120_000,
      interval: 200,
    })
    .toBe(numbers.length);

/** Stops Redis (it writes its AOF on the way down) and starts it again on the same port and data. */
async function restartRedis(downMs: number): Promise<void> {
  const port = Number(new URL(redis.url).port);
  await redis.stop();
  await new Promise((resolve) => setTimeout(resolve, downMs));
  redis = await startLocalRedis(redisDir, process.env.PATH, { port });
}

beforeAll(async () => {
  redisDir = await tempDir("sluice-restarts-");
  redis = await startLocalRedis(redisDir, process.env.PATH);
  stack = await startStack({
    ...target,
    database: 0,
    redisUrl: redis.url,
    environments: ["production"],
    namespaces: "restart-*",
    agentNamespace: `sluice-restart-${suffix}`,
    cleanup: [ns],
    agent: { SLUICE_DRIFT_INTERVAL_SECONDS: "0", SLUICE_AGENT_LOCK_SECONDS: "5" },
  });
  stack.github.setPermission(OWNER, REPO, "alice", "write");
});

afterAll(async () => {
  await stack?.stop();
  await redis.stop();
});

afterEach((context) => {
  expect(stack?.github.violations).toEqual([]);
  if (context.task.result?.state === "fail") console.error(stack?.output());
});

describe("restarts", { timeout: 600_000 }, () => {
  it("loses nothing when Redis restarts under a running deploy and open previews, and again under a waiting deploy", async () => {
    await deployed(await push("A"));
    const app = s().app;
    const agent = s().agent;
    // Running: a deploy and three previews in flight when Redis goes down.
    const b = await push("B");
    const pulls = [await openPull("P1"), await openPull("P2"), await openPull("P3")];
    await restartRedis(1_000);
    await deployed(b);
    await commented(pulls);
    // Waiting: the agent is away, a deploy waits on its queue, and Redis restarts.
    await agent?.stop();
    const c = await push("C");
    await expect.poll(() => run(c)?.status, { timeout: 60_000 }).toBe("in_progress");
    await restartRedis(1_000);
    await s().startAgent();
    await deployed(c);
    // The app was never restarted, and says it is ready again.
    expect(app.child.exitCode).toBeNull();
    await expect.poll(async () => (await fetch(`${s().appUrl}/readyz`)).status, { timeout: 30_000 }).toBe(200);
    console.log(
      "restarts: Redis restarted twice (a deploy and 3 previews running, then a deploy waiting): 0 jobs lost, no process restarted",
    );
  });

  it("lets another app instance finish a deploy's check run and Deployment after the app is killed mid-deploy", async () => {
    const d = await push("D");
    await expect.poll(() => run(d)?.status, { timeout: 60_000, interval: 50 }).toMatch(/queued|in_progress/);
    s().app.child.kill("SIGKILL");
    await expect.poll(() => s().app.child.signalCode, { timeout: 10_000 }).toBe("SIGKILL");
    const restarted = performance.now();
    await s().startApp();
    // The killed app's jobs are taken over once their locks lapse (BullMQ's 30 s, then its stalled check).
    await deployed(d, 240_000);
    // One check run and one Deployment: the new instance took over the dead one's, it made no second.
    // The Deployment comes with the deploy request's takeover, which may finish after the reports did.
    await expect.poll(() => s().github.deploymentsCreated.filter((x) => x.ref === d).length, { timeout: 120_000 }).toBe(1);
    const deployment = s().github.deploymentsCreated.find((x) => x.ref === d);
    await expect
      .poll(
        () =>
          s()
            .github.deploymentStatuses.filter((x) => x.deploymentId === deployment?.id)
            .map((x) => x.state),
        { timeout: 60_000 },
      )
      .toContain("success");
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect([...s().github.checkRuns.values()].filter((r) => r.head_sha === d && r.name === "sluice/deploy (production)")).toHaveLength(1);
    expect(s().github.deploymentsCreated.filter((x) => x.ref === d)).toHaveLength(1);
    console.log(
      `restarts: the app killed mid-deploy; a new instance completed the check run and the Deployment ${Math.round((performance.now() - restarted) / 1000)} s after it started`,
    );
  });
});
