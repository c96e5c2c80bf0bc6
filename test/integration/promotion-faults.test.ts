import { randomUUID } from "node:crypto";
import { ApiException, KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalRedis, type LocalRedis } from "../../src/cli/local-redis.ts";
import { agentQueue } from "../../src/core/agent-protocol.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { PROMOTION_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { testAgentSettings } from "../helpers/agent-settings.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { commentPayload, pushPayload } from "../helpers/payloads.ts";
import { botReplies } from "../helpers/promotion-agent.ts";
import { checkout, removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import type { FakeGitHub, FakeCheckRun } from "../helpers/fake-github.ts";

// Promotion under faults (issue 26): the app restarted during a soak and during a wait for
// approval, two app replicas on one Redis, Redis restarted during a soak. A soak's end is a delayed check in Redis; it is reached by
// moving the harness clock and running the checks queued up to it, so nothing here waits on time.

const OWNER = "sluice-promo-faults";
const REPO = "depot";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const suffix = randomUUID().slice(0, 6);
const ENVS = ["dev", "staging"] as const;
type Env = (typeof ENVS)[number];
const SOAK_MS = 10 * 60_000;
let kube: KubernetesObjectApi;
let nextSha = 1;
const sha = (): string => (nextSha++).toString(16).padStart(40, "f");

/** One promotion line (dev → staging, 10 minutes' soak): its repository, namespaces, agent and app replicas on one Redis database. */
interface Line {
  tag: string;
  target: { owner: string; repo: string; repoId: number; installation: number };
  ns: Record<Env, string>;
  agentNamespace: string;
  redisUrl: string;
  database: number;
  /** The app replicas started on the line's database, running or stopped; the first owns the fake GitHub. */
  replicas: { h: AppHarness; running: boolean }[];
  agent: RunningAgent;
  promotions: Queue;
  /** Staging's `approval` policy, when its deploys wait for one (YAML flow mapping). */
  approval?: string;
}

/** A line's app replicas and where they keep their data. */
type Replicas = Pick<Line, "tag" | "redisUrl" | "database" | "replicas">;

const lines: Line[] = [];
const github = (line: Replicas): FakeGitHub => first(line).github;
function first(line: Replicas): AppHarness {
  const r = line.replicas[0];
  if (!r) throw new Error(`line ${line.tag} has no app replica`);
  return r.h;
}

function config(line: Pick<Line, "ns" | "approval">): string {
  return `version: 1
environments:
  - name: dev
    path: envs/dev
    namespace: ${line.ns.dev}
  - name: staging
    path: envs/staging
    namespace: ${line.ns.staging}
    promotion: { after: dev, soak: 10m }
${line.approval ? `    approval: ${line.approval}\n` : ""}`;
}

function files(line: Line, version: string): Record<string, string> {
  const out: Record<string, string> = { ".github/sluice.yml": config(line) };
  for (const env of ENVS) {
    out[`envs/${env}/ns.yaml`] = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${line.ns[env]}\n`;
    out[`envs/${env}/cm.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`;
  }
  return out;
}

/** Starts one more app replica on the line's database (the first flushes it; the others keep it and share its fake GitHub and clock). */
async function addReplica(line: Replicas): Promise<AppHarness> {
  const existing = line.replicas[0]?.h;
  const h = await startHarness({
    redisUrl: line.redisUrl,
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: line.database,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    ...(existing ? { keepData: true, shared: existing } : {}),
  });
  line.replicas.push({ h, running: true });
  return h;
}

/** Stops one app replica, keeping its database and the fake GitHub. */
async function stopReplica(line: Replicas, h: AppHarness): Promise<void> {
  const r = line.replicas.find((x) => x.h === h);
  if (!r?.running) return;
  r.running = false;
  await h.app.stop();
  await h.redis.quit();
}

async function startLine(tag: string, repoId: number, redisUrl: string, database: number, approval?: string): Promise<Line> {
  const ns = Object.fromEntries(ENVS.map((e) => [e, `deploy-pf${tag}-${e}-${suffix}`])) as Record<Env, string>;
  const base: Omit<Line, "agent" | "promotions"> = {
    ...(approval ? { approval } : {}),
    tag,
    target: { owner: OWNER, repo: `${REPO}-${tag}`, repoId, installation: 62 },
    ns,
    agentNamespace: `sluice-pf${tag}-${suffix}`,
    redisUrl,
    database,
    replicas: [],
  };
  const h = await addReplica(base);
  h.github.addRepo(OWNER, base.target.repo, repoId);
  const initial = sha();
  await h.github.addCommit(OWNER, base.target.repo, initial, await checkout(undefined, { ".github/sluice.yml": config(base) }));
  h.github.setBranch(OWNER, base.target.repo, "main", initial);
  h.github.setPermission(OWNER, base.target.repo, "carol", "maintain");
  h.github.setPermission(OWNER, base.target.repo, "maya", "maintain");
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: base.agentNamespace } });
  const agentBase = {
    redisUrl: h.redisUrl,
    kubeconfigPath: inject("kubeconfigPath"),
    appPublicKey: appKeys.publicKey,
    agentPrivateKey: agentKeys.privateKey,
  };
  const settings = await testAgentSettings(agentBase, {
    SLUICE_AGENT_ENVIRONMENTS: ENVS.join(","),
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/${base.target.repo}`,
    SLUICE_AGENT_NAMESPACES: `deploy-pf${tag}-*`,
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: base.agentNamespace,
    SLUICE_DRIFT_INTERVAL_SECONDS: "0",
  });
  const line: Line = {
    ...base,
    agent: await startAgent(settings, { log: () => undefined, now: h.clock.read }),
    promotions: new Queue(PROMOTION_QUEUE, { connection: { url: h.redisUrl }, prefix: QUEUE_PREFIX }),
  };
  lines.push(line);
  return line;
}

async function stopLine(line: Line): Promise<void> {
  await line.promotions.close();
  await line.agent.stop();
  for (const r of [...line.replicas].reverse()) await stopReplica(line, r.h);
  await github(line).stop();
  const redis = new Redis(first(line).redisUrl, { maxRetriesPerRequest: null });
  await redis.flushdb();
  await redis.quit();
  for (const name of [...Object.values(line.ns), line.agentNamespace])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
}

/** Merges a new commit of `version` to main and delivers its push to each of `to` at once (the line's first replica by default). */
async function merge(line: Line, version: string, to: AppHarness[] = [first(line)]): Promise<string> {
  const id = sha();
  await github(line).addCommit(OWNER, line.target.repo, id, await checkout(undefined, files(line, version)));
  github(line).setBranch(OWNER, line.target.repo, "main", id);
  await Promise.all(to.map((h) => h.deliver("push", pushPayload(line.target, id))));
  return id;
}

const runs = (line: Line, commit: string, env: Env): FakeCheckRun[] =>
  [...github(line).checkRuns.values()].filter((r) => r.head_sha === commit && r.name === deployCheckName(env));
const titleOf = (line: Line, commit: string, env: Env): string | undefined => runs(line, commit, env).at(-1)?.output?.title ?? undefined;
const deployed = (line: Line, commit: string, env: Env) =>
  expect.poll(() => titleOf(line, commit, env), { timeout: 60_000, interval: 200 }).toMatch(/^Deployed/);

/** The moment a delayed promotion check is for, from its job id. */
const checkMoment = (id: string | undefined): number => Number(/-(\d+)$/.exec(id ?? "")?.[1] ?? 0);

/** The promotion checks queued for later, by the moment they are for. */
async function delayedChecks(line: Line): Promise<number[]> {
  return (await line.promotions.getDelayed()).map((j) => checkMoment(j.id)).sort((a, b) => a - b);
}

async function drained(line: Line): Promise<void> {
  await expect
    .poll(
      async () => {
        const counts = await line.promotions.getJobCounts("waiting", "active");
        return (counts.waiting ?? 0) + (counts.active ?? 0);
      },
      { timeout: 60_000, interval: 100 },
    )
    .toBe(0);
}

/** Moves the clock to `at` and runs, now, the promotion checks queued for moments up to it (and those they queue). */
async function reach(line: Line, at: number): Promise<void> {
  const clock = first(line).clock;
  if (clock.now < at) clock.now = at;
  for (let round = 0; round < 20; round++) {
    const due = (await line.promotions.getDelayed()).filter((job) => checkMoment(job.id) <= at);
    if (due.length === 0) return;
    for (const job of due) await job.promote();
    await drained(line);
  }
}

/** Merges `version`, waits for dev to deploy it and staging to soak it; returns the commit and the soak's end as queued. */
async function soaking(line: Line, version: string, to?: AppHarness[]): Promise<{ commit: string; ends: number }> {
  const commit = await merge(line, version, to);
  await deployed(line, commit, "dev");
  await expect.poll(() => titleOf(line, commit, "staging"), { timeout: 30_000 }).toMatch(/^Soaking in dev: ends \d\d:\d\d UTC$/);
  await expect.poll(() => delayedChecks(line), { timeout: 30_000 }).toHaveLength(1);
  const [ends = 0] = await delayedChecks(line);
  expect(ends).toBeGreaterThan(first(line).clock.now);
  return { commit, ends };
}

/** Pull request #1 of the line, by dave, merged as `commit`: what `/approve` is commented on. */
function mergedPull(line: Line, commit: string): void {
  github(line).setMergedPull(OWNER, line.target.repo, { number: 1, merge: commit, author: "dave" });
}

/** The version staging runs, if any. */
async function liveStaging(line: Line): Promise<string | undefined> {
  try {
    const live = (await kube.read({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: line.ns.staging } })) as {
      data?: Record<string, string>;
    };
    return live.data?.version;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

/** Staging asked once: one agent job, one Deployment, one deploy check run, which says it deployed. */
const once = { jobs: 1, deployments: 1, checkRuns: [expect.stringMatching(/^Deployed/)] };

/** What staging was asked for `commit`: agent jobs, GitHub Deployments, deploy check runs created. */
async function stagingAsks(line: Line, commit: string): Promise<{ jobs: number; deployments: number; checkRuns: (string | undefined)[] }> {
  const q = agentQueue("staging");
  const queue = new Queue(q.name, { connection: { url: first(line).redisUrl }, prefix: q.prefix });
  try {
    const jobs = await queue.getJobs(["waiting", "active", "delayed", "completed", "failed", "prioritized"]);
    return {
      jobs: jobs.filter((j) => j.id?.includes(commit)).length,
      deployments: github(line).deploymentsCreated.filter((d) => d.ref === commit && d.environment === "staging").length,
      checkRuns: runs(line, commit, "staging").map((r) => r.output?.title),
    };
  } finally {
    await queue.close();
  }
}

beforeAll(() => {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
});

afterAll(async () => {
  for (const line of lines) await stopLine(line);
  await removeCheckouts();
});

afterEach(() => {
  for (const line of lines) expect(github(line).violations).toEqual([]);
});

describe("promotion under faults", { timeout: 300_000 }, () => {
  let shared: Line;

  beforeAll(async () => {
    shared = await startLine("a", 9310, inject("redisUrl"), 17);
  });

  it("loses nothing and does not restart the soak's clock when the app restarts during a soak", async () => {
    const old = first(shared);
    const { commit, ends } = await soaking(shared, "r1");
    // The app goes away mid-soak, and a new one starts on the same Redis database five minutes later.
    await stopReplica(shared, old);
    old.clock.now = ends - SOAK_MS / 2;
    const next = await addReplica(shared);
    expect(await delayedChecks(shared)).toEqual([ends]);
    // The new app sees the push again (a redelivery) and checks: the soak still ends when it did.
    await next.deliver("push", pushPayload(shared.target, commit));
    await drained(shared);
    expect(await delayedChecks(shared)).toEqual([ends]);
    expect(titleOf(shared, commit, "staging")).toMatch(/^Soaking in dev/);
    // A moment before the end, nothing; at the end, staging gets the commit from the new app.
    await reach(shared, ends - 1);
    expect(titleOf(shared, commit, "staging")).toMatch(/^Soaking in dev/);
    await reach(shared, ends);
    await deployed(shared, commit, "staging");
    expect(await stagingAsks(shared, commit)).toEqual(once);
  });

  it("promotes once when two app replicas on one Redis check the same soak's end", async () => {
    const running = shared.replicas.filter((r) => r.running).map((r) => r.h);
    const [a, b = await addReplica(shared)] = running;
    if (!a) throw new Error("no running app replica");
    // GitHub's push reaches both replicas at once (a redelivery while the first is being handled).
    const { commit, ends } = await soaking(shared, "r2", [b, a]);
    await drained(shared);
    expect(await delayedChecks(shared)).toEqual([ends]);
    // At the soak's end, the queued check runs, and each replica is asked to check again at once.
    a.clock.now = ends;
    const [due] = await shared.promotions.getDelayed();
    await Promise.all([
      due?.promote(),
      a.deliver("push", pushPayload(shared.target, commit)),
      b.deliver("push", pushPayload(shared.target, commit)),
      a.deliver("push", pushPayload(shared.target, commit)),
      b.deliver("push", pushPayload(shared.target, commit)),
    ]);
    await drained(shared);
    await expect.poll(() => runs(shared, commit, "staging")[0]?.output?.title, { timeout: 60_000 }).toMatch(/^Deployed/);
    await reach(shared, ends + SOAK_MS);
    expect(await stagingAsks(shared, commit)).toEqual(once);
  });
});

describe("promotion waiting for approval", { timeout: 300_000 }, () => {
  let gated: Line;
  let nextComment = 81_000;

  beforeAll(async () => {
    gated = await startLine("c", 9312, inject("redisUrl"), 19, "{ required: 2, from: maintain, notAuthor: false, timeout: 1h }");
  });

  it("keeps an approval and the approval's timeout across an app restart: the second approval after it deploys", async () => {
    const { commit, ends } = await soaking(gated, "g1");
    mergedPull(gated, commit);
    await reach(gated, ends);
    await expect.poll(() => titleOf(gated, commit, "staging"), { timeout: 60_000 }).toBe("Waiting for approval (0 of 2)");
    // The approval's timeout is a check queued for an hour after the wait began.
    await expect.poll(async () => (await delayedChecks(gated)).length, { timeout: 30_000 }).toBe(1);
    const [timesOut = 0] = await delayedChecks(gated);
    expect(timesOut).toBeGreaterThanOrEqual(ends + 3600_000);
    expect(timesOut).toBeLessThanOrEqual(first(gated).clock.now + 3600_000);
    const old = first(gated);
    await old.deliver("issue_comment", commentPayload(gated.target, 1, nextComment++, "/approve staging", "carol"));
    await expect.poll(() => titleOf(gated, commit, "staging"), { timeout: 30_000 }).toBe("Waiting for approval (1 of 2)");
    // The app goes away while the deploy waits, and a new one starts on the same Redis half an hour later.
    await stopReplica(gated, old);
    old.clock.now = ends + 1800_000;
    const next = await addReplica(gated);
    expect(await delayedChecks(gated)).toEqual([timesOut]);
    expect(await liveStaging(gated)).toBeUndefined();
    // carol's approval was kept: maya's is the second, and staging deploys.
    await next.deliver("issue_comment", commentPayload(gated.target, 1, nextComment++, "/approve staging", "maya"));
    await deployed(gated, commit, "staging");
    expect(await liveStaging(gated)).toBe("g1");
    expect(botReplies(next, 1).at(-1)).toMatch(/^@maya approved the deploy of `\w{7}` to `staging`: 2 of 2 approvals; deploying now\.$/);
    expect(await stagingAsks(gated, commit)).toEqual(once);
  });
});

describe("promotion when Redis restarts", { timeout: 300_000 }, () => {
  let own: Line;
  let redis: LocalRedis;
  let redisDir = "";

  beforeAll(async () => {
    redisDir = await tempDir("sluice-promotion-faults-");
    redis = await startLocalRedis(redisDir, process.env.PATH);
    own = await startLine("b", 9311, redis.url, 0, "{ required: 1, from: maintain, notAuthor: false }");
  });

  afterAll(async () => {
    const at = lines.indexOf(own);
    if (at >= 0) {
      lines.splice(at, 1);
      await stopLine(own);
    }
    await redis.stop();
  });

  it("keeps the soak's end and then the wait for approval across Redis restarts (AOF)", async () => {
    const { commit, ends } = await soaking(own, "p1");
    // Redis stops (writing its AOF) and starts again on the same port and data, mid-soak.
    const port = Number(new URL(redis.url).port);
    const restart = async () => {
      await redis.stop();
      redis = await startLocalRedis(redisDir, process.env.PATH, { port });
    };
    await restart();
    await expect.poll(() => delayedChecks(own), { timeout: 30_000 }).toEqual([ends]);
    await reach(own, ends - 1);
    expect(titleOf(own, commit, "staging")).toMatch(/^Soaking in dev/);
    // At the soak's end, staging's deploy waits for an approval; Redis restarts during the wait.
    await reach(own, ends);
    await expect.poll(() => titleOf(own, commit, "staging"), { timeout: 60_000 }).toBe("Waiting for approval (0 of 1)");
    mergedPull(own, commit);
    await restart();
    await expect.poll(async () => (await fetch(`${first(own).url}/readyz`)).status, { timeout: 30_000 }).toBe(200);
    await first(own).deliver("issue_comment", commentPayload(own.target, 1, 82_000, "/approve staging", "carol"));
    await deployed(own, commit, "staging");
    expect(await liveStaging(own)).toBe("p1");
    expect(await stagingAsks(own, commit)).toEqual(once);
  });
});
