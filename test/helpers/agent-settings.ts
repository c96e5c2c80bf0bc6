import type { Queue } from "bullmq";
import { loadAgentSettings, type AgentSettings } from "../../src/agent/settings.ts";
import { objectsDigest, type AgentJob } from "../../src/core/agent-protocol.ts";
import type { KubeObject } from "../../src/core/manifest.ts";

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

/**
 * A merge's deploy job of `objects` (version `version`, which is also its sequence and, padded
 * with `shaDigit`, its commit) for repository `OWNER/web` with id `repositoryId`, signed now and
 * valid ten minutes: what the app queues, before it is sealed.
 */
export function mergeJob(options: {
  environment: string;
  namespace: string;
  repositoryId: number;
  installationId: number;
  version: number;
  shaDigit: string;
  objects: KubeObject[];
  now: number;
  owner?: string;
}): AgentJob {
  const { environment, namespace, repositoryId, version, objects, now } = options;
  const sha = String(version).padStart(40, options.shaDigit);
  return {
    version: 1,
    id: `merge-${repositoryId}-${environment}-${sha}`,
    repository: { owner: options.owner ?? "octo", name: "web", id: repositoryId },
    installationId: options.installationId,
    environment,
    sha,
    reason: "merge",
    requestedBy: "octocat",
    createdAt: new Date(now).toISOString(),
    settings: { namespace, prune: true, allowEmpty: false, selfHeal: false, driftIgnore: [] },
    sequence: version,
    hold: "keep",
    signedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 600_000).toISOString(),
    digest: objectsDigest(objects),
    objects: { inline: objects },
  };
}

/** The bodies of the messages of `kind` the agents sent about `environment` on the reports queue. */
export async function sentReports(reports: Queue, kind: "report" | "drift", environment: string): Promise<Record<string, unknown>[]> {
  const jobs = await reports.getJobs(["waiting", "delayed", "active", "completed", "failed"]);
  return jobs
    .filter((j) => j.name === kind)
    .map((j) => JSON.parse((j.data as { body: string }).body) as Record<string, unknown>)
    .filter((body) => body.environment === environment);
}
