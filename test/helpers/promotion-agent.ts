import type { Queue } from "bullmq";
import { expect, inject } from "vitest";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { startHarness, type AppHarness } from "./app-harness.ts";
import { checkout } from "./checkouts.ts";

/** An agent for promotion tests: it serves `environments` of `owner`'s repositories in `deploy-*` namespaces, on the harness's clock. */
export async function startPromotionAgent(
  h: AppHarness,
  options: {
    kubeconfigPath: string;
    appPublicKey: string;
    agentPrivateKey: string;
    environments: readonly string[];
    owner: string;
    namespace: string;
    /** The cluster of a fleet it serves (`SLUICE_AGENT_CLUSTER`). */
    cluster?: string;
    /** How often it checks for drift (`SLUICE_DRIFT_INTERVAL_SECONDS`); never by default. */
    driftSeconds?: number;
    /** The namespaces its policy lets the owner's repositories use (`SLUICE_AGENT_NAMESPACES`); `deploy-*` by default. */
    namespaces?: string;
  },
): Promise<RunningAgent> {
  const settings = await loadAgentSettings({
    REDIS_URL: h.redisUrl,
    KUBECONFIG: options.kubeconfigPath,
    SLUICE_APP_PUBLIC_KEY: options.appPublicKey,
    SLUICE_AGENT_SIGNING_KEY: options.agentPrivateKey,
    SLUICE_AGENT_ENVIRONMENTS: options.environments.join(","),
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_AGENT_REPOSITORIES: `${options.owner}/*`,
    SLUICE_AGENT_NAMESPACES: options.namespaces ?? "deploy-*",
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: options.namespace,
    SLUICE_DRIFT_INTERVAL_SECONDS: String(options.driftSeconds ?? 0),
    ...(options.cluster ? { SLUICE_AGENT_CLUSTER: options.cluster } : {}),
  });
  return startAgent(settings, { log: () => undefined, now: h.clock.read });
}

/** The moment a delayed promotion check is for (its job id ends with it). */
const dueAt = (id: string | undefined): number => Number(/-(\d+)$/.exec(id ?? "")?.[1] ?? 0);

/** Moves the app's clock to `at` and runs, now, the promotion checks queued for moments up to it (and those they queue). */
export async function reachPromotionChecks(h: AppHarness, promotions: Queue, at: number): Promise<void> {
  if (h.clock.now < at) h.clock.now = at;
  for (let round = 0; round < 20; round++) {
    const due = (await promotions.getDelayed()).filter((job) => dueAt(job.id) <= at);
    if (due.length === 0) return;
    for (const job of due) await job.promote();
    await expect
      .poll(
        async () => {
          const counts = await promotions.getJobCounts("waiting", "active");
          return (counts.waiting ?? 0) + (counts.active ?? 0);
        },
        { timeout: 60_000, interval: 100 },
      )
      .toBe(0);
  }
}

/**
 * An app harness with deploys for a promotion test: one repository whose default branch holds
 * `config` as its first commit (every push and command reads the default branch's configuration).
 */
export async function startPromotionHarness(options: {
  database: number;
  repository: { owner: string; repo: string; repoId: number };
  config: string;
  keys: { jobSigningKey: string; agentPublicKeys: string };
  firstCommit: string;
}): Promise<AppHarness> {
  const h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: options.database,
    deployKeys: options.keys,
  });
  const { owner, repo, repoId } = options.repository;
  h.github.addRepo(owner, repo, repoId);
  await h.github.addCommit(owner, repo, options.firstCommit, await checkout(undefined, { ".github/sluice.yml": options.config }));
  h.github.setBranch(owner, repo, "main", options.firstCommit);
  return h;
}

/** Sluice's replies to commands on a pull request (refusals included), oldest first. */
export function botReplies(h: AppHarness, number: number): string[] {
  return h.github.comments.filter((c) => c.issue === number && c.user === "sluice[bot]" && /^(Sorry )?@/.test(c.body)).map((c) => c.body);
}
