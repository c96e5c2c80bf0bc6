import { createHash, randomUUID } from "node:crypto";
import { ApiException, type KubernetesObjectApi } from "@kubernetes/client-node";
import type { RedisClient } from "../../src/redis/connection.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { checkout } from "../helpers/checkouts.ts";
import { startStack, type Stack } from "../helpers/e2e-stack.ts";
import { FakeGitHub, type FakeCheckRun } from "../helpers/fake-github.ts";
import { checkRunActionPayload, commentPayload, pushPayload } from "../helpers/payloads.ts";

// The incident drill, end to end: `sluice app` and `sluice agent` as processes of their own, the
// real Redis and apiserver, and GitHub faked over HTTP against its OpenAPI description.

const OWNER = "sluice-e2e";
const REPO = "shop";
const REPO_ID = 9100;
const target = { owner: OWNER, repo: REPO, repoId: REPO_ID, installation: 41 };
const suffix = randomUUID().slice(0, 6);
const ns = { production: `deploy-e2e-prod-${suffix}`, staging: `deploy-e2e-stg-${suffix}` };
type Env = keyof typeof ns;

// Undefined until beforeAll has started it, which may fail half way.
let stack: Stack | undefined;
let github: FakeGitHub;
let redis: RedisClient;
let kube: KubernetesObjectApi;
let nextSha = 1;
let nextComment = 50_000;
/** Commit SHAs whose short forms differ, as real ones do. */
const sha = (): string => createHash("sha1").update(`${suffix}-${nextSha++}`).digest("hex");
const shas: Record<string, string> = {};

const config = `version: 1
environments:
  - name: production
    path: envs/production
    namespace: ${ns.production}
  - name: staging
    path: envs/staging
    namespace: ${ns.staging}
`;
/** The repository at a version: both environments deploy a ConfigMap that says which. */
function files(version: string): Record<string, string> {
  const out: Record<string, string> = { ".github/sluice.yml": config };
  for (const env of ["production", "staging"] as const) {
    out[`envs/${env}/namespace.yaml`] = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns[env]}\n`;
    out[`envs/${env}/config.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`;
  }
  return out;
}

/** Merges pull request `number` as commit `name` (whose files are `version`'s) and pushes main there. */
async function merge(number: number, name: string, version = name): Promise<string> {
  const parent = github.branch(OWNER, REPO, "main");
  const id = sha();
  shas[name] = id;
  await github.addCommit(OWNER, REPO, id, await checkout(undefined, files(version)), parent ? [parent] : []);
  github.setBranch(OWNER, REPO, "main", id);
  github.setMergedPull(OWNER, REPO, { number, merge: id, base: parent ?? id });
  await deliver("push", pushPayload(target, id));
  return id;
}

async function deliver(event: string, payload: unknown): Promise<void> {
  if (!stack) throw new Error("the stack is not running");
  await stack.deliver(event, payload);
}

async function comment(number: number, body: string, user = "alice"): Promise<void> {
  await deliver("issue_comment", commentPayload(target, number, nextComment++, body, user));
}

/** The bot's replies to commands on a pull request (not its deploy notices). */
const replies = (number: number): string[] =>
  github.comments.filter((c) => c.issue === number && c.user === "sluice[bot]" && c.body.startsWith("@")).map((c) => c.body);
const notices = (number: number): string[] =>
  github.comments.filter((c) => c.issue === number && c.user === "sluice[bot]" && !c.body.startsWith("@")).map((c) => c.body);
const runs = (commit: string, env: Env): FakeCheckRun[] =>
  [...github.checkRuns.values()].filter((r) => r.head_sha === commit && r.name === `sluice/deploy (${env})`);

/** Waits until `env` has `count` deploy check runs on `commit` and the newest is finished; returns it. */
async function finished(commit: string, env: Env, count = 1): Promise<FakeCheckRun> {
  await expect
    .poll(() => runs(commit, env).map((r) => r.status), { timeout: 90_000, interval: 200 })
    .toEqual(Array.from({ length: count }, () => "completed"));
  const run = runs(commit, env).at(-1);
  if (!run) throw new Error("no check run");
  expect([run.conclusion, run.output?.title]).toEqual(["success", expect.stringMatching(/^Deployed/)]);
  return run;
}

async function liveVersion(env: Env): Promise<string | undefined> {
  try {
    const live = (await kube.read({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: ns[env] } })) as {
      data?: Record<string, string>;
    };
    return live.data?.version;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

const live = (env: Env, version: string) => expect.poll(() => liveVersion(env), { timeout: 30_000 }).toBe(version);

beforeAll(async () => {
  stack = await startStack({
    owner: OWNER,
    repo: REPO,
    repoId: REPO_ID,
    database: 8,
    environments: ["production", "staging"],
    namespaces: "deploy-*",
    agentNamespace: `sluice-e2e-${suffix}`,
    cleanup: Object.values(ns),
    agent: { SLUICE_DRIFT_INTERVAL_SECONDS: "0" },
  });
  ({ github, redis, kube } = stack);
  github.setPermission(OWNER, REPO, "alice", "admin");
  github.setPermission(OWNER, REPO, "reader", "read");
});

afterAll(async () => {
  await stack?.stop();
});

afterEach((context) => {
  expect(github.violations).toEqual([]);
  if (context.task.result?.state === "fail") console.error(stack?.output());
});

describe("an incident, with the app and the agent as separate processes", { timeout: 240_000 }, () => {
  it("deploys merge A, then merge B, to production and staging", async () => {
    const a = await merge(1, "A");
    await finished(a, "production");
    await finished(a, "staging");
    const b = await merge(2, "B");
    await finished(b, "production");
    await finished(b, "staging");
    await live("production", "B");
    await live("staging", "B");
  });

  it("/rollback on B's pull request rolls both environments back to A from the agent's record, opens a revert pull request and holds", async () => {
    await comment(2, "/rollback");
    await expect.poll(() => replies(2).length, { timeout: 20_000 }).toBe(1);
    const [reply = ""] = replies(2);
    for (const env of ["production", "staging"])
      expect(reply).toContain(`- \`${env}\`: queued: roll back to \`${shas.A?.slice(0, 7)}\` from \`${shas.B?.slice(0, 7)}\``);
    expect(github.reactions.some((r) => r.content === "eyes")).toBe(true);
    // Git stays true: a revert pull request whose tree is A's, on top of the branch head.
    expect(github.pullsCreated).toEqual([expect.objectContaining({ head: `sluice/revert-${shas.B}`, base: "main" })]);
    const revert = github.pullsCreated[0];
    expect(reply).toContain(`revert pull request [#${revert?.number}]`);
    const revertCommit = github.commit(OWNER, REPO, github.branch(OWNER, REPO, `sluice/revert-${shas.B}`) ?? "");
    expect(revertCommit?.tree).toBe(github.commit(OWNER, REPO, shas.A ?? "")?.tree);
    expect(revertCommit?.parents).toEqual([shas.B]);
    await finished(shas.A ?? "", "production", 2);
    await finished(shas.A ?? "", "staging", 2);
    await live("production", "A");
    await live("staging", "A");
    // The Deployments say they are rollbacks; production is GitHub's production environment, staging is not.
    const deployments = github.calls("repos/create-deployment").map((c) => c.body as Record<string, unknown>);
    const rollbacks = deployments.filter((d) => String(d.description).startsWith("Rollback to"));
    expect(rollbacks.map((d) => [d.ref, d.environment, d.production_environment])).toEqual(
      expect.arrayContaining([
        [shas.A, "production", true],
        [shas.A, "staging", false],
      ]),
    );
    expect(rollbacks[0]?.description).toBe(`Rollback to ${shas.A?.slice(0, 7)} from ${shas.B?.slice(0, 7)} by alice`);
  });

  it("a merge of C while held gets a queued deploy check run that shows the hold, and is not applied", async () => {
    const c = await merge(3, "C");
    for (const env of ["production", "staging"] as const)
      await expect
        .poll(() => runs(c, env).map((r) => [r.status, r.output?.title]), { timeout: 60_000 })
        .toEqual([["queued", "Held by /rollback"]]);
    await expect.poll(() => notices(3).filter((r) => r.startsWith("⏸️")).length, { timeout: 20_000 }).toBe(2);
    expect(await liveVersion("production")).toBe("A");
    expect(await liveVersion("staging")).toBe("A");
  });

  it("/sync production releases production's hold and deploys C; staging stays held", async () => {
    await comment(3, "/sync production");
    await expect.poll(() => replies(3).filter((r) => r.includes("/sync")).length, { timeout: 20_000 }).toBe(1);
    const reply = replies(3).find((r) => r.includes("/sync")) ?? "";
    expect(reply).toMatch(
      new RegExp(`queued: deploy \`main\` at \`${shas.C?.slice(0, 7)}\` \\(\\[check run\\]\\(https://github\\.example/`),
    );
    expect(reply).toContain("releases the hold");
    await live("production", "C");
    // The held merge's check run is closed; the sync's is the one that deployed.
    await expect
      .poll(() => runs(shas.C ?? "", "production").map((r) => [r.status, r.conclusion]), { timeout: 30_000 })
      .toEqual([
        ["completed", "skipped"],
        ["completed", "success"],
      ]);
    expect(runs(shas.C ?? "", "staging").map((r) => [r.status, r.output?.title])).toEqual([["queued", "Held by /rollback"]]);
    expect(await liveVersion("staging")).toBe("A");
  });

  it("/rollback twice in a row rolls back twice: to the revision before C, then to B by SHA", async () => {
    await comment(3, "/rollback production");
    await expect.poll(() => replies(3).filter((r) => r.startsWith("@alice `/rollback`")).length, { timeout: 20_000 }).toBe(1);
    // The agent's report of that rollback, with its history, reaches the app before the next command.
    await finished(shas.A ?? "", "production", 3);
    await live("production", "A");
    await comment(3, `/rollback production to ${shas.B?.slice(0, 9)}`);
    await expect.poll(() => replies(3).filter((r) => r.startsWith("@alice `/rollback`")).length, { timeout: 20_000 }).toBe(2);
    expect(replies(3).filter((r) => r.startsWith("@alice `/rollback`"))[1]).toContain(
      `roll back to \`${shas.B?.slice(0, 7)}\` from \`${shas.A?.slice(0, 7)}\``,
    );
    await live("production", "B");
    await finished(shas.B ?? "", "production", 2);
    // A SHA the agent never deployed is refused with the revisions it keeps.
    await comment(3, "/rollback production to 0123456");
    await expect.poll(() => replies(3).filter((r) => r.includes("cannot roll back")).length, { timeout: 20_000 }).toBe(1);
    expect(replies(3).find((r) => r.includes("cannot roll back"))).toContain(`known: \`${shas.B?.slice(0, 7)}\` rollback`);
    expect(github.pullsCreated.map((p) => p.head)).toEqual([
      `sluice/revert-${shas.B}`,
      `sluice/revert-${shas.C}`,
      `sluice/rollback-to-${shas.B}`,
    ]);
  });

  it("the Roll back button refuses a read-only user and rolls back for an admin, with an audit line", async () => {
    const run = runs(shas.B ?? "", "production").at(-1);
    if (!run) throw new Error("no check run");
    expect(run.actions?.map((a) => a.identifier)).toEqual(["sync", "rollback"]);
    const before = github.checkRuns.size;
    await deliver("check_run", checkRunActionPayload(target, run, FakeGitHub.APP_ID, "rollback", "reader"));
    await expect
      .poll(() => github.checkRuns.get(run.id)?.output?.summary ?? "", { timeout: 20_000 })
      .toContain("**Roll back** pressed by @reader: refused");
    expect(github.checkRuns.size).toBe(before);
    await deliver("check_run", checkRunActionPayload(target, github.checkRuns.get(run.id) ?? run, FakeGitHub.APP_ID, "rollback", "alice"));
    await expect
      .poll(() => github.checkRuns.get(run.id)?.output?.summary ?? "", { timeout: 20_000 })
      .toContain(`**Roll back** pressed by @alice: \n- \`production\`: queued: roll back to \`${shas.A?.slice(0, 7)}\``);
    await live("production", "A");
  });

  it("merging the revert pull request releases the environments it covers and deploys them", async () => {
    const revert = github.pullsCreated[0];
    if (!revert) throw new Error("no revert pull request");
    // GitHub merges the revert: a merge commit with the revert's tree (A's files) on main. The
    // button's rollback (of B again) moved the same revert branch, so it covers production too.
    const d = await merge(revert.number, "D", "A");
    await finished(d, "staging");
    await finished(d, "production");
    await expect
      .poll(() => runs(shas.C ?? "", "staging").map((r) => [r.status, r.conclusion]), { timeout: 30_000 })
      .toEqual([["completed", "skipped"]]);
  });

  it("a Redis flush does not release a hold: the agent's record still holds production", async () => {
    await comment(2, "/rollback production");
    await expect.poll(() => replies(2).length, { timeout: 20_000 }).toBe(2);
    // main already has A's tree, so there is nothing to revert in Git.
    expect(replies(2)[1]).toContain(`already has \`${shas.A?.slice(0, 7)}\`'s tree, so no revert pull request`);
    await expect.poll(() => runs(shas.A ?? "", "production").every((r) => r.status === "completed"), { timeout: 60_000 }).toBe(true);
    await redis.flushdb();
    const e = await merge(6, "E");
    await finished(e, "staging");
    await expect
      .poll(() => runs(e, "production").map((r) => [r.status, r.output?.title]), { timeout: 60_000 })
      .toEqual([["queued", "Held by /rollback"]]);
    expect(await liveVersion("production")).toBe("A");
    await live("staging", "E");
  });
});
