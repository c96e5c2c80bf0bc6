import { randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DRIFT_LEASE_RENEW_MS, DriftLease } from "../../src/agent/drift-lease.ts";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { agentQueue, REPORT_QUEUE, type AgentJob } from "../../src/core/agent-protocol.ts";
import { generateSigningKeys, privateKeyFromPem, seal } from "../../src/core/signing.ts";
import { connectRedis, scanKeys, type RedisClient } from "../../src/redis/connection.ts";
import { mergeJob, sentReports } from "../helpers/agent-settings.ts";
import { ManualClock } from "../helpers/manual-clock.ts";

// Two agent replicas of one environment on the real Redis (database 19) and apiserver (issue 24):
// while the app's job signing key rotates they take jobs signed by either key, and only the one
// holding the environment's drift lease checks drift, which is decided by an injected clock.

const DATABASE = 19;
const OWNER = "leader-test";
const INTERVAL_MS = 60_000;
const suffix = randomUUID().slice(0, 8);
const environment = `leader-${suffix}`;
const agentNamespace = `sluice-leader-${suffix}`;
const namespace = `leader-${suffix}`;
const retiring = generateSigningKeys();
const next = generateSigningKeys();
const agentKeys = generateSigningKeys();
const clock = new ManualClock();
let redisUrl: string;
let redis: RedisClient;
let kube: KubernetesObjectApi;
let reports: Queue;
let deploys: Queue;
const agents: RunningAgent[] = [];

beforeAll(async () => {
  const url = new URL(inject("redisUrl"));
  url.pathname = `/${DATABASE}`;
  redisUrl = url.toString();
  redis = connectRedis(redisUrl);
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  reports = new Queue(REPORT_QUEUE.name, { connection: redis, prefix: REPORT_QUEUE.prefix });
  const q = agentQueue(environment);
  deploys = new Queue(q.name, { connection: redis, prefix: q.prefix });
  const settings = await loadAgentSettings({
    REDIS_URL: redisUrl,
    KUBECONFIG: inject("kubeconfigPath"),
    // The key being retired and its successor, one after the other, as README's rotation asks.
    SLUICE_APP_PUBLIC_KEY: `${retiring.publicKey}${next.publicKey}`,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: environment,
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/*=leader-*`,
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: agentNamespace,
    SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
    SLUICE_DRIFT_INTERVAL_SECONDS: String(INTERVAL_MS / 1000),
  });
  // Both replicas on one clock, with the jitter at its middle: each check is exactly one interval after the last.
  for (let i = 0; i < 2; i++)
    agents.push(await startAgent(settings, { now: clock.now, sleep: clock.sleep, random: () => 0.5, log: () => undefined }));
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await reports.close();
  await deploys.close();
  const keys = await scanKeys(redis, `{sluice-${environment}}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  for (const name of [agentNamespace, namespace])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
});

/** A deploy job of the environment, version `version` of one ConfigMap. */
function job(version: number): AgentJob {
  const objects = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace }, data: { version: String(version) } },
  ];
  return mergeJob({
    environment,
    namespace,
    repositoryId: 9100,
    installationId: 91,
    version,
    shaDigit: "c",
    objects,
    now: clock.now(),
    owner: OWNER,
  });
}

/** The bodies of the reports of `kind` the agents sent about this environment. */
function sent(kind: "report" | "drift"): Promise<Record<string, unknown>[]> {
  return sentReports(reports, kind, environment);
}

/** Waits until every replica's drift loop waits on the clock again: `sleepers` pending sleeps. */
async function settled(sleepers: number): Promise<void> {
  await expect.poll(() => clock.wakeUps.length, { timeout: 30_000, interval: 10 }).toBe(sleepers);
}

/** Moves the clock to `until` (elapsed ms), one wake-up at a time, letting each turn finish before the next. */
async function driveTo(until: number, sleepers: number): Promise<void> {
  for (;;) {
    await settled(sleepers);
    const [wake = until] = clock.wakeUps;
    if (wake > until) break;
    clock.advance(wake - clock.elapsed);
  }
  clock.advance(until - clock.elapsed);
  await settled(sleepers);
}

describe("agent replicas", () => {
  it("keep one deploy at a time per environment when Redis forgets the queue's limit (emptied or restored under them)", async () => {
    const q = agentQueue(environment);
    const meta = `${q.prefix}:${q.name}:meta`;
    expect(await redis.hget(meta, "concurrency")).toBe("1");

    await redis.hdel(meta, "concurrency");

    // Set again with the next heartbeat, by either replica.
    await expect.poll(() => redis.hget(meta, "concurrency"), { timeout: 30_000, interval: 200 }).toBe("1");
  });

  it("apply jobs signed by either of the app's keys while a rotation overlaps, and refuse any other", async () => {
    const first = job(1);
    await deploys.add("deploy", seal("job", first, privateKeyFromPem(retiring.privateKey)), { jobId: first.id, attempts: 1 });
    await expect
      .poll(async () => (await sent("report")).find((r) => r.jobId === first.id && r.phase === "succeeded"), { timeout: 60_000 })
      .toBeDefined();
    const second = job(2);
    await deploys.add("deploy", seal("job", second, privateKeyFromPem(next.privateKey)), { jobId: second.id, attempts: 1 });
    await expect
      .poll(async () => (await sent("report")).find((r) => r.jobId === second.id && r.phase === "succeeded"), { timeout: 60_000 })
      .toBeDefined();
    const live = (await kube.read({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace } })) as {
      data?: Record<string, string>;
    };
    expect(live.data).toEqual({ version: "2" });
    const forged = job(3);
    const added = await deploys.add("deploy", seal("job", forged, privateKeyFromPem(generateSigningKeys().privateKey)), {
      jobId: forged.id,
      attempts: 3,
    });
    await expect.poll(async () => await deploys.getJobState(added.id ?? ""), { timeout: 30_000 }).toBe("failed");
    expect((await deploys.getJob(added.id ?? ""))?.failedReason).toContain("signature does not verify with the configured public keys (2)");
  });

  it("check drift in one replica only: two replicas send one report per interval, and the pace holds when the leader stops", async () => {
    const before = (await sent("drift")).length;
    // Each replica's drift loop is one pending sleep on the clock.
    await driveTo(clock.elapsed + 4 * INTERVAL_MS + INTERVAL_MS / 2, 2);
    expect((await sent("drift")).length - before).toBe(4);
    // The leader (the first to start) stops and gives its lease up; the other takes over at its next turn.
    await agents[0]?.stop();
    // Both replicas' turns are due in 5 s: the stopped one's wait is left pending (its loop has ended)
    // and passes with it. Then what waits on the clock is the other's loop and the stopped one's
    // unused stop deadline (nine minutes off).
    expect(clock.wakeUps.filter((at) => at <= clock.elapsed + DRIFT_LEASE_RENEW_MS)).toHaveLength(2);
    clock.advance(DRIFT_LEASE_RENEW_MS);
    await driveTo(clock.elapsed + 3 * INTERVAL_MS - DRIFT_LEASE_RENEW_MS, 2);
    const drift = await sent("drift");
    expect(drift.length - before).toBe(7);
    expect(new Set(drift.map((r) => r.jobId))).toEqual(new Set([job(2).id]));
  });

  it("hand an environment's drift lease over when its holder stops renewing it, by the holder's clock", async () => {
    const leaseClock = new ManualClock();
    const place = `lease-${randomUUID().slice(0, 8)}`;
    const first = new DriftLease(redis, { holder: "first", now: leaseClock.now, leaseMs: 15_000 });
    const second = new DriftLease(redis, { holder: "second", now: leaseClock.now, leaseMs: 15_000 });
    try {
      expect(await first.hold(place)).toBe(true);
      expect(await second.hold(place)).toBe(false);
      leaseClock.advance(10_000);
      expect(await first.hold(place)).toBe(true); // renewed: held until 25 s
      leaseClock.advance(14_999);
      expect(await second.hold(place)).toBe(false);
      // The holder died at 10 s: its lease lapses at 25 s, and the other replica takes it.
      leaseClock.advance(1);
      expect(await second.hold(place)).toBe(true);
      expect(await first.hold(place)).toBe(false);
      // A stopping holder gives it up: the other takes it at once.
      await second.release(place);
      expect(await first.hold(place)).toBe(true);
    } finally {
      await redis.del(`{sluice-${place}}:drift-lease`);
    }
  });
});
