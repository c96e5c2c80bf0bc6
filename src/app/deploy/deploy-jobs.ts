import type { KeyObject } from "node:crypto";
import type { RedisClient } from "../../redis/connection.ts";
import { agentJob, type AgentJob } from "../../core/agent-protocol.ts";
import { fleetOf, type Environment } from "../../core/config.ts";
import { allAtOnce, fleetPatterns, nextStep, only, rolloutSummary, rolloutTitle, type Rollout } from "../../core/fleet.ts";
import { CONFIG_PATH } from "../../core/config-path.ts";
import { deployJobId, type DeployRequest } from "../../core/deploy-requests.ts";
import { deployCheckName } from "../../core/check-names.ts";
import {
  deploymentDescription,
  firstDeployState,
  heldOutput,
  notQueuedCheckRun,
  queuedOutput,
  type NotQueuedCause,
} from "../../core/deploy-status.ts";
import { shortSha } from "../../core/git-ref.ts";
import { promotedBranches } from "../../core/promotion.ts";
import type { ReportProblem } from "../../core/diff-report.ts";
import { parseJson } from "../../core/json.ts";
import type { KubeObject } from "../../core/manifest.ts";
import { seal } from "../../core/signing.ts";
import type { RenderPool } from "../../render/render-pool.ts";
import { checkRunUrl, writeInBackground, type CheckRunFields, type GitHubClient } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import type { DeployRecord, DeployRecords } from "./deploy-records.ts";
import type { EnvironmentState, EnvironmentStates } from "./environment-states.ts";
import { objectsPayload } from "./object-payloads.ts";
import type { Logger } from "../log-context.ts";
import { discoverFromCheckout, reviewedConfig } from "../github/repository-config.ts";
import { UnsafeArchiveError } from "../checkouts/unpack-tarball.ts";
import type { Rollouts } from "./rollouts.ts";

/** What turning deploy requests into jobs needs. */
export interface DeployJobDeps {
  redis: RedisClient;
  queues: AppQueues;
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  renderer: RenderPool;
  records: DeployRecords;
  environments: EnvironmentStates;
  signingKey: KeyObject;
  /** How long a signed job stays valid. */
  jobTtlMs: number;
  /** Whether a deploy goes to the agents now or waits at its environment's approval or freeze (all go when absent). */
  admit?: (gh: GitHubClient, request: DeployRequest, env: Environment) => Promise<{ go: true; note?: string } | { go: false }>;
  /** Environments on several clusters: their deploys roll out wave by wave. */
  rollouts: Rollouts;
  webUrl: string;
  now: () => number;
  log: Logger;
}

/**
 * Turns a deploy request into a signed agent job: the environment from the default branch's
 * configuration, the commit rendered in a render process, a check run and a GitHub Deployment,
 * the record that ties them to the job, then the job signed and queued for the environment's
 * agents. A request that cannot be deployed ends in a failed check run instead.
 */
export class DeployJobs {
  readonly #deps: DeployJobDeps;

  constructor(deps: DeployJobDeps) {
    this.#deps = deps;
  }

  async prepare(request: DeployRequest): Promise<void> {
    const deps = this.#deps;
    const gh = await deps.github(request.installationId);
    const config = await reviewedConfig(gh, request.repository, discoverFromCheckout(deps.checkouts, gh, request.repository));
    const env = config.ok ? config.config.environments.find((e) => e.name === request.environment) : undefined;
    if (!config.ok || !env) {
      const errors = config.ok
        ? [{ file: CONFIG_PATH, line: 1, message: `environment ${request.environment} is not in the default branch's configuration` }]
        : config.errors;
      await failBeforeQueue(gh, request, "config", errors);
      return;
    }
    const objects = await this.#render(gh, request, env);
    if (!objects) return;
    const admission = deps.admit ? await deps.admit(gh, request, env) : { go: true as const };
    if (!admission.go) return;
    const rollout = await this.#planRollout(gh, request, env);
    if (rollout === false) return;
    const payload = await objectsPayload(deps.redis, env.name, objects);
    const jobId = deployJobId(request);
    const state = await deps.environments.load(request.repository.id, env.name);
    const hold = await holdMode(gh, request, state);
    // The agent's record decides; this only tells people at once that the deploy will wait.
    const held = hold === "keep" && state.hold !== undefined;
    const output =
      held && state.hold
        ? heldOutput(`\`${shortSha(state.hold.sha)}\` was rolled back to by ${state.hold.by} at ${state.hold.at}.`)
        : queuedOutput(objects.length, request, "note" in admission ? admission.note : undefined);
    // The job is queued first and GitHub learns of it while the agent already works (each write
    // waits its turn in the installation's write pacing). The deploy's lock keeps its reports
    // waiting until the check run and Deployment they update exist; the states written to objects
    // that exist are not awaited, so the reports' newer states can replace them while they wait.
    await deps.records.exclusive(jobId, 120_000, async (): Promise<void> => {
      // A request taken over from a replica that died half way has a record: its check run and
      // Deployment are this deploy's, not to be made twice (a second one would stay queued forever).
      const previous = await deps.records.load(jobId);
      if (previous?.completed) {
        // Finished while its replica was gone, before the Deployment was made: it is made now, finished.
        if (!previous.deploymentId) await this.#createDeployment(gh, request, env, jobId, previous, held);
        deps.log.info({ job: jobId }, "deploy already finished; nothing to queue");
        return;
      }
      const record = deployRecord(request, {
        hold,
        previous,
        rollout,
        pipeline: env.autoDeploy && promotedBranches(config.config).has(env.branch),
      });
      // A replica that died between GitHub making the check run and saving its id left it unnamed here.
      if (previous && !record.checkRunId)
        record.checkRunId = (await gh.findCheckRun(request.repository, request.sha, deployCheckName(env.name), jobId)) ?? 0;
      await deps.records.save(jobId, record);
      // A deploy that waited at an approval or a freeze (its record was made then) goes: the states of its wait still on their way are turned down.
      if (previous) await deps.records.clearWaiting(jobId);
      const job = agentJob(request, env, payload, { signedAt: deps.now(), ttlMs: deps.jobTtlMs, hold });
      if (record.rollout) await deps.rollouts.begin(jobId, record, job);
      else await deps.queues.addAgentJob(env.name, jobId, seal("job", job, deps.signingKey));
      deps.log.info({ job: jobId, objects: objects.length }, "deploy job queued");
      // A report already applied (before a takeover) wrote the check run's newest state. The check
      // run goes first: it is what shows the deploy on the commit and the pull request.
      if (!reportedAny(record)) {
        const fields = {
          status: firstDeployState(held, undefined).checkRun,
          output: record.rollout ? rolloutOutput(record.rollout, deps.now()) : output,
        };
        if (record.checkRunId) {
          // Made already (by a command, a promotion's wait or an approval's): its first state goes when its turn comes, unless a report came first.
          const guard = deps.records.guard(jobId, (r) => !reportedAny(r) && !r.completed);
          this.#write(gh.updateCheckRun(request.repository, record.checkRunId, fields, { coalesce: true, guard }), jobId);
        } else {
          record.checkRunId = await writeCheckRun(gh, request, fields);
          await deps.records.save(jobId, record);
        }
      }
      if (!record.deploymentId) await this.#createDeployment(gh, request, env, jobId, record, held);
    });
  }

  /** A deploy's state that is not its last, on its way to GitHub in the background. */
  #write(write: Promise<void>, jobId: string): void {
    writeInBackground(write, this.#deps.log, { job: jobId }, "deploy state not written to GitHub");
  }

  /**
   * Makes the deploy's GitHub Deployment, saves its id in the record, and starts its first status
   * (a record that reports were already applied to, a takeover, starts at the newest one's state),
   * not awaited: it is sent once the deploy's lock is let go, and a report applied meanwhile
   * replaces it if it has not gone out yet.
   */
  async #createDeployment(
    gh: GitHubClient,
    request: DeployRequest,
    env: Environment,
    jobId: string,
    record: DeployRecord,
    held: boolean,
  ): Promise<void> {
    record.deploymentId = await createDeployment(gh, request, env, jobId, record.rollout);
    const first = firstDeployState(held, record.reported?.phase);
    record.deploymentState = first.deployment;
    await this.#deps.records.save(jobId, record);
    const status = gh.deploymentStatus(
      request.repository,
      record.deploymentId,
      {
        state: first.deployment,
        description: first.description,
        logUrl: checkRunUrl(this.#deps.webUrl, request.repository, record.checkRunId),
      },
      // Its turn comes after the lock is let go: a replica that applied a newer report meanwhile wrote what comes after it. (A
      // takeover of a finished deploy starts at its final state, which goes.)
      { coalesce: true, guard: this.#deps.records.guard(jobId, (r) => r.deploymentState === first.deployment) },
    );
    this.#write(status, jobId);
  }

  /**
   * The rollout of a deploy to an environment on several clusters, undefined for one on a single
   * cluster, or false (after a failed check run) when the environment's clusters match none.
   */
  async #planRollout(gh: GitHubClient, request: DeployRequest, env: Environment): Promise<Rollout | undefined | false> {
    const fleet = fleetOf(env);
    if (!fleet) return undefined;
    const planned = await this.#deps.rollouts.plan(env, fleet, request.repository.id);
    // A rollback undoes what the waves let through: it reaches every cluster at once. A `/sync --cluster` reaches its cluster alone.
    const rollout = request.cluster
      ? only(planned, request.cluster)
      : request.reason === "rollback" && planned.waves.length > 0
        ? allAtOnce(planned)
        : planned;
    if (rollout.waves.length === 0) {
      await failBeforeQueue(gh, request, "config", [
        {
          file: CONFIG_PATH,
          line: 1,
          message: `environment ${env.name} lists clusters ${fleetPatterns(fleet).join(", ")}, and no agent that names one of them (SLUICE_AGENT_CLUSTER) has announced itself; nothing was deployed`,
        },
      ]);
      return false;
    }
    return rollout;
  }

  /** Renders the request's commit in a render process; undefined (after a failed check run) when it cannot be deployed. */
  async #render(gh: GitHubClient, request: DeployRequest, env: Environment): Promise<KubeObject[] | undefined> {
    const deps = this.#deps;
    let lease;
    try {
      lease = await deps.checkouts.acquire(`${request.repository.id}-${request.sha}`, () => gh.tarball(request.repository, request.sha));
    } catch (error) {
      if (!(error instanceof UnsafeArchiveError)) throw error;
      await failBeforeQueue(gh, request, "checkout", [{ file: ".", line: 1, message: error.message }]);
      return undefined;
    }
    let side;
    try {
      [side] = await deps.renderer.render(env, [lease.dir], { requireInputs: true });
    } finally {
      lease.release();
    }
    if (!side) throw new Error(`rendering ${env.name} returned nothing`);
    if (side.problems.length > 0) {
      // A transient failure (a timeout, a render process that died) is retried by the queue.
      if (side.transient)
        throw new Error(
          `rendering ${env.name} at ${shortSha(request.sha)} failed and may succeed on retry: ${side.problems[0]?.message ?? ""}`,
        );
      await failBeforeQueue(
        gh,
        request,
        "render",
        side.problems.map((p) => ({ ...p, environment: env.name })),
      );
      return undefined;
    }
    return [...side.resources.values()].map((r) => parseJson(r.json) as KubeObject);
  }
}

/** Makes a deploy's GitHub Deployment (for a fleet, one for the whole environment, its clusters by wave in the payload); returns its id. */
export async function createDeployment(
  gh: GitHubClient,
  request: DeployRequest,
  env: Environment,
  jobId: string,
  rollout?: Rollout,
): Promise<number> {
  return gh.createDeployment(request.repository, {
    sha: request.sha,
    environment: env.name,
    description: deploymentDescription(request),
    payload: {
      jobId,
      reason: request.reason,
      ...(request.from ? { rollbackFrom: request.from } : {}),
      ...(rollout ? { waves: rollout.waves } : {}),
    },
    production: env.production ?? env.name === "production",
    transient: env.transient,
  });
}

/** Whether a report was applied already (before a takeover), or one of the rollout's clusters': its newest state is on the check run. */
function reportedAny(record: DeployRecord): boolean {
  return record.reported !== undefined || (record.rollout !== undefined && Object.keys(record.rollout.clusters).length > 0);
}

/**
 * A deploy's record as its job is queued. A request taken over from a replica that died half way
 * keeps what its record had: the check run, the Deployment and its state, the newest report, and
 * the rollout as it was (its waves and what its clusters reported).
 */
function deployRecord(
  request: DeployRequest,
  options: { hold: AgentJob["hold"]; previous: DeployRecord | undefined; rollout: Rollout | undefined; pipeline: boolean },
): DeployRecord {
  const { previous, rollout } = options;
  return {
    checkRunId: previous?.checkRunId || request.checkRunId || 0,
    deploymentId: previous?.deploymentId ?? 0,
    repository: request.repository,
    installationId: request.installationId,
    environment: request.environment,
    sha: request.sha,
    reason: request.reason,
    hold: options.hold,
    completed: false,
    ...(request.pullRequest ? { pullRequest: request.pullRequest } : {}),
    ...(options.pipeline ? { pipeline: true } : {}),
    ...(previous?.deploymentState ? { deploymentState: previous.deploymentState } : {}),
    ...(previous?.reported ? { reported: previous.reported } : {}),
    ...(rollout ? { rollout: previous?.rollout ?? rollout } : {}),
  };
}

/** A rollout's check-run output as it starts. */
function rolloutOutput(rollout: Rollout, now: number): { title: string; summary: string } {
  const step = nextStep(rollout, now);
  return { title: rolloutTitle(rollout, step), summary: rolloutSummary(rollout, step) };
}

/**
 * What the job does to a hold: a rollback sets one, a sync releases it, and so does the merge of a
 * revert pull request a rollback of this environment opened (the environment's sealed state says
 * which); any other merge keeps it, and the agent does not apply it while held.
 */
async function holdMode(gh: GitHubClient, request: DeployRequest, state: EnvironmentState): Promise<AgentJob["hold"]> {
  if (request.reason === "rollback") return "set";
  if (request.reason === "sync") return "release";
  if (state.revertPulls.length === 0) return "keep";
  const pulls = await gh.mergedPullsFor(request.repository, request.sha);
  return pulls.some((p) => state.revertPulls.includes(p)) ? "release" : "keep";
}

/** Writes the deploy's check run: the one the command already created, or a new one; returns its id. */
async function writeCheckRun(gh: GitHubClient, request: DeployRequest, fields: CheckRunFields): Promise<number> {
  if (request.checkRunId) {
    await gh.updateCheckRun(request.repository, request.checkRunId, fields);
    return request.checkRunId;
  }
  return gh.createCheckRun(request.repository, deployCheckName(request.environment), request.sha, {
    externalId: deployJobId(request),
    ...fields,
  });
}

/** Ends a request that cannot be queued in a failed check run that says why (`cause`) and lists the problems. */
async function failBeforeQueue(gh: GitHubClient, request: DeployRequest, cause: NotQueuedCause, errors: ReportProblem[]): Promise<void> {
  await writeCheckRun(gh, request, notQueuedCheckRun(cause, errors));
}
