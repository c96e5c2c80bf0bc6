import { loadAgentSettings, type AgentSettings } from "../../src/agent/settings.ts";

/**
 * An agent's settings as the tests start one in process: on the harness's Redis and the test
 * apiserver, verifying jobs with `appPublicKey` and signing with `agentPrivateKey`, its probes on a
 * free loopback port; `settings` adds or overrides the rest (environments, repositories, policy).
 */
export function testAgentSettings(
  base: { redisUrl: string; kubeconfigPath: string; appPublicKey: string; agentPrivateKey: string },
  settings: Record<string, string>,
): Promise<AgentSettings> {
  return loadAgentSettings({
    REDIS_URL: base.redisUrl,
    KUBECONFIG: base.kubeconfigPath,
    SLUICE_APP_PUBLIC_KEY: base.appPublicKey,
    SLUICE_AGENT_SIGNING_KEY: base.agentPrivateKey,
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    ...settings,
  });
}
