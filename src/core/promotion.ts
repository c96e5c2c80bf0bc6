import { z } from "zod";
import type { Config } from "./config.ts";
import { commitShaSchema } from "./git-ref.ts";

/**
 * Promotion between environments, decided from what the app has seen: the commits pushed to a
 * branch (the line), and each environment's deploy outcomes and drift checks, taken from the
 * agents' signed reports. Pure: the app keeps these facts sealed in Redis and asks here what to do.
 *
 * A commit has soaked in an environment once the environment has run it, or a later commit of the
 * line that contains it, healthy and without drift for the soak time without a break. A newer
 * merge never restarts the clock of an older commit: it joins the run the older one is in. A
 * failed deploy or a detected drift breaks the run; the commit that failed (and every later one)
 * is not proven until a deploy after it succeeds (a fix, or a `/sync`), and a drift that is
 * cleared starts a new run of the commit the environment runs.
 */

/** At most this many commits of a branch, and events of an environment, are kept. */
export const KEPT_FACTS = 200;

/** A commit pushed to a branch, in push order. */
export const lineCommitSchema = z.strictObject({
  sha: commitShaSchema,
  /** When the app saw the push, in ms. */
  at: z.number().int().nonnegative(),
  /** Pushed with force: it need not contain the commits before it. */
  forced: z.boolean(),
  pusher: z.string().min(1),
});
/** A commit pushed to a branch, in push order. */
export type LineCommit = z.infer<typeof lineCommitSchema>;

/** Something that happened in an environment, as far as promotion goes. */
export const environmentEventSchema = z.discriminatedUnion("kind", [
  /** A deploy of the commit ended healthy (the agent's final report, health wait passed). */
  z.strictObject({ kind: z.literal("deployed"), sha: commitShaSchema, at: z.number().int().nonnegative() }),
  /** A deploy of the commit failed, or was rejected by the agent. */
  z.strictObject({ kind: z.literal("failed"), sha: commitShaSchema, at: z.number().int().nonnegative() }),
  /** A drift check: the live environment differs from its commit (or no longer does). */
  z.strictObject({ kind: z.literal("drift"), drifted: z.boolean(), at: z.number().int().nonnegative() }),
  /** `/promote`: the commit counts as soaked from now, whoever asked and why. */
  z.strictObject({
    kind: z.literal("promoted"),
    sha: commitShaSchema,
    at: z.number().int().nonnegative(),
    by: z.string().min(1),
    reason: z.string(),
  }),
]);
/** Something that happened in an environment, as far as promotion goes. */
export type EnvironmentEvent = z.infer<typeof environmentEventSchema>;

/** Where a commit of the line stands in an upstream environment. */
export interface SoakStatus {
  /** When its soak ended (or `/promote` moved it past), once it has. */
  soakedAt?: number;
  /** The start of the run it is soaking in now, while it is. */
  since?: number;
}

/** The position of `sha` in the line, or -1. */
export function lineIndex(line: readonly LineCommit[], sha: string): number {
  for (let i = line.length - 1; i >= 0; i--) if (line[i]?.sha === sha) return i;
  return -1;
}

/** Whether the commit at `later` contains the one at `earlier`: the same or after it, with no force push between. */
export function contains(line: readonly LineCommit[], later: number, earlier: number): boolean {
  if (earlier < 0 || later < earlier) return false;
  for (let i = earlier + 1; i <= later; i++) if (line[i]?.forced) return false;
  return true;
}

/** The commits of the line that the commit at `index` contains, oldest first. */
function containedBy(line: readonly LineCommit[], index: number): number[] {
  const out: number[] = [];
  for (let i = index; i >= 0; i--) {
    out.push(i);
    if (line[i]?.forced) break;
  }
  return out.reverse();
}

/**
 * Where each commit of the line stands in an environment whose events are `events` (any order),
 * at `now`, for a soak of `soakMs`: the index of the array is the commit's in the line.
 */
export function soakStatuses(line: readonly LineCommit[], events: readonly EnvironmentEvent[], soakMs: number, now: number): SoakStatus[] {
  const statuses: SoakStatus[] = line.map(() => ({}));
  /** The commit the environment runs in the current healthy run, and whether a run is open. */
  let running = -1;
  let open = false;
  let brokenByDrift = false;
  const close = (at: number): void => {
    for (const status of statuses) {
      if (status.since !== undefined && status.soakedAt === undefined && status.since + soakMs <= at)
        status.soakedAt = status.since + soakMs;
      delete status.since;
    }
    open = false;
  };
  const start = (index: number, at: number): void => {
    for (const i of containedBy(line, index)) {
      const status = statuses[i];
      if (status && status.since === undefined) status.since = at;
    }
  };
  const ordered = [...events].filter((e) => e.at <= now).sort((a, b) => a.at - b.at);
  for (const event of ordered) {
    if (event.kind === "promoted") {
      const index = lineIndex(line, event.sha);
      for (const i of index >= 0 ? containedBy(line, index) : []) {
        const status = statuses[i];
        // A soak that ended before the `/promote` keeps its own end.
        if (status && status.soakedAt === undefined)
          status.soakedAt = status.since !== undefined && status.since + soakMs <= event.at ? status.since + soakMs : event.at;
      }
      continue;
    }
    if (event.kind === "drift") {
      if (event.drifted && open) {
        close(event.at);
        brokenByDrift = true;
      } else if (!event.drifted && !open && brokenByDrift && running >= 0) {
        open = true;
        brokenByDrift = false;
        start(running, event.at);
      }
      continue;
    }
    const index = lineIndex(line, event.sha);
    if (event.kind === "failed") {
      if (open) close(event.at);
      brokenByDrift = false;
      running = -1;
      continue;
    }
    // A deploy of a commit the line does not know (pushed before the app kept the line) proves nothing of it.
    if (index < 0) {
      if (open) close(event.at);
      running = -1;
      continue;
    }
    if (open && !contains(line, index, running)) close(event.at);
    open = true;
    brokenByDrift = false;
    running = index;
    start(index, event.at);
  }
  // A run still open keeps its start: its commits have soaked once the soak time has passed since.
  for (const status of statuses) {
    if (status.since === undefined) continue;
    if (status.soakedAt === undefined && status.since + soakMs <= now) status.soakedAt = status.since + soakMs;
    if (status.soakedAt !== undefined) delete status.since;
  }
  return statuses;
}

/** What promotion asks of an environment now. */
export interface PromotionDecision {
  /** The commit to deploy now: the newest that has soaked upstream, that the branch still has, and that the environment was not yet asked for. */
  promote?: string;
  /** When to look again: the soonest end of a soak under way. */
  wakeAt?: number;
  /** Each commit of the line as it stands upstream, by SHA. */
  statuses: Map<string, SoakStatus>;
  /** The upstream environment's newest outcome by `now` was a failure of this commit: the line is stopped there. */
  stopped?: { sha: string; at: number };
}

/** What deciding a promotion looks at. */
export interface PromotionFacts {
  line: readonly LineCommit[];
  /** The upstream environment's events. */
  upstream: readonly EnvironmentEvent[];
  /** `/promote`s of the environment: they move a commit past the upstream soak. */
  promotions: readonly EnvironmentEvent[];
  /** The newest commit the environment was asked to deploy (by a promotion, a sync or a rollback). */
  requested: string | undefined;
  soakMs: number;
  now: number;
}

/** Decides what an environment gated by promotion should do now. */
export function decidePromotion(facts: PromotionFacts): PromotionDecision {
  const { line, now } = facts;
  const list = soakStatuses(line, [...facts.upstream, ...facts.promotions], facts.soakMs, now);
  const statuses = new Map(line.map((commit, i) => [commit.sha, list[i] ?? {}]));
  // Only a commit the branch still has (no force push since) may be promoted: one it dropped is not
  // sent to the environment, however well it soaked upstream.
  const head = line.length - 1;
  let candidate = -1;
  let wakeAt: number | undefined;
  list.forEach((status, i) => {
    if (status.soakedAt !== undefined && contains(line, head, i)) candidate = i;
    if (status.since !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, status.since + facts.soakMs);
  });
  const decision: PromotionDecision = { statuses, ...(wakeAt !== undefined ? { wakeAt } : {}) };
  const last = lastOutcome(facts.upstream, now);
  if (last?.kind === "failed") decision.stopped = { sha: last.sha, at: last.at };
  const requested = facts.requested === undefined ? -1 : lineIndex(line, facts.requested);
  const sha = line[candidate]?.sha;
  if (sha !== undefined && !(requested >= candidate && contains(line, requested, candidate))) decision.promote = sha;
  return decision;
}

/**
 * The commits of the line that deploying `sha` brings to an environment last asked to deploy
 * `previous`: those `sha` contains and `previous` does not, without `sha` itself, newest `max`.
 * With no `previous` in the line, every commit `sha` contains counts.
 */
export function broughtBy(line: readonly LineCommit[], previous: string | undefined, sha: string, max: number): LineCommit[] {
  const index = lineIndex(line, sha);
  if (index < 0) return [];
  const before = previous === undefined ? -1 : lineIndex(line, previous);
  return containedBy(line, index)
    .filter((i) => i !== index && !(before >= 0 && contains(line, before, i)))
    .slice(-max)
    .flatMap((i) => (line[i] ? [line[i]] : []));
}

/** Adds a fact to a list, oldest dropped beyond {@link KEPT_FACTS}. */
export function kept<T>(list: readonly T[], item: T): T[] {
  return [...list, item].slice(-KEPT_FACTS);
}

/** A deploy's outcome in an environment's events. */
export type DeployOutcome = Extract<EnvironmentEvent, { kind: "deployed" | "failed" }>;

/** An environment's newest deploy outcome up to `now` (all of them when absent). */
export function lastOutcome(events: readonly EnvironmentEvent[], now = Infinity): DeployOutcome | undefined {
  let last: DeployOutcome | undefined;
  for (const e of events) if ((e.kind === "deployed" || e.kind === "failed") && e.at <= now && (!last || e.at >= last.at)) last = e;
  return last;
}

/** The commit of an environment's newest healthy deploy (for a fleet, of its newest rollout that reached every wave). */
export function lastDeployed(events: readonly EnvironmentEvent[]): string | undefined {
  let last: Extract<EnvironmentEvent, { kind: "deployed" }> | undefined;
  for (const e of events) if (e.kind === "deployed" && (!last || e.at >= last.at)) last = e;
  return last?.sha;
}

/** The branches whose environments are promoted: a push to one joins its line, and its merges show a pipeline. */
export function promotedBranches(config: Pick<Config, "environments">): Set<string> {
  return new Set(config.environments.filter((e) => e.promotion !== undefined && e.autoDeploy).map((e) => e.branch));
}
