import { z } from "zod";
import type { DeployPhase } from "./deploy-phases.ts";
import { code, escapeInline, fenceFor, tableRow } from "./markdown.ts";

/**
 * Fleets: one environment on several clusters, each with its own agent (`SLUICE_AGENT_CLUSTER`),
 * rolled out in waves. Everything here is data in, data out: which clusters a rollout reaches and
 * in which wave, what a rollout does next given what its clusters reported and the time, and the
 * texts GitHub shows for it.
 */

/** A cluster's name as its agent gives it: a DNS label. */
export const clusterNameSchema = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be lowercase letters, digits and '-' (a DNS label)")
  .max(63);

/** A cluster's name, or a glob of names where `*` stands for any characters (`eu-*`, `*`). */
export const clusterPatternSchema = z
  .string()
  .regex(
    /^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?$/,
    "must be a cluster name or a glob of one ('eu-*', '*'): lowercase letters, digits, '-' and '*'",
  )
  .max(63);

/** Whether `pattern` (a name, or a glob with `*`) names the cluster `name`. */
export function matchesCluster(pattern: string, name: string): boolean {
  if (!pattern.includes("*")) return pattern === name;
  // Part by part, each at its first place after the one before: linear in the name, whatever the
  // pattern (a regular expression of `.*`s backtracks exponentially on `*a*a*a…b`).
  const parts = pattern.split("*");
  const first = parts[0] ?? "";
  const last = parts.at(-1) ?? "";
  if (name.length < first.length + last.length || !name.startsWith(first) || !name.endsWith(last)) return false;
  let at = first.length;
  const end = name.length - last.length;
  for (const part of parts.slice(1, -1)) {
    const found = name.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/** Whether a pattern is a glob, which only clusters whose agents announced themselves can match. */
export function isGlob(pattern: string): boolean {
  return pattern.includes("*");
}

/** An environment's fleet, as its configuration gives it. */
export interface FleetSettings {
  /** Names or globs of the clusters the environment runs on. */
  clusters: readonly string[];
  /** Names or globs per wave, in order; a cluster goes in the first wave that names it. */
  waves: readonly (readonly string[])[];
  /** How long a wave must run healthy and without drift before the next one starts. */
  bakeMs: number;
  /** How long a wave waits for a cluster's agent to end its job before the wave is held. */
  clusterTimeoutMs: number;
}

/** The waves a rollout goes through, each a list of cluster names; and the globs nothing matched. */
export interface WavePlan {
  waves: string[][];
  /** Globs of the configuration that no known cluster matches (said on the check run, not an error). */
  unmatched: string[];
}

/**
 * The waves of a rollout: every cluster the configuration names, and every known cluster (one
 * whose agent announced itself) that a glob matches, each in the first wave that names or
 * matches it; clusters no wave matches go in a last wave of their own. Empty waves are left out.
 */
export function planWaves(fleet: FleetSettings, known: readonly string[]): WavePlan {
  const patterns = fleetPatterns(fleet);
  const listed = fleet.clusters.length > 0 ? fleet.clusters : fleet.waves.flat();
  const names = new Set<string>();
  for (const pattern of listed) {
    if (!isGlob(pattern)) names.add(pattern);
    else for (const name of known) if (matchesCluster(pattern, name)) names.add(name);
  }
  const waves: string[][] = fleet.waves.map(() => []);
  const rest: string[] = [];
  for (const name of [...names].sort()) {
    const index = fleet.waves.findIndex((wave) => wave.some((pattern) => matchesCluster(pattern, name)));
    (index < 0 ? rest : (waves[index] as string[])).push(name);
  }
  const unmatched = [...new Set(patterns.filter((p) => isGlob(p) && ![...names].some((name) => matchesCluster(p, name))))];
  return { waves: [...waves, rest].filter((wave) => wave.length > 0), unmatched };
}

/** The newest report applied from one cluster's agent. */
export const clusterReportSchema = z.strictObject({
  at: z.iso.datetime(),
  phase: z.string() as z.ZodType<DeployPhase>,
  applied: z.number().int().nonnegative(),
  total: z.number().int().nonnegative().optional(),
  /** When the app applied it, by the app's clock: a bake is timed from it, never from the agent's clock. */
  receivedAt: z.number().int().nonnegative(),
  /** The report's own words, cut short (`CLUSTER_MESSAGE_LIMIT`): why a cluster failed is on the check run. */
  message: z.string().max(2_000),
});
/** One cluster's newest report. */
export type ClusterReport = z.infer<typeof clusterReportSchema>;

/** How much of a cluster's report a rollout keeps: enough for the reason an admission webhook or the agent's policy gave. */
export const CLUSTER_MESSAGE_LIMIT = 2_000;

/** A rollout's progress, sealed in its deploy's record. */
export const rolloutSchema = z.strictObject({
  waves: z.array(z.array(clusterNameSchema).min(1)).min(1),
  /** The wave whose jobs were queued last (0-based). */
  wave: z.number().int().nonnegative(),
  /** When that wave's jobs were queued (ms): a cluster silent past the timeout holds the wave. */
  waveAt: z.number().int().nonnegative(),
  /** When the jobs of the wave's clusters that have not taken theirs were last signed again (ms; `waveAt` until then). */
  signedAt: z.number().int().nonnegative().optional(),
  /** The newest report per cluster. */
  clusters: z.record(z.string(), clusterReportSchema).default({}),
  /** Moved by every change: a state written in the background goes out only while the rollout is still at its revision. */
  revision: z.number().int().nonnegative().default(0),
  /** The settings the rollout started with (from the default branch then). */
  bakeMs: z.number().int().nonnegative(),
  clusterTimeoutMs: z.number().int().positive(),
  /** The cluster whose history stands for the environment's (see `historyCluster`), fixed when the whole fleet was planned. */
  historyCluster: z.string().optional(),
  /** A deploy of this one cluster alone (`/sync --cluster`, a cluster converged): its end is not the environment's. */
  only: z.string().optional(),
  /** Globs that matched no known cluster when the rollout was planned. */
  unmatched: z.array(z.string()).default([]),
  /** Why the rollout stopped before its last wave, once it did. */
  stopped: z
    .strictObject({
      reason: z.enum(["failed", "held", "drift", "unhealthy", "superseded"]),
      clusters: z.array(z.string()),
      at: z.number().int(),
    })
    .optional(),
});
/** A rollout's progress. */
export type Rollout = z.infer<typeof rolloutSchema>;

/** A new rollout at its first wave, queued at `now`. */
export function startRollout(plan: WavePlan, fleet: FleetSettings, now: number): Rollout {
  return {
    waves: plan.waves,
    wave: 0,
    waveAt: now,
    clusters: {},
    revision: 0,
    ...(plan.waves[0]?.[0] === undefined ? {} : { historyCluster: plan.waves[0][0] }),
    bakeMs: fleet.bakeMs,
    clusterTimeoutMs: fleet.clusterTimeoutMs,
    unmatched: plan.unmatched,
  };
}

/** What a rollout does next. */
export type RolloutStep =
  /** Its wave's clusters are still working; a cluster that has not ended by `until` holds the wave. */
  | { kind: "working"; until: number }
  /** These clusters did not end their jobs within the timeout: the wave waits for them, and says so. */
  | { kind: "held"; silent: string[]; since: number }
  /** The wave succeeded and bakes until `until`. */
  | { kind: "baking"; until: number }
  /** The wave succeeded and baked: queue wave `wave`. */
  | { kind: "next"; wave: number }
  /** Every wave succeeded. */
  | { kind: "succeeded" }
  /** The rollout stopped before its last wave (see `stopped`). */
  | { kind: "stopped"; reason: "failed" | "held" | "drift" | "unhealthy" | "superseded"; clusters: string[] };

/** What a wave's clusters' agents last found when its bake ends: which drifted from the deploy, and which have objects not healthy. */
export interface BakeFindings {
  drifted?: ReadonlySet<string>;
  unhealthy?: ReadonlySet<string>;
}

/** Phases that stop a rollout: a cluster failed, refused the job, was held by `/rollback`, or was given a newer job. */
function stopsRollout(phase: DeployPhase): "failed" | "held" | "superseded" | undefined {
  if (phase === "failed" || phase === "rejected") return "failed";
  if (phase === "held" || phase === "superseded") return phase;
  return undefined;
}

/**
 * What a rollout does next at `now`, given its clusters' newest reports and what their agents
 * found when the wave's bake ended (`found`: a wave bakes healthy and without drift). A failure or
 * a refusal in a wave stops every later wave; a cluster silent past the timeout holds its wave
 * (a late answer lets it go on).
 */
export function nextStep(rollout: Rollout, now: number, found: BakeFindings = {}): RolloutStep {
  if (rollout.stopped) return { kind: "stopped", reason: rollout.stopped.reason, clusters: rollout.stopped.clusters };
  const wave = rollout.waves[rollout.wave] ?? [];
  for (const reason of ["failed", "held", "superseded"] as const) {
    const clusters = wave.filter((c) => {
      const phase = rollout.clusters[c]?.phase;
      return phase !== undefined && stopsRollout(phase) === reason;
    });
    if (clusters.length > 0) return { kind: "stopped", reason, clusters };
  }
  const open = wave.filter((c) => rollout.clusters[c]?.phase !== "succeeded");
  if (open.length > 0) {
    const until = rollout.waveAt + rollout.clusterTimeoutMs;
    if (now < until) return { kind: "working", until };
    // Every phase that ends a cluster's job but not in success stopped the rollout above: what is open never answered its end.
    return { kind: "held", silent: open, since: rollout.waveAt };
  }
  const done = Math.max(...wave.map((c) => rollout.clusters[c]?.receivedAt ?? 0));
  const until = done + rollout.bakeMs;
  const last = rollout.wave === rollout.waves.length - 1;
  if (!last && now < until) return { kind: "baking", until };
  const drifting = wave.filter((c) => found.drifted?.has(c));
  if (!last && drifting.length > 0) return { kind: "stopped", reason: "drift", clusters: drifting };
  const ailing = wave.filter((c) => found.unhealthy?.has(c));
  if (!last && ailing.length > 0) return { kind: "stopped", reason: "unhealthy", clusters: ailing };
  return last ? { kind: "succeeded" } : { kind: "next", wave: rollout.wave + 1 };
}

/** A rollback's rollout: every cluster at once, in one wave with no bake, since it undoes what the waves let through. */
export function allAtOnce(rollout: Rollout): Rollout {
  return { ...rollout, waves: [rollout.waves.flat()], bakeMs: 0 };
}

/**
 * The cluster whose history stands for the environment's, for `/rollback`: the first of the first
 * wave, which every rollout reaches first (a rollout stopped there reached no other cluster).
 */
export function historyCluster(rollout: Pick<Rollout, "waves" | "historyCluster">): string | undefined {
  return rollout.historyCluster ?? rollout.waves[0]?.[0];
}

/** A rollout of one cluster of the fleet (`/sync --cluster`), whatever its wave. */
export function only(rollout: Rollout, cluster: string): Rollout {
  return { ...rollout, waves: [[cluster]], bakeMs: 0, unmatched: [], only: cluster };
}

/** The rollout moved to wave `wave` at `now`. */
export function toWave(rollout: Rollout, wave: number, now: number): Rollout {
  const next: Rollout = { ...rollout, wave, waveAt: now };
  delete next.signedAt;
  return next;
}

/** The rollout with one cluster's report applied; a report older than the cluster's newest changes nothing. */
export function withClusterReport(rollout: Rollout, cluster: string, report: ClusterReport): Rollout {
  return { ...rollout, clusters: { ...rollout.clusters, [cluster]: report } };
}

/** Which wave a cluster is in, or undefined when the rollout does not reach it. */
export function waveOf(rollout: Pick<Rollout, "waves">, cluster: string): number | undefined {
  const index = rollout.waves.findIndex((wave) => wave.includes(cluster));
  return index < 0 ? undefined : index;
}

const CLUSTER_STATE: Record<DeployPhase, string> = {
  started: "🔄 applying",
  progress: "🔄 applying",
  succeeded: "✅ deployed",
  failed: "❌ failed",
  superseded: "⏭️ superseded",
  rejected: "⛔ refused",
  held: "⏸️ held by /rollback",
};

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

/** One cluster's cell in the rollout table. */
function clusterState(rollout: Rollout, cluster: string, wave: number, step: RolloutStep): string {
  const report = rollout.clusters[cluster];
  if (report) return CLUSTER_STATE[report.phase];
  if (wave > rollout.wave) return step.kind === "stopped" ? "⏹️ not started" : "⏳ waits for its wave";
  if (step.kind === "held" && step.silent.includes(cluster)) return `🔇 no answer since ${clock(step.since)} UTC`;
  return "🕐 queued";
}

/** The check run's title for a rollout at `step`. */
export function rolloutTitle(rollout: Rollout, step: RolloutStep): string {
  const total = rollout.waves.flat().length;
  const deployed = rollout.waves.flat().filter((c) => rollout.clusters[c]?.phase === "succeeded").length;
  const of = `wave ${rollout.wave + 1} of ${rollout.waves.length}`;
  switch (step.kind) {
    case "working":
      return `Deploying ${of}: ${deployed} of ${total} clusters deployed`;
    case "held":
      return `${of[0]?.toUpperCase()}${of.slice(1)} held: ${step.silent.join(", ")} not answering since ${clock(step.since)} UTC`;
    case "baking":
      return `Baking ${of} until ${clock(step.until)} UTC: ${deployed} of ${total} clusters deployed`;
    case "next":
      return `Starting wave ${step.wave + 1} of ${rollout.waves.length}`;
    case "succeeded":
      return `Deployed to ${total} cluster${total === 1 ? "" : "s"} in ${rollout.waves.length} wave${rollout.waves.length === 1 ? "" : "s"}`;
    case "stopped":
      return step.reason === "superseded"
        ? step.clusters.length > 0
          ? `Superseded on ${step.clusters.join(", ")}`
          : "Superseded by a newer deploy"
        : step.reason === "drift" || step.reason === "unhealthy"
          ? `Stopped after ${of}: ${step.clusters.join(", ")} ${bakeFailure(step.reason)}`
          : step.reason === "held"
            ? `Held by /rollback on ${step.clusters.join(", ")}`
            : `Stopped at ${of}: ${step.clusters.join(", ")} failed`;
  }
}

/** Why later waves did not start, for the summary. */
function stopNote(rollout: Rollout, step: RolloutStep): string {
  if (step.kind !== "stopped" || rollout.wave >= rollout.waves.length - 1) return "";
  const later = rollout.waves.slice(rollout.wave + 1).flat();
  const why =
    step.reason === "superseded"
      ? "a newer deploy replaced this one"
      : step.reason === "held"
        ? `${step.clusters.join(", ")} ${step.clusters.length === 1 ? "is" : "are"} held by \`/rollback\`: merge the revert pull request, or comment \`/sync\`, to release the environment`
        : step.reason === "drift"
          ? `${step.clusters.join(", ")} drifted from what was applied during the bake`
          : step.reason === "unhealthy"
            ? `${step.clusters.join(", ")} had objects not healthy at the end of the bake (the \`sluice/drift\` check run names them)`
            : `${step.clusters.join(", ")} did not deploy`;
  const again = step.reason === "held" ? "" : " Comment `/sync` to deploy again once it is fixed.";
  return `\n\nThe later waves were not started (${later.length} cluster${later.length === 1 ? "" : "s"}: ${later.slice(0, 20).join(", ")}${later.length > 20 ? ", …" : ""}): ${step.reason === "held" ? why : escapeInline(why)}.${again}`;
}

/** How much of a check run's summary (65,535 characters) the per-cluster table may take: the rest is for why a rollout stopped. */
const ROWS_LIMIT = 40_000;

/** Why each cluster that stopped the rollout did, in its own words (the table's note is cut short). */
function failures(rollout: Rollout, step: RolloutStep): string {
  if (step.kind !== "stopped" || step.reason !== "failed") return "";
  return step.clusters
    .slice(0, 10)
    .map((cluster) => {
      const message = rollout.clusters[cluster]?.message ?? "";
      return `\n\n**${escapeInline(cluster)}**:\n\n${fenceFor(message)}\n${message}\n${fenceFor(message)}`;
    })
    .join("");
}

/** The check run's summary: one row per cluster, by wave, with what each did; then what stopped the rollout, if anything did. */
export function rolloutSummary(rollout: Rollout, step: RolloutStep): string {
  const cells = rollout.waves.flatMap((wave, index) =>
    wave.map((cluster) => {
      const report = rollout.clusters[cluster];
      const applied = report?.total !== undefined ? `${report.applied} of ${report.total}` : report ? String(report.applied) : "";
      const note = report && report.phase !== "succeeded" && report.message ? escapeInline(report.message.slice(0, 200)) : "";
      return { state: clusterState(rollout, cluster, index, step), row: [String(index + 1), code(cluster), "", applied, note] };
    }),
  );
  // Rows while they fit a check run's summary, with room for what follows; the rest counted by state.
  const rows: string[] = [];
  let length = 0;
  for (const [index, { state, row }] of cells.entries()) {
    const line = tableRow(row.map((cell, i) => (i === 2 ? state : cell)));
    if (length + line.length > ROWS_LIMIT) {
      const rest = new Map<string, number>();
      for (const cell of cells.slice(index)) rest.set(cell.state, (rest.get(cell.state) ?? 0) + 1);
      rows.push(`\n…and ${cells.length - index} more clusters: ${[...rest].map(([s, n]) => `${n} ${s}`).join(", ")}.`);
      break;
    }
    rows.push(line);
    length += line.length + 1;
  }
  const bake =
    rollout.bakeMs > 0 ? ` Each wave bakes ${Math.round(rollout.bakeMs / 60_000)} min, healthy and without drift, before the next.` : "";
  const unmatched =
    rollout.unmatched.length > 0
      ? `\n\nNo cluster that announced itself matches ${rollout.unmatched.map(code).join(", ")}: an agent names its cluster with \`SLUICE_AGENT_CLUSTER\`.`
      : "";
  return `${rollout.waves.length} wave${rollout.waves.length === 1 ? "" : "s"}.${bake}\n\n| Wave | Cluster | State | Objects | Note |\n|--:|---|---|--:|---|\n${rows.join("\n")}${stopNote(rollout, step)}${failures(rollout, step)}${unmatched}`;
}

/** How a wave's bake failed, after the clusters' names. */
function bakeFailure(reason: "drift" | "unhealthy"): string {
  return reason === "drift" ? "drifted while baking" : "not healthy at the end of the bake";
}

/** The comment on the merged pull request once a rollout ended (none for a superseded one). */
export function rolloutComment(
  deploy: { sha: string; environment: string },
  rollout: Rollout,
  step: RolloutStep,
  detailsUrl: string,
): string | undefined {
  const where = `\`${deploy.sha.slice(0, 7)}\` to **${escapeInline(deploy.environment)}**`;
  if (step.kind === "succeeded") {
    const total = rollout.waves.flat().length;
    return `🚀 Deployed ${where} on ${total} cluster${total === 1 ? "" : "s"} in ${rollout.waves.length} wave${rollout.waves.length === 1 ? "" : "s"}. [Details](${detailsUrl})`;
  }
  if (step.kind !== "stopped" || step.reason === "superseded") return undefined;
  if (step.reason === "held")
    return `⏸️ ${where} is not deployed: the environment is held by \`/rollback\` on ${step.clusters.map((c) => escapeInline(c)).join(", ")}. Merge the revert pull request or comment \`/sync\` to release it. [Details](${detailsUrl})`;
  const why = step.reason === "drift" || step.reason === "unhealthy" ? bakeFailure(step.reason) : "failed";
  return `❌ Deploying ${where} stopped at wave ${rollout.wave + 1} of ${rollout.waves.length}: ${step.clusters.map((c) => escapeInline(c)).join(", ")} ${why}; the later waves were not started. [Details](${detailsUrl})`;
}

/** The check run's status and conclusion, and the Deployment's state, at a step. */
export function rolloutStates(step: RolloutStep): {
  checkRun: { status: "in_progress" } | { status: "completed"; conclusion: "success" | "failure" | "cancelled" | "skipped" };
  deployment: "in_progress" | "success" | "failure" | "inactive";
} {
  switch (step.kind) {
    case "succeeded":
      return { checkRun: { status: "completed", conclusion: "success" }, deployment: "success" };
    case "stopped":
      return step.reason === "superseded"
        ? { checkRun: { status: "completed", conclusion: "cancelled" }, deployment: "inactive" }
        : step.reason === "held"
          ? { checkRun: { status: "completed", conclusion: "skipped" }, deployment: "inactive" }
          : { checkRun: { status: "completed", conclusion: "failure" }, deployment: "failure" };
    default:
      return { checkRun: { status: "in_progress" }, deployment: "in_progress" };
  }
}

/** Whether a step ends the rollout: nothing after it changes its check run or Deployment. */
export function rolloutEnded(step: RolloutStep): boolean {
  return step.kind === "succeeded" || step.kind === "stopped";
}

/**
 * The name the agents of an environment on one cluster use for their queues and keys: the
 * environment's own name for an environment without clusters, `<environment>@<cluster>` for one
 * cluster of a fleet. Neither part may contain `@`, so the two never meet.
 */
export function targetName(environment: string, cluster?: string): string {
  return cluster === undefined ? environment : `${environment}@${cluster}`;
}

/** `{ cluster }` for one cluster of a fleet, nothing for an environment on one cluster: the optional field of messages and requests. */
export function clusterField(cluster: string | undefined): { cluster?: string } {
  return cluster === undefined ? {} : { cluster };
}

/** Every name and glob a fleet's configuration gives, in `clusters` and in `waves`. */
export function fleetPatterns(fleet: FleetSettings): string[] {
  return [...fleet.clusters, ...fleet.waves.flat()];
}

/** Whether a fleet's configuration names `cluster`, or has a glob that matches it. */
export function listsCluster(fleet: FleetSettings, cluster: string): boolean {
  return fleetPatterns(fleet).some((pattern) => matchesCluster(pattern, cluster));
}
