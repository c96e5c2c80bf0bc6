import { privateKeyFromPem, publicKeyFromPem } from "../../core/signing.ts";
import { DEFAULT_LIMITS } from "../../render/render-environment.ts";
import { outputLimitFor, RenderPool } from "../../render/render-pool.ts";
import type { Infrastructure } from "./infrastructure.ts";
import type { GitHubAccess } from "../github/access.ts";
import { AgentKeys } from "../agents/agent-keys.ts";
import { CommandService } from "../commands/command-service.ts";
import { Convergence } from "../deploy/convergence.ts";
import { DeployJobs } from "../deploy/deploy-jobs.ts";
import { DeployRecords, type DeployRecord } from "../deploy/deploy-records.ts";
import { FleetClusters } from "../deploy/fleet-clusters.ts";
import { FleetDrift } from "../drift/fleet-drift.ts";
import { Rollouts, type RolloutDeps } from "../deploy/rollouts.ts";
import { DeployReports } from "../deploy/deploy-reports.ts";
import { DriftReports } from "../drift/drift-reports.ts";
import { DriftSummaries } from "../drift/drift-summaries.ts";
import { EnvironmentStates } from "../deploy/environment-states.ts";
import { LivePreviews } from "../preview/live-previews.ts";
import { PreviewService } from "../preview/preview-service.ts";
import { PublishedPreviews } from "../preview/published-previews.ts";
import { RenderEntryStore } from "../preview/render-entry-store.ts";
import type { AppSettings } from "../settings.ts";
import { GatedDeploys } from "../promotion/gated-deploys.ts";
import { GateStates } from "../promotion/gate-states.ts";
import { PipelineComments } from "../promotion/pipeline-comments.ts";
import { Promotions } from "../promotion/promotions.ts";
import { createDeployment } from "../deploy/deploy-jobs.ts";
import type { GitHubClient } from "../github/client.ts";
import type { PromotionCheck } from "../queue/queues.ts";
import type { Config } from "../../core/config.ts";

/** What building the services needs: the settings, what they stand on, GitHub, and the time. */
export interface ServiceBase {
  settings: AppSettings;
  infra: Infrastructure;
  access: GitHubAccess;
  now: () => number;
}

/** The services of the deploy flow, present when the app signs deploy jobs (it has a job signing key). */
export interface DeployServices {
  jobs: DeployJobs;
  reports: DeployReports;
  /** Deploys to environments on several clusters, wave by wave. */
  rollouts: Rollouts;
  /** An agent's status that shows its environment behind a tracked branch's head gets that head deployed. */
  convergence: Convergence;
  /** Environments promoted from others: soaks, `/promote`. */
  promotions: Promotions;
  pipelineComments: PipelineComments;
  /** Deploys waiting at approvals and freezes. */
  gated: GatedDeploys;
}

/** Every flow's services, each built in one place. */
export interface AppServices {
  renderer: RenderPool;
  agentKeys: AgentKeys;
  driftReports: DriftReports;
  /** The drift check runs of fleets' commits, written by their own queue's worker. */
  fleetDrift: FleetDrift;
  /** Live previews, when the app signs jobs (so it has agents to ask). */
  live: LivePreviews | undefined;
  previews: PreviewService;
  deploys: DeployServices | undefined;
  commands: CommandService;
}

/** Builds every flow's services. */
export function buildServices(base: ServiceBase): AppServices {
  const { settings, infra, access, now } = base;
  const { redis, mac, metrics, queues, prState, checkouts } = infra;
  const agentKeys = new AgentKeys(
    settings.agentPublicKeys.map((k) => ({
      key: publicKeyFromPem(k.pem),
      ...(k.environments ? { environments: k.environments } : {}),
      ...(k.repositories ? { repositories: k.repositories } : {}),
      ...(k.clusters ? { clusters: k.clusters } : {}),
    })),
    metrics.agentMessages,
  );
  // Drift reports write each environment's drift; the live previews read it for the comments.
  const drift = new DriftSummaries(redis, mac);
  const fleetDrift = new FleetDrift({
    redis,
    mac,
    github: access.installation,
    schedule: (commit, at) => queues.addFleetDriftWrite(commit, at),
    now,
    log: access.log,
  });
  const driftReports = new DriftReports({
    redis,
    mac,
    github: access.installation,
    agentKeys,
    summaries: drift,
    fleet: fleetDrift,
    log: access.log,
  });
  const renderer = renderPool(settings, infra);
  const published = new PublishedPreviews(redis, mac);
  // Agents' statuses announce a fleet's clusters; rollouts and live previews ask those a glob matches.
  const clusters = new FleetClusters(redis, mac);
  const live = livePreviews(base, { agentKeys, drift, published, clusters });
  const previews = new PreviewService({
    published,
    ...(live ? { live } : {}),
    github: access.installation,
    checkouts,
    renderCache: new RenderEntryStore(redis, {
      ttlSeconds: 7 * 24 * 3600,
      maxEntryBytes: 64 * 1024 * 1024,
      maxEntries: settings.renderCacheEntries,
      mac,
    }),
    prState,
    diffPages: infra.diffPages,
    renderer,
    webUrl: settings.githubWebUrl,
    now,
    log: access.log,
  });
  const environments = new EnvironmentStates(redis, mac);
  const deploys = deployServices(base, { renderer, agentKeys, environments, drift, clusters });
  const commands = new CommandService({
    queues,
    prState,
    environments,
    now,
    log: access.log,
    webUrl: settings.githubWebUrl,
    deploysEnabled: deploys !== undefined,
    checkouts,
    gated: deploys?.gated,
    promotions: deploys?.promotions,
    ...(deploys
      ? { promotedSha: (repositoryId: number, environment: string) => deploys.promotions.promotedSha(repositoryId, environment) }
      : {}),
  });
  return { renderer, agentKeys, driftReports, fleetDrift, live, previews, deploys, commands };
}

/** The render processes; one holds its renderer's whole output and the parsed objects, so the output cap follows its heap. */
function renderPool(settings: AppSettings, infra: Infrastructure): RenderPool {
  const limits = {
    ...DEFAULT_LIMITS,
    timeoutMs: settings.renderTimeoutMs,
    maxOutputBytes: outputLimitFor(settings.renderMemoryMb),
    sandbox: settings.renderSandbox,
    toolMemoryBytes: settings.renderToolMemoryMb * 1024 * 1024,
  };
  return new RenderPool({
    size: settings.renderProcesses,
    heapMb: settings.renderMemoryMb,
    tools: infra.tools,
    limits,
    observe: (seconds, ok) => {
      infra.metrics.renders.observe({ outcome: ok ? "ok" : "failed" }, seconds);
    },
  });
}

/** Live previews, when the app has a job signing key to sign their requests with. */
function livePreviews(
  base: ServiceBase,
  shared: { agentKeys: AgentKeys; drift: DriftSummaries; published: PublishedPreviews; clusters: FleetClusters },
): LivePreviews | undefined {
  const { settings, infra, access, now } = base;
  const { agentKeys, drift, published, clusters } = shared;
  if (!settings.jobSigningKey) return undefined;
  return new LivePreviews({
    diffPages: infra.diffPages,
    drift,
    clusters,
    redis: infra.redis,
    queues: infra.queues,
    prState: infra.prState,
    published,
    checkouts: infra.checkouts,
    github: access.installation,
    signingKey: privateKeyFromPem(settings.jobSigningKey),
    agentKeys,
    webUrl: settings.githubWebUrl,
    requestTtlMs: settings.jobTtlMs,
    timeoutMs: settings.liveTimeoutMs,
    now,
    log: access.log,
  });
}

/** Deploys to environments on several clusters, rolled out wave by wave. */
function rolloutService(
  base: ServiceBase,
  parts: Pick<RolloutDeps, "records" | "clusters" | "drift" | "signingKey" | "observe">,
): Rollouts {
  const { settings, infra, access, now } = base;
  return new Rollouts({
    redis: infra.redis,
    mac: infra.mac,
    queues: infra.queues,
    github: access.installation,
    jobTtlMs: settings.jobTtlMs,
    webUrl: settings.githubWebUrl,
    now,
    log: access.log,
    ...parts,
  });
}

/** The deploy flow's services, when the app has a job signing key to sign deploy jobs with. */
function deployServices(
  base: ServiceBase,
  shared: { renderer: RenderPool; agentKeys: AgentKeys; environments: EnvironmentStates; drift: DriftSummaries; clusters: FleetClusters },
): DeployServices | undefined {
  const { settings, infra, access, now } = base;
  const { redis, mac, queues, checkouts } = infra;
  const { renderer, agentKeys, environments, clusters } = shared;
  if (!settings.jobSigningKey) return undefined;
  const { log } = access;
  const github = access.installation;
  const records = new DeployRecords(redis, mac, log);
  const webUrl = settings.githubWebUrl;
  const signingKey = privateKeyFromPem(settings.jobSigningKey);
  // Promotion learns a rollout's end as it learns a deploy's.
  const observe = (deploy: DeployRecord, outcome: "deployed" | "failed", at: number) =>
    promotions.observed({ repository: deploy.repository, installationId: deploy.installationId }, deploy.environment, {
      kind: outcome,
      sha: deploy.sha,
      at,
    });
  const rollouts = rolloutService(base, { records, clusters, drift: shared.drift, signingKey, observe });
  const gates = new GateStates(redis, mac);
  // The pipeline admits each deploy at its environment's gates, and a deploy whose wait is over goes through it again.
  const pipelineComments = new PipelineComments({ redis, mac, gates, queues, github: access.installation, checkouts, now, log });
  const changed = (check: PromotionCheck) => pipelineComments.changed(check);
  const gated: GatedDeploys = new GatedDeploys({
    gates,
    records,
    createDeployment,
    wake: (check, at) => queues.addPromotionCheck(check, at),
    prepare: (request) => jobs.prepare(request),
    changed,
    webUrl,
    now,
    log,
  });
  const jobs: DeployJobs = new DeployJobs({
    redis,
    queues,
    github: access.installation,
    checkouts,
    renderer,
    records,
    environments,
    signingKey,
    jobTtlMs: settings.jobTtlMs,
    rollouts,
    webUrl,
    now,
    log,
    admit: (gh, request, env) => gated.admit(gh, request, env),
  });
  const pending = (gh: GitHubClient, check: PromotionCheck, config: Config) => gated.release(gh, check, config);
  const promotions = new Promotions({ redis, gates, queues, github, checkouts, pending, changed, now, log });
  return {
    jobs,
    rollouts,
    gated,
    promotions,
    pipelineComments,
    reports: new DeployReports({ github, records, environments, agentKeys, rollouts, webUrl, log, now, observe }),
    convergence: new Convergence({
      redis,
      mac,
      queues,
      github,
      appGitHub: access.app,
      checkouts,
      environments,
      records,
      agentKeys,
      clusters,
      gates,
      jobTtlMs: settings.jobTtlMs,
      now,
      log,
    }),
  };
}
