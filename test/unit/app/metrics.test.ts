import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AgentMetrics } from "../../../src/agent/metrics.ts";
import { AppMetrics } from "../../../src/app/metrics.ts";
import { AgentKeys } from "../../../src/app/agents/agent-keys.ts";
import { RedisMac } from "../../../src/app/state/redis-mac.ts";
import { driftReportSchema, type DriftReport } from "../../../src/core/agent-protocol.ts";
import { checkWithin, readinessAnswer } from "../../../src/core/probes.ts";
import { generateSigningKeys, privateKeyFromPem, publicKeyFromPem, seal } from "../../../src/core/signing.ts";

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const drift = (drifted: number): DriftReport => ({
  version: 1,
  repository: { owner: "acme", name: "shop", id: 7 },
  installationId: 1,
  environment: "production",
  sha: "a".repeat(40),
  jobId: "merge-7-production-a",
  checked: 3,
  drifted: Array.from({ length: drifted }, (_, i) => ({
    group: "",
    version: "v1",
    kind: "ConfigMap",
    namespace: "shop",
    name: `c${i}`,
    action: "modified" as const,
    diff: "",
  })),
  healed: [],
  gaveUp: [],
  at: "2026-11-27T12:00:00.000Z",
});

/** The value of one series in the registry's exposition. */
async function sample(registry: { metrics: () => Promise<string> }, series: string): Promise<number | undefined> {
  const line = (await registry.metrics()).split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("readiness", () => {
  it("is ready only when every check passes, and names what failed", () => {
    expect(readinessAnswer([{ name: "redis" }, { name: "github" }])).toEqual({
      status: 200,
      contentType: "text/plain; charset=utf-8",
      body: "[+]redis ok\n[+]github ok\nready\n",
    });
    const answer = readinessAnswer([{ name: "redis", problem: "connection is reconnecting" }, { name: "github" }]);
    expect([answer.status, answer.body]).toEqual([503, "[-]redis failed: connection is reconnecting\n[+]github ok\nnot ready\n"]);
  });

  it("turns a check that throws or hangs into its problem instead of hanging the probe", async () => {
    expect(await checkWithin("redis", 1_000, () => Promise.reject(new Error("ECONNREFUSED")))).toEqual({
      name: "redis",
      problem: "ECONNREFUSED",
    });
    expect(await checkWithin("kubernetes", 20, () => new Promise<undefined>(() => undefined))).toEqual({
      name: "kubernetes",
      problem: "no answer within 20 ms",
    });
    expect(await checkWithin("queues", 1_000, () => Promise.resolve(undefined))).toEqual({ name: "queues" });
  });
});

describe("app metrics", () => {
  it("count agent messages dropped by reason, and keep the newest drift report's figures", async () => {
    const metrics = new AppMetrics();
    const agent = generateSigningKeys();
    const stranger = generateSigningKeys();
    const keys = new AgentKeys([{ key: publicKeyFromPem(agent.publicKey), environments: ["production"] }], metrics.agentMessages);
    const used: DriftReport[] = [];
    const consume = (report: DriftReport, key: string) =>
      keys.consume("drift", seal("drift", report, privateKeyFromPem(key)), {
        schema: driftReportSchema,
        log: quiet,
        use: (message) => {
          used.push(message);
          return Promise.resolve({ accepted: true });
        },
      });
    await consume(drift(2), agent.privateKey);
    await consume(drift(1), stranger.privateKey);
    await consume({ ...drift(1), environment: "staging" }, agent.privateKey);
    expect(used.map((r) => r.drifted.length)).toEqual([2]);
    const r = metrics.registry;
    expect(await sample(r, 'sluice_drift_objects{environment="production",repository="acme/shop"}')).toBe(2);
    expect(await sample(r, 'sluice_drift_last_report_timestamp_seconds{environment="production"}')).toBe(Date.parse(drift(0).at) / 1000);
    expect(await sample(r, 'sluice_agent_messages_rejected_total{kind="drift",reason="signature"}')).toBe(1);
    expect(await sample(r, 'sluice_agent_messages_rejected_total{kind="drift",reason="environment"}')).toBe(1);
  });

  it("count Redis records whose MAC does not verify", async () => {
    const metrics = new AppMetrics();
    const mac = new RedisMac("secret", () => {
      metrics.redisMacFailures.inc();
    });
    const sealed = mac.seal("page:1", Buffer.from("page"));
    expect(mac.open("page:1", sealed)?.toString()).toBe("page");
    expect(mac.open("page:2", sealed)).toBeUndefined();
    expect(await sample(metrics.registry, "sluice_redis_mac_failures_total")).toBe(1);
  });

  it("reads queue depths when scraped", async () => {
    const metrics = new AppMetrics({
      queueDepths: () => Promise.resolve([{ queue: "preview-render", counts: { waiting: 3, active: 1 } }]),
    });
    expect(await sample(metrics.registry, 'sluice_queue_jobs{queue="preview-render",state="waiting"}')).toBe(3);
    expect(await sample(metrics.registry, 'sluice_queue_jobs{queue="preview-render",state="active"}')).toBe(1);
  });
});

describe("the Grafana dashboard", () => {
  it("queries only metrics that the app or the agent export", async () => {
    const dashboard = readFileSync(new URL("../../../deploy/grafana/sluice-dashboard.json", import.meta.url), "utf8");
    const queried = new Set([...dashboard.matchAll(/\bsluice_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, "")));
    const exported = new Set(
      [...(await new AppMetrics().registry.getMetricsAsJSON()), ...(await new AgentMetrics().registry.getMetricsAsJSON())].map(
        (m) => m.name,
      ),
    );
    expect(queried.size).toBeGreaterThan(15);
    expect([...queried].filter((name) => !exported.has(name))).toEqual([]);
  });
});
