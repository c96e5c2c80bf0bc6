import type { NothingToPromote } from "../../core/commands.ts";
import type { Config, Environment } from "../../core/config.ts";
import { deployCheckName } from "../../core/check-names.ts";
import { deployRequest } from "../../core/deploy-requests.ts";
import type { GateFacts, GateState } from "../../core/deploy-phases.ts";
import { gateCheckRun } from "../../core/deploy-status.ts";
import { fullName, shortSha, type RepositoryRef } from "../../core/git-ref.ts";
import { escapeInline } from "../../core/markdown.ts";
import { pipelineLine } from "../../core/pipeline-comment.ts";
import { contains, decidePromotion, kept, lastOutcome, lineIndex, type LineCommit, type PromotionDecision } from "../../core/promotion.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import { writeInBackground, type CheckRunFields, type GitHubClient } from "../github/client.ts";
import type { WriteGuard } from "../github/pacing.ts";
import { discoverFromCheckout, reviewedConfig } from "../github/repository-config.ts";
import type { Logger } from "../log-context.ts";
import type { AppQueues, PromotionCheck } from "../queue/queues.ts";
import type { RedisClient } from "../../redis/connection.ts";
import { promotionLockKey } from "../state/redis-keys.ts";
import { withRedisLock } from "../state/redis-lock.ts";
import type { Gate, GateStates } from "./gate-states.ts";
import { pipelineSteps } from "./pipeline-steps.ts";

/** What promotion needs. */
export interface PromotionDeps {
  redis: RedisClient;
  gates: GateStates;
  queues: AppQueues;
  github: (installationId: number) => Promise<GitHubClient>;
  checkouts: CheckoutCache;
  /** Runs the repository's deploys that wait at an approval or a freeze whose wait may be over. */
  pending: (gh: GitHubClient, check: PromotionCheck, config: Config) => Promise<number[]>;
  /** Told when where the repository's commits are may have changed: the pipeline comments are brought up to date. */
  changed?: (check: PromotionCheck) => Promise<void>;
  now: () => number;
  log: Logger;
}

/** What the app sees happen in an environment: a deploy's end, or a change of its drift. */
export type ObservedEvent = { kind: "deployed" | "failed"; sha: string; at?: number } | { kind: "drift"; drifted: boolean; at?: number };

/** A push as promotion sees it. */
export interface PromotionPush {
  repository: RepositoryRef;
  installationId: number;
  branch: string;
  sha: string;
  pusher: string;
  forced: boolean;
}

/**
 * Moves commits between environments: an environment with `promotion.after` gets the newest commit
 * its upstream environment has run healthy and without drift for the soak time. Everything is
 * decided from the facts kept in the gates (the agents' signed outcomes, the pushes seen, the
 * `/promote`s), under the repository's lock, so two replicas never promote twice; soaks end by
 * delayed checks kept in Redis, so an app restart neither loses nor restarts one.
 */
export class Promotions {
  readonly #deps: PromotionDeps;

  constructor(deps: PromotionDeps) {
    this.#deps = deps;
  }

  /**
   * A push to a branch that environments are promoted on: the commit joins the line, each
   * promoted environment shows a deploy check run that waits for its upstream, and a check runs.
   * Returns the environments promoted rather than deployed by the push.
   */
  async pushed(gh: GitHubClient, push: PromotionPush, config: Config): Promise<string[]> {
    const promoted = config.environments.filter((e) => e.branch === push.branch && e.autoDeploy && e.promotion);
    if (promoted.length === 0) return [];
    const deps = this.#deps;
    await deps.gates.push(push.repository.id, push.branch, {
      sha: push.sha,
      at: deps.now(),
      forced: push.forced,
      pusher: push.pusher,
    });
    const line = await deps.gates.line(push.repository.id, push.branch);
    for (const env of promoted) {
      const after = env.promotion?.after ?? "";
      await deps.gates.update(push.repository.id, after, (g) => [{ ...g, feeds: true }, undefined]);
      const gate = await deps.gates.load(push.repository.id, env.name);
      // A push seen again (a redelivery, another replica) after its commit was promoted waits for nothing.
      if (gate.waiting.some((w) => w.sha === push.sha) || asked(line, gate, push.sha)) continue;
      const fields = gateCheckRun("promotion", { after: escapeInline(env.promotion?.after ?? ""), environment: escapeInline(env.name) });
      const title = fields.output.title;
      const checkRunId = await gh.createCheckRun(push.repository, deployCheckName(env.name), push.sha, {
        externalId: `promotion-${push.repository.id}-${env.name}-${push.sha}`,
        ...fields,
      });
      await deps.gates.update(push.repository.id, env.name, (g) => [
        { ...g, waiting: g.waiting.some((w) => w.sha === push.sha) ? g.waiting : kept(g.waiting, { sha: push.sha, checkRunId, title }) },
        undefined,
      ]);
    }
    await this.check({ repository: push.repository, installationId: push.installationId });
    return promoted.map((e) => e.name);
  }

  /**
   * An environment's deploy ended, or its drift changed: recorded at the time it happened (a
   * deploy report's signed time, never later than the app's clock), and its downstream
   * environments are looked at again.
   */
  async observed(check: PromotionCheck, environment: string, event: ObservedEvent): Promise<void> {
    const at = Math.min(event.at ?? Infinity, this.#deps.now());
    const { feeds, promoted } = await this.#deps.gates.record(check.repository.id, environment, { ...event, at });
    if (feeds) await this.check(check);
    // An environment of a pipeline changed: the merged pull requests' pipeline comments show it.
    if (feeds || promoted) await this.#deps.changed?.(check);
  }

  /** The newest commit an environment was asked to deploy, when promotion has asked it anything. */
  async promotedSha(repositoryId: number, environment: string): Promise<string | undefined> {
    return (await this.#deps.gates.load(repositoryId, environment)).requested?.sha;
  }

  /** Asks for a promotion check of the repository now (by a queue job, so a failure is retried). */
  async check(check: PromotionCheck): Promise<void> {
    await this.#deps.queues.addPromotionCheck(check, this.#deps.now());
  }

  /**
   * `/promote <env>`: the newest commit the upstream environment has deployed healthy counts as
   * soaked from now, recorded with who and why. Nothing to promote when the upstream's newest
   * outcome is a failure, or it runs nothing the environment was not already asked to deploy.
   */
  async promote(
    check: PromotionCheck,
    env: Environment,
    by: string,
    reason: string,
  ): Promise<{ ok: true; sha: string } | { ok: false; why: NothingToPromote }> {
    const deps = this.#deps;
    const after = env.promotion?.after;
    if (!after) return { ok: false, why: { kind: "not-gated" } };
    const [upstream, own, line] = await Promise.all([
      deps.gates.load(check.repository.id, after),
      deps.gates.load(check.repository.id, env.name),
      deps.gates.line(check.repository.id, env.branch),
    ]);
    const last = lastOutcome(upstream.events);
    if (last?.kind === "failed") return { ok: false, why: { kind: "upstream-failed", upstream: after, sha: last.sha } };
    const sha = last?.sha;
    if (!sha || asked(line, own, sha)) return { ok: false, why: { kind: "nothing-soaking", upstream: after } };
    const now = deps.now();
    await deps.gates.update(check.repository.id, env.name, (g) => [
      { ...g, promotions: kept(g.promotions, { kind: "promoted", sha, at: now, by, reason }) },
      undefined,
    ]);
    await this.check({ repository: check.repository, installationId: check.installationId });
    return { ok: true, sha };
  }

  /**
   * A promotion check: under the repository's lock, each promoted environment (in the
   * configuration's order, so a chain moves in one pass) gets the commit it is due, its waiting
   * check runs say where their commits are, the deploys waiting at an approval or freeze are
   * looked at again, and the next check is asked for at the soonest moment something can change.
   */
  async run(check: PromotionCheck): Promise<void> {
    const deps = this.#deps;
    await withRedisLock(deps.redis, promotionLockKey(check.repository.id), { ttlMs: 120_000, waitMs: 120_000, pollMs: 50 }, async () => {
      const started = deps.now();
      const gh = await deps.github(check.installationId);
      const config = await reviewedConfig(gh, check.repository, discoverFromCheckout(deps.checkouts, gh, check.repository));
      if (!config.ok) {
        deps.log.warn({ repository: fullName(check.repository) }, "promotions not checked: the default branch's configuration is invalid");
        return;
      }
      const wakes: number[] = [];
      const decided: [Environment, LineCommit[], PromotionDecision][] = [];
      for (const env of config.config.environments) {
        if (!env.promotion || !env.autoDeploy) continue;
        const [line, decision] = await this.#promote(gh, check, env, env.promotion);
        decided.push([env, line, decision]);
        if (decision.wakeAt !== undefined) wakes.push(decision.wakeAt);
      }
      for (const [env, line, decision] of decided) {
        const steps = await pipelineSteps(deps.gates, check.repository.id, config.config, env.branch, line);
        await this.#showWaiting(gh, check, env, line, decision, (sha) => pipelineLine(steps(sha)));
      }
      wakes.push(...(await deps.pending(gh, check, config.config)));
      // Every wake ahead of when this check began is kept: one that passed while it ran is due at once.
      const next = Math.min(...wakes.filter((at) => at > started));
      if (Number.isFinite(next)) await deps.queues.addPromotionCheck(check, next);
      await deps.changed?.(check);
    });
  }

  /** One promoted environment: queues the commit it is due; returns its branch's line and the decision. */
  async #promote(
    gh: GitHubClient,
    check: PromotionCheck,
    env: Environment,
    promotion: NonNullable<Environment["promotion"]>,
  ): Promise<[LineCommit[], PromotionDecision]> {
    const deps = this.#deps;
    const repositoryId = check.repository.id;
    const [line, upstream, own] = await Promise.all([
      deps.gates.line(repositoryId, env.branch),
      deps.gates.load(repositoryId, promotion.after),
      deps.gates.load(repositoryId, env.name),
    ]);
    const now = deps.now();
    const decision = decidePromotion({
      line,
      upstream: upstream.events,
      promotions: own.promotions,
      requested: own.requested?.sha,
      soakMs: promotion.soak,
      now,
    });
    if (decision.promote) await this.#queue(gh, check, env, line, own, decision.promote);
    return [line, decision];
  }

  /** Queues the promotion of `sha` to `env`, in the check run that waited for it; the commits it contains are passed over. */
  async #queue(gh: GitHubClient, check: PromotionCheck, env: Environment, line: LineCommit[], own: Gate, sha: string): Promise<void> {
    const deps = this.#deps;
    const now = deps.now();
    const waiting = own.waiting.find((w) => w.sha === sha);
    const commit = line[lineIndex(line, sha)];
    await deps.queues.addDeployRequest(
      deployRequest(
        {
          repository: check.repository,
          installationId: check.installationId,
          environment: env.name,
          sha,
          reason: "merge",
          requestedBy: commit?.pusher ?? "sluice",
          trigger: "promotion",
          ...(waiting ? { checkRunId: waiting.checkRunId } : {}),
        },
        now,
      ),
    );
    const index = lineIndex(line, sha);
    const passed = own.waiting.filter((w) => w.sha !== sha && contains(line, index, lineIndex(line, w.sha)));
    await deps.gates.update(check.repository.id, env.name, (g) => [
      {
        ...g,
        requested: { sha, at: now },
        waiting: g.waiting.filter((w) => w.sha !== sha && !passed.some((p) => p.sha === w.sha)),
      },
      undefined,
    ]);
    deps.log.info({ repository: fullName(check.repository), environment: env.name, sha }, "commit promoted");
    for (const w of passed)
      this.#write(gh.updateCheckRun(check.repository, w.checkRunId, gateCheckRun("passed", { sha: shortSha(sha) }), { coalesce: true }));
  }

  /**
   * A check-run write of a waiting commit, not awaited: it waits its turn in the installation's
   * write pacing while the check goes on and the repository's lock is let go, so a soak's end is
   * never held up behind writes. A write that fails is logged; the next change writes the state whole.
   */
  #write(write: Promise<void>): void {
    writeInBackground(write, this.#deps.log, {}, "promotion state not written to GitHub");
  }

  /** Each commit still waiting for its promotion shows where it is: waiting, soaking (until when), or stopped by a failure upstream. */
  async #showWaiting(
    gh: GitHubClient,
    check: PromotionCheck,
    env: Environment,
    line: LineCommit[],
    decision: PromotionDecision,
    pipeline: (sha: string) => string,
  ): Promise<void> {
    const deps = this.#deps;
    const repositoryId = check.repository.id;
    const own = await deps.gates.load(repositoryId, env.name);
    const changed: { sha: string; checkRunId: number; title: string; fields: CheckRunFields }[] = [];
    for (const w of own.waiting) {
      const [state, facts] = waitingState(env, line, decision, w.sha);
      const fields = gateCheckRun(state, { ...facts, environment: escapeInline(env.name) });
      // What the check run shows: its title, and the pipeline line its summary ends with.
      const shown = `${fields.output.title}\n${pipeline(w.sha)}`;
      if (shown === w.title) continue;
      const output = { ...fields.output, summary: `${fields.output.summary}\n\n**Pipeline:** ${pipeline(w.sha)}` };
      changed.push({ sha: w.sha, checkRunId: w.checkRunId, title: shown, fields: { ...fields, output } });
    }
    if (changed.length === 0) return;
    await deps.gates.update(repositoryId, env.name, (g) => [
      { ...g, waiting: g.waiting.map((w) => ({ ...w, title: changed.find((c) => c.sha === w.sha)?.title ?? w.title })) },
      undefined,
    ]);
    // When its turn comes, a state goes out only while its commit still waits and nothing newer was
    // shown: another replica may have promoted the commit, whose deploy now writes its check run.
    for (const c of changed) {
      const guard: WriteGuard = async (send) => {
        const gate = await deps.gates.load(repositoryId, env.name);
        return gate.waiting.some((w) => w.sha === c.sha && w.title === c.title) ? send() : undefined;
      };
      this.#write(gh.updateCheckRun(check.repository, c.checkRunId, c.fields, { coalesce: true, guard }));
    }
  }
}

/** Where a commit waiting for its promotion stands, as a gate state and its facts. */
function waitingState(env: Environment, line: LineCommit[], decision: PromotionDecision, sha: string): [GateState, GateFacts] {
  const after = escapeInline(env.promotion?.after ?? "");
  const index = lineIndex(line, sha);
  const stopped = decision.stopped;
  if (stopped && contains(line, index, lineIndex(line, stopped.sha))) return ["stopped", { after, sha: shortSha(stopped.sha) }];
  const since = decision.statuses.get(sha)?.since;
  if (since !== undefined) {
    const ends = new Date(since + (env.promotion?.soak ?? 0));
    return ["soaking", { after, soak: `ends ${ends.toISOString().slice(11, 16)} UTC` }];
  }
  return ["promotion", { after }];
}

/** Whether the environment was already asked for `sha`, or a commit of the line that contains it. */
function asked(line: readonly LineCommit[], gate: Gate, sha: string): boolean {
  const requested = gate.requested ? lineIndex(line, gate.requested.sha) : -1;
  return requested >= 0 && contains(line, requested, lineIndex(line, sha));
}
