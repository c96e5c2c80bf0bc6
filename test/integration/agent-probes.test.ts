import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, inject, it } from "vitest";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";

const TOKEN = "agent-metrics-token-for-the-test";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const agents: RunningAgent[] = [];

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
});

/** The agent as `sluice agent` starts it, from an environment, on a free loopback port. */
function agentEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: inject("redisUrl"),
    KUBECONFIG: inject("kubeconfigPath"),
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    // An environment of its own, so no other test's jobs reach this agent.
    SLUICE_AGENT_ENVIRONMENTS: `probes-${randomUUID().slice(0, 8)}`,
    SLUICE_AGENT_REPOSITORIES: "acme/*=team-*",
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_DRIFT_INTERVAL_SECONDS: "0",
    ...extra,
  };
}

async function agent(extra: Record<string, string> = {}): Promise<string> {
  const running = await startAgent(await loadAgentSettings(agentEnv(extra)), { log: () => undefined });
  agents.push(running);
  return `http://127.0.0.1:${running.probePort}`;
}

async function get(url: string, authorization?: string): Promise<{ status: number; body: string; challenge: string | null }> {
  const response = await fetch(url, authorization ? { headers: { authorization } } : {});
  return { status: response.status, body: await response.text(), challenge: response.headers.get("www-authenticate") };
}

describe("the agent's probe server", () => {
  it("serves /metrics only with SLUICE_METRICS_TOKEN when it is set; the probes stay open", async () => {
    const url = await agent({ SLUICE_METRICS_TOKEN: TOKEN });
    expect((await get(`${url}/healthz`)).status).toBe(200);
    await expect.poll(async () => (await get(`${url}/readyz`)).status, { timeout: 30_000 }).toBe(200);
    for (const authorization of [undefined, `Bearer ${TOKEN.replace(/.$/, "!")}`, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN]) {
      const refused = await get(`${url}/metrics`, authorization);
      expect({ authorization, status: refused.status, challenge: refused.challenge }).toEqual({
        authorization,
        status: 401,
        challenge: "Bearer",
      });
      expect(refused.body).not.toContain("sluice_");
    }
    const metrics = await get(`${url}/metrics`, `Bearer ${TOKEN}`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain("sluice_agent_");
  });

  it("keeps /metrics open without a token, as before", async () => {
    const url = await agent();
    expect((await get(`${url}/metrics`)).status).toBe(200);
  });

  it("refuses a token shorter than 16 characters, naming the variable", async () => {
    await expect(loadAgentSettings(agentEnv({ SLUICE_METRICS_TOKEN: "short" }))).rejects.toThrow(
      "SLUICE_METRICS_TOKEN: SLUICE_METRICS_TOKEN must be at least 16 characters",
    );
  });
});
