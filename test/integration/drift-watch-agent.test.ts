import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DRIFT_LEASE_RENEW_MS } from "../../src/agent/drift-lease.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { type AgentLog } from "../../src/agent/agent-log.ts";
import { agentQueue, REPORT_QUEUE, type AgentJob } from "../../src/core/agent-protocol.ts";
import { generateSigningKeys, privateKeyFromPem, seal } from "../../src/core/signing.ts";
import { connectRedis, scanKeys, type RedisClient } from "../../src/redis/connection.ts";
import { mergeJob, sentReports, testAgentSettings } from "../helpers/agent-settings.ts";
import { ManualClock } from "../helpers/manual-clock.ts";

// A running agent (issue 28, item 6) on the real Redis (database 30) and apiserver, its drift poll an
// hour apart on a manual clock: a hand edit and a deletion reach a drift report through the
// watches alone, and the agent's own deploys report no drift.

/** The drift poll's interval: an hour of the injected clock, so only a watch can find drift here. */
const POLL_INTERVAL_MS = 3_600_000;
const DATABASE = 30;
const OWNER = "drift-watch";
const run = promisify(execFile);
const suffix = randomUUID().slice(0, 8);
const environment = `watch-${suffix}`;
const agentNamespace = `sluice-watch-${suffix}`;
const namespace = `watch-${suffix}`;
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const clock = new ManualClock();
const logged: { message: string; details: Record<string, unknown> }[] = [];
const log: AgentLog = (_level, message, details) => logged.push({ message, details });
let redis: RedisClient;
let kube: KubernetesObjectApi;
let reports: Queue;
let deploys: Queue;
let agent: RunningAgent;

beforeAll(async () => {
  const url = new URL(inject("redisUrl"));
  url.pathname = `/${DATABASE}`;
  redis = connectRedis(url.toString());
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  reports = new Queue(REPORT_QUEUE.name, { connection: redis, prefix: REPORT_QUEUE.prefix });
  const q = agentQueue(environment);
  deploys = new Queue(q.name, { connection: redis, prefix: q.prefix });
  const settings = await testAgentSettings(
    {
      redisUrl: url.toString(),
      kubeconfigPath: inject("kubeconfigPath"),
      appPublicKey: appKeys.publicKey,
      agentPrivateKey: agentKeys.privateKey,
    },
    {
      SLUICE_AGENT_ENVIRONMENTS: environment,
      SLUICE_AGENT_REPOSITORIES: `${OWNER}/*=watch-*`,
      SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
      SLUICE_AGENT_NAMESPACE: agentNamespace,
      SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
      // An hour: within this test only a watch can find drift.
      SLUICE_DRIFT_INTERVAL_SECONDS: String(POLL_INTERVAL_MS / 1000),
    },
  );
  agent = await startAgent(settings, { now: clock.now, sleep: clock.sleep, random: () => 0.5, log });
});

afterAll(async () => {
  await agent.stop();
  await reports.close();
  await deploys.close();
  const keys = await scanKeys(redis, `{sluice-${environment}}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  for (const name of [agentNamespace, namespace])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
});

/** A deploy job of the environment: version `version` of two ConfigMaps. */
function job(version: number): AgentJob {
  const objects = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace }, data: { version: String(version) } },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "api", namespace }, data: { version: String(version) } },
  ];
  return mergeJob({
    environment,
    namespace,
    repositoryId: 9200,
    installationId: 92,
    version,
    shaDigit: "d",
    objects,
    now: clock.now(),
    owner: OWNER,
  });
}

/** The bodies of the reports of `kind` the agent sent about this environment. */
function sent(kind: "report" | "drift"): Promise<Record<string, unknown>[]> {
  return sentReports(reports, kind, environment);
}

/** Queues a deploy of `version` and waits until the agent reports it succeeded. */
async function deploy(version: number): Promise<void> {
  const body = job(version);
  await deploys.add("deploy", seal("job", body, privateKeyFromPem(appKeys.privateKey)), { jobId: body.id });
  await expect
    .poll(async () => (await sent("report")).some((r) => r.jobId === body.id && r.phase === "succeeded"), {
      timeout: 60_000,
      interval: 100,
    })
    .toBe(true);
}

/** How many times the watches followed an inventory. */
function follows(): { environment: unknown; watches: unknown }[] {
  return logged
    .filter((l) => l.message === "drift watches follow the inventory")
    .map((l) => l.details as { environment: unknown; watches: unknown });
}

/** Moves the clock to the drift loop's next turn, so the drift loop takes a turn and its watches follow the inventory of the newest deploy. */
async function followed(): Promise<void> {
  // The drift loop's one sleep: at most a lease renewal away.
  await expect.poll(() => clock.wakeUps.length, { timeout: 30_000, interval: 10 }).toBe(1);
  const [next = 0] = clock.wakeUps;
  expect(next - clock.elapsed).toBeLessThanOrEqual(DRIFT_LEASE_RENEW_MS);
  clock.advance(next - clock.elapsed);
  // The turn is over once the loop sleeps again.
  await expect.poll(() => clock.wakeUps.some((at) => at > next), { timeout: 30_000, interval: 10 }).toBe(true);
}

/** Waits for the debounce of a watch to be pending and lets it pass. */
async function debounced(): Promise<void> {
  await expect.poll(() => clock.wakeUps.includes(clock.elapsed + 1_000), { timeout: 30_000, interval: 10 }).toBe(true);
  clock.advance(1_000);
}

describe("an agent watching its environments", () => {
  it("reports a hand edit without waiting for the poll, and a deletion; its own deploys report none", async () => {
    await deploy(1);
    await followed();

    await run("kubectl", [
      "--kubeconfig",
      inject("kubeconfigPath"),
      "-n",
      namespace,
      "patch",
      "configmap",
      "web",
      "-p",
      '{"data":{"version":"hand"}}',
    ]);
    await debounced();
    await expect.poll(async () => (await sent("drift")).length, { timeout: 30_000, interval: 50 }).toBe(1);
    const [edited] = await sent("drift");
    expect(edited?.drifted).toEqual([expect.objectContaining({ kind: "ConfigMap", namespace, name: "web", action: "modified" })]);
    // The injected clock (no wall time) never reached the poll's first turn: the watch found it.
    expect(clock.elapsed).toBeLessThan(POLL_INTERVAL_MS / 2);

    // A deploy of the agent's own: applied over the hand edit, with no drift to report.
    await deploy(2);
    await followed();
    await run("kubectl", ["--kubeconfig", inject("kubeconfigPath"), "-n", namespace, "delete", "configmap", "api"]);
    await debounced();
    await expect.poll(async () => (await sent("drift")).length, { timeout: 30_000, interval: 50 }).toBe(2);
    const drift = await sent("drift");
    // The deletion is the one report after the first: the deploy between sent none.
    expect(drift.map((r) => r.jobId).sort()).toEqual([job(1).id, job(2).id]);
    const deleted = drift.find((r) => r.jobId === job(2).id);
    expect(deleted?.drifted).toEqual([expect.objectContaining({ kind: "ConfigMap", namespace, name: "api", action: "missing" })]);
    // The ConfigMaps in their namespace, and Namespaces cluster-wide, followed after each deploy.
    expect(follows().filter((f) => f.watches === 2)).toHaveLength(2);
  });
});
