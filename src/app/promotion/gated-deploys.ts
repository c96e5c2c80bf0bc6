import { randomUUID } from "node:crypto";
import { approversText, judgeApproval, type ApprovalJudgement, type ApproverFacts } from "../../core/approval.ts";
import type { Config, Environment } from "../../core/config.ts";
import { decideGate, hasDeployGates, type GateDecision } from "../../core/deploy-gate.ts";
import { broughtBy } from "../../core/promotion.ts";
import { deployCheckName } from "../../core/check-names.ts";
import { deployJobId, type DeployRequest } from "../../core/deploy-requests.ts";
import { GATE_STATES, type GateFacts, type GateState } from "../../core/deploy-phases.ts";
import { gateCheckRun } from "../../core/deploy-status.ts";
import { formatDuration } from "../../core/duration.ts";
import { escapeInline } from "../../core/markdown.ts";
import { shortSha, type RepositoryRef } from "../../core/git-ref.ts";
import { approverFacts } from "../github/approvers.ts";
import { checkRunUrl, writeInBackground, type GitHubClient } from "../github/client.ts";
import type { Logger } from "../log-context.ts";
import type { PromotionCheck } from "../queue/queues.ts";
import type { DeployRecord, DeployRecords } from "../deploy/deploy-records.ts";
import type { Gate, GateStates, PendingDeploy } from "./gate-states.ts";

/** At most this many commits besides its own are brought by a waiting deploy (their authors are looked up on approval). */
const MAX_BROUGHT = 50;

/** What holding deploys at approvals and freezes needs. */
export interface GatedDeployDeps {
  gates: GateStates;
  records: DeployRecords;
  /** Makes a deploy's GitHub Deployment (as the deploy pipeline makes them); returns its id. */
  createDeployment: (gh: GitHubClient, request: DeployRequest, env: Environment, jobId: string) => Promise<number>;
  /** Asks for a promotion check of the repository at `at`: a freeze's end, an approval's timeout, enough approvals. */
  wake: (check: PromotionCheck, at: number) => Promise<void>;
  /** Hands a deploy whose wait is over to the deploy pipeline again. */
  prepare: (request: DeployRequest) => Promise<void>;
  /** Told when a deploy starts to wait: the pipeline comments show it. */
  changed?: (check: PromotionCheck) => Promise<void>;
  webUrl: string;
  now: () => number;
  log: Logger;
}

/** Whether a deploy goes to the agents now, and a note for its check run when it goes through a freeze. */
export type Admission = { go: true; note?: string } | { go: false };

/** An approval's outcome: counted (with how many there are now), or refused with the reason; or nothing waits. */
export type ApprovalOutcome =
  { kind: "counted"; approvals: number; required: number; sha: string } | { kind: "refused"; reason: string } | { kind: "none" };

/**
 * Deploys that wait at an environment's approval or freeze. A deploy that must wait becomes the
 * environment's pending deploy (a newer one replaces it: newest wins), with a check run and a
 * GitHub Deployment that say what it waits for; approvals, refusals and timeouts are recorded on
 * both. When its wait is over it goes back through the deploy pipeline, which signs it then, so
 * the agent gets a fresh job however long it waited.
 */
export class GatedDeploys {
  readonly #deps: GatedDeployDeps;

  constructor(deps: GatedDeployDeps) {
    this.#deps = deps;
  }

  /** Whether `request` goes to the agents now; when not, it waits as the environment's pending deploy. */
  async admit(gh: GitHubClient, request: DeployRequest, env: Environment): Promise<Admission> {
    const deps = this.#deps;
    const now = deps.now();
    // Promotion moves an environment only past what it was last asked to deploy, however it was asked.
    const asked = (gate: Gate): Gate => (env.promotion ? { ...gate, requested: { sha: request.sha, at: now } } : gate);
    if (!hasDeployGates(env)) {
      if (env.promotion) await deps.gates.update(request.repository.id, env.name, (gate) => [asked(gate), undefined]);
      return { go: true };
    }
    const promoted = await this.#promotedAlong(request, env);
    const jobId = deployJobId(request);
    type Admitted =
      { overtakenBy: PendingDeploy } | { decision: GateDecision; replaced: PendingDeploy | undefined; pending: PendingDeploy };
    const admitted = await deps.gates.update(request.repository.id, env.name, (current): [Gate, Admitted] => {
      // Requests are rendered and admitted in any order (several at once, retries): one older than
      // the deploy already waiting (and still able to go) takes neither its place nor what the
      // environment was asked: newest by sequence, not by arrival.
      const newer = current.pending;
      if (newer && newer.jobId !== jobId && newer.request.sequence > request.sequence && decidePending(env, newer, now).kind !== "end")
        return [current, { overtakenBy: newer }];
      const gate = asked(current);
      const same = gate.pending?.jobId === jobId ? gate.pending : undefined;
      const waiting: PendingDeploy = same ?? {
        jobId,
        request,
        since: now,
        approvals: [],
        ...(request.overrideFreeze ? { override: { ...request.overrideFreeze, at: now } } : {}),
        brings: carried(gate.pending, request.sha, promoted),
      };
      const decided = decidePending(env, waiting, now);
      const old = gate.pending && gate.pending.jobId !== jobId ? gate.pending : undefined;
      const next = { ...gate };
      if (decided.kind === "wait") next.pending = waiting;
      else delete next.pending;
      return [next, { decision: decided, replaced: old, pending: waiting }];
    });
    if ("overtakenBy" in admitted) {
      await this.#overtaken(gh, request, env, admitted.overtakenBy);
      return { go: false };
    }
    const { decision, replaced, pending } = admitted;
    if (replaced) await this.#end(gh, replaced, "passed", { sha: shortSha(request.sha) });
    if (decision.kind === "go") {
      const override = pending.override;
      return override
        ? { go: true, note: `Applied during a freeze: overridden by ${escapeInline(override.by)}: ${escapeInline(override.reason)}.` }
        : { go: true };
    }
    if (decision.kind === "end") {
      await this.#end(gh, pending, decision.state, this.#facts(env, decision, pending));
      return { go: false };
    }
    await this.#show(gh, pending, env, decision.state, this.#facts(env, decision, pending));
    const check = { repository: request.repository, installationId: request.installationId };
    if (decision.wakeAt !== undefined) await deps.wake(check, decision.wakeAt);
    if (env.promotion) await deps.changed?.(check);
    return { go: false };
  }

  /** The commits of the promotion line a promoted `request` brings besides its own: those the environment has not deployed. */
  async #promotedAlong(request: DeployRequest, env: Environment): Promise<PendingDeploy["brings"]> {
    if (!env.promotion || !env.approval) return [];
    const { gates } = this.#deps;
    const [line, own] = await Promise.all([gates.line(request.repository.id, env.branch), gates.load(request.repository.id, env.name)]);
    const runs = own.events.findLast((e) => e.kind === "deployed");
    return broughtBy(line, runs?.kind === "deployed" ? runs.sha : undefined, request.sha, MAX_BROUGHT).map((c) => ({
      sha: c.sha,
      merger: c.pusher,
    }));
  }

  /**
   * Looks again at each environment's pending deploy: one whose wait is over goes to the agents,
   * one whose approval timed out ends. Returns when to look again (a freeze's end, a timeout).
   */
  async release(gh: GitHubClient, check: PromotionCheck, config: Config): Promise<number[]> {
    const deps = this.#deps;
    const wakes: number[] = [];
    for (const env of config.environments) {
      if (!hasDeployGates(env)) continue;
      const gate = await deps.gates.load(check.repository.id, env.name);
      const pending = gate.pending;
      if (!pending) continue;
      const decision = decidePending(env, pending, deps.now());
      if (decision.kind === "wait") {
        if (decision.wakeAt !== undefined) wakes.push(decision.wakeAt);
        continue;
      }
      // The pipeline admits it again and finds its wait over (or its approval timed out).
      await deps.prepare(pending.request);
    }
    return wakes;
  }

  /**
   * Records `login`'s approval of the environment's pending deploy, when the policy counts it.
   * `sha`, given by the Approve button, is the commit of the check run pressed: an approval counts
   * only for the deploy its approver saw, never for a newer one that replaced it meanwhile.
   */
  async approve(
    gh: GitHubClient,
    env: Environment,
    request: Pick<DeployRequest, "repository">,
    login: string,
    sha?: string,
  ): Promise<ApprovalOutcome> {
    const deps = this.#deps;
    const policy = env.approval;
    const repository = request.repository;
    const gate = await deps.gates.load(repository.id, env.name);
    const pending = gate.pending;
    if (!policy || !pending) return { kind: "none" };
    if (sha !== undefined && pending.request.sha !== sha)
      return {
        kind: "refused",
        reason: `${shortSha(sha)} no longer waits for approval in ${env.name}: ${shortSha(pending.request.sha)} replaced it, and its own check run has the Approve button`,
      };
    const author = pending.author ?? (await authorOf(gh, pending.request.repository, pending.request.sha, pending.request.pullRequest));
    const merger = pending.merger ?? (pending.request.reason === "merge" ? pending.request.requestedBy : undefined);
    const judged = await judgeAll(gh, policy, await approverFacts(gh, repository, login, policy), {
      pending,
      author,
      merger,
    });
    if (!judged.ok) return { kind: "refused", reason: judged.reason };
    const updated = await deps.gates.update(repository.id, env.name, (g) => {
      if (g.pending?.jobId !== pending.jobId) return [g, undefined];
      const next: PendingDeploy = {
        ...g.pending,
        approvals: [...g.pending.approvals, { login, at: deps.now() }],
        ...(author ? { author } : {}),
        ...(merger ? { merger } : {}),
      };
      return [{ ...g, pending: next }, next];
    });
    if (!updated) return { kind: "none" };
    deps.log.info({ environment: env.name, sha: pending.request.sha, by: login }, "deploy approved");
    const decision = decidePending(env, updated, deps.now());
    if (decision.kind === "wait") await this.#show(gh, updated, env, decision.state, this.#facts(env, decision, updated));
    else await deps.wake({ repository, installationId: updated.request.installationId }, deps.now());
    return { kind: "counted", approvals: updated.approvals.length, required: policy.required, sha: updated.request.sha };
  }

  /** Ends the environment's pending deploy as rejected by `login`; false when nothing waits. */
  async reject(
    gh: GitHubClient,
    env: Environment,
    repositoryId: number,
    login: string,
    reason: string,
  ): Promise<PendingDeploy | undefined> {
    const deps = this.#deps;
    const pending = await deps.gates.update(repositoryId, env.name, (g) => {
      const next = { ...g };
      delete next.pending;
      return [next, g.pending];
    });
    if (!pending) return undefined;
    await this.#end(gh, pending, "refused", { by: escapeInline(login), reason: escapeInline(reason) });
    deps.log.info({ environment: env.name, sha: pending.request.sha, by: login }, "deploy rejected");
    return pending;
  }

  #facts(env: Environment, decision: Exclude<GateDecision, { kind: "go" }>, pending: PendingDeploy): GateFacts {
    return {
      ...decision.facts,
      environment: escapeInline(env.name),
      ...(env.approval
        ? { approvers: approversText(env.approval), ...(env.approval.timeout ? { timeout: formatDuration(env.approval.timeout) } : {}) }
        : {}),
      approvedBy: pending.approvals.map((a) => escapeInline(a.login)),
    };
  }

  /**
   * Shows a waiting deploy's state on its check run and Deployment, making them when it has none
   * yet. Only the making is done under the deploy's lock (their ids are what its release and its
   * reports write to): the Deployment first and the check run last, so a deploy seen waiting on its
   * commit can go at once when approved. The states go out after the lock is let go, each in its
   * turn, and only while this is still the newest thing shown of the deploy: an approval that
   * releases it, a newer wait, or another replica's state replaces them.
   */
  async #show(gh: GitHubClient, pending: PendingDeploy, env: Environment, state: GateState, facts: GateFacts): Promise<void> {
    const deps = this.#deps;
    const { request, jobId } = pending;
    const fields = gateCheckRun(state, facts);
    const deployment = GATE_STATES[state].deployment;
    const shown = randomUUID();
    const { record, created } = await deps.records.exclusive(jobId, 60_000, async () => {
      const previous = await deps.records.load(jobId);
      const record: DeployRecord = previous ?? {
        checkRunId: request.checkRunId ?? 0,
        deploymentId: 0,
        repository: request.repository,
        installationId: request.installationId,
        environment: env.name,
        sha: request.sha,
        reason: request.reason,
        hold: "keep",
        completed: false,
        ...(request.pullRequest ? { pullRequest: request.pullRequest } : {}),
      };
      await deps.records.markWaiting(jobId, shown);
      if (deployment) record.deploymentState = deployment;
      if (!record.deploymentId) {
        record.deploymentId = await deps.createDeployment(gh, request, env, jobId);
        await deps.records.save(jobId, record);
      }
      const created = !record.checkRunId;
      if (created)
        record.checkRunId = await gh.createCheckRun(request.repository, deployCheckName(env.name), request.sha, {
          externalId: jobId,
          ...fields,
        });
      await deps.records.save(jobId, record);
      return { record, created };
    });
    const guard = deps.records.whileWaiting(jobId, shown);
    if (!created) this.#write(gh.updateCheckRun(request.repository, record.checkRunId, fields, { coalesce: true, guard }));
    if (deployment)
      this.#write(
        gh.deploymentStatus(
          request.repository,
          record.deploymentId,
          { state: deployment, description: fields.output.title, logUrl: checkRunUrl(deps.webUrl, request.repository, record.checkRunId) },
          { coalesce: true, guard },
        ),
      );
  }

  /** A waiting deploy's state, on its way to GitHub in the background. */
  #write(write: Promise<void>): void {
    writeInBackground(write, this.#deps.log, {}, "waiting deploy's state not written to GitHub");
  }

  /**
   * A request that reached the gate after a newer deploy of its environment began to wait: it never
   * waits itself. A check run of its own (a command's) says which commit waits in its place. One
   * with a record was handed to the agents before (its replica died before the queue heard so):
   * its reports say how it ends, and the agent supersedes it by the newer one's sequence.
   */
  async #overtaken(gh: GitHubClient, request: DeployRequest, env: Environment, newer: PendingDeploy): Promise<void> {
    const deps = this.#deps;
    const jobId = deployJobId(request);
    deps.log.info({ job: jobId, environment: env.name, newer: newer.jobId }, "deploy request older than the waiting deploy; not deployed");
    if (!request.checkRunId || (await deps.records.load(jobId))) return;
    const fields = gateCheckRun("overtaken", { sha: shortSha(newer.request.sha), environment: env.name });
    await gh.updateCheckRun(request.repository, request.checkRunId, fields, { coalesce: true });
  }

  /** Ends a deploy that will not be applied (rejected, timed out, replaced) on its check run and Deployment. */
  async #end(
    gh: GitHubClient,
    pending: PendingDeploy,
    state: Extract<GateState, "refused" | "timedOut" | "passed">,
    facts: GateFacts,
  ): Promise<void> {
    const deps = this.#deps;
    const { request, jobId } = pending;
    const fields = gateCheckRun(state, facts);
    await deps.records.exclusive(jobId, 60_000, async () => {
      const record = await deps.records.load(jobId);
      if (!record || record.completed) return;
      // Waiting states still on their way (this replica's or another's) are turned down from now on: this end's go after them.
      await deps.records.clearWaiting(jobId);
      if (record.checkRunId) await gh.updateCheckRun(request.repository, record.checkRunId, fields, { coalesce: true });
      const deployment = GATE_STATES[state].deployment;
      if (record.deploymentId)
        await gh.deploymentStatus(
          request.repository,
          record.deploymentId,
          { state: deployment, description: fields.output.title, logUrl: checkRunUrl(deps.webUrl, request.repository, record.checkRunId) },
          { coalesce: true },
        );
      await deps.records.save(jobId, { ...record, completed: true });
    });
  }
}

/** What the environment's gates decide for a deploy waiting (or about to wait) there, at `now`. */
function decidePending(env: Environment, pending: PendingDeploy, now: number): GateDecision {
  return decideGate(env, { ...pending, reason: pending.request.reason }, now);
}

/** The author of the merged pull request commit `sha` came from, when there is one. */
async function authorOf(gh: GitHubClient, repository: RepositoryRef, sha: string, pullRequest?: number): Promise<string | undefined> {
  const [number] = pullRequest ? [pullRequest] : await gh.mergedPullsFor(repository, sha);
  if (number === undefined) return undefined;
  const pull = await gh.pullRequest(repository, number);
  return pull.author || undefined;
}

/**
 * What a new waiting deploy of `sha` brings besides its own commit: the commits of the promotion
 * line it passes (`promoted`), and from the waiting deploy it replaces, that one's commit and merger
 * and what it brought.
 */
function carried(old: PendingDeploy | undefined, sha: string, promoted: PendingDeploy["brings"]): PendingDeploy["brings"] {
  const merger = old && (old.merger ?? (old.request.reason === "merge" ? old.request.requestedBy : undefined));
  const replaced = old ? [...old.brings, { sha: old.request.sha, ...(merger ? { merger } : {}) }] : [];
  const all = [...replaced, ...promoted];
  return all.filter((b, i) => b.sha !== sha && all.findIndex((o) => o.sha === b.sha && o.merger === b.merger) === i).slice(-MAX_BROUGHT);
}

/**
 * Judges an approval of the pending deploy's own commit (its `author` and `merger`), then of each
 * commit it brings from the deploys it replaced: four eyes holds for every change that applies.
 */
async function judgeAll(
  gh: GitHubClient,
  policy: NonNullable<Environment["approval"]>,
  approver: ApproverFacts,
  subject: { pending: PendingDeploy; author: string | undefined; merger: string | undefined },
): Promise<ApprovalJudgement> {
  const { pending } = subject;
  const own = judgeApproval(policy, approver, { author: subject.author, merger: subject.merger, approvals: pending.approvals });
  if (!own.ok || !policy.notAuthor) return own;
  for (const brought of pending.brings) {
    const author = await authorOf(gh, pending.request.repository, brought.sha);
    const judged = judgeApproval(policy, approver, { author, merger: brought.merger, approvals: [] });
    if (!judged.ok) return { ok: false, reason: `this deploy brings ${shortSha(brought.sha)} too, and of it: ${judged.reason}` };
  }
  return own;
}
