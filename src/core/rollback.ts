import type { History } from "./agent-protocol.ts";
import type { Revision } from "./inventory.ts";
import { shortSha } from "./git-ref.ts";
import { escapeInline } from "./markdown.ts";

/** What `/rollback` asks for: the revision before a commit's deploy, or a revision by (a prefix of) its SHA. */
export type RollbackAsk = { before: string } | { to: string };

/** The revision a rollback deploys and the one live when it was asked, or why there is none. */
export type RollbackTarget = { ok: true; target: Revision; from: Revision } | { ok: false; reason: string };

/**
 * Picks a rollback's target from the environment's history as the agent's record has it (newest
 * first), never from GitHub Deployments, which anyone with write access can create. `before`
 * finds the newest deploy of that commit that was not itself a rollback and takes the revision
 * live before it; `to` takes the newest revision whose SHA starts with it.
 */
export function rollbackTarget(history: History | undefined, ask: RollbackAsk): RollbackTarget {
  const revisions = history?.revisions ?? [];
  const [live] = revisions;
  if (!live) return { ok: false, reason: "the agent has reported no deployed revision of this environment yet" };
  if ("to" in ask) {
    const target = revisions.find((r) => r.sha.startsWith(ask.to));
    return target
      ? { ok: true, target, from: live }
      : { ok: false, reason: `\`${escapeInline(ask.to)}\` is not among the revisions the agent keeps (${knownRevisions(revisions)})` };
  }
  const index = revisions.findIndex((r) => r.sha === ask.before && r.reason !== "rollback");
  if (index === -1)
    return {
      ok: false,
      reason: `\`${shortSha(ask.before)}\` is not among the revisions the agent keeps (${knownRevisions(revisions)})`,
    };
  const target = revisions.slice(index + 1).find((r) => r.sha !== ask.before);
  return target
    ? { ok: true, target, from: live }
    : { ok: false, reason: `nothing was deployed before \`${shortSha(ask.before)}\` (${knownRevisions(revisions)})` };
}

/** The revisions a refusal lists: short SHA, why and when, newest first. */
export function knownRevisions(revisions: readonly Revision[]): string {
  if (revisions.length === 0) return "none";
  return `known: ${revisions.map((r) => `\`${shortSha(r.sha)}\` ${r.reason} ${r.appliedAt.slice(0, 16).replace("T", " ")}`).join(", ")}`;
}

/**
 * The branch a rollback's revert pull request comes from: named after the merge it reverts, or
 * after the revision it goes back to when it was asked for by SHA. A second rollback of the same
 * merge moves the same branch, so its pull request stays the one to merge.
 */
export function revertBranch(ask: RollbackAsk, target: string): string {
  return "before" in ask ? `sluice/revert-${ask.before}` : `sluice/rollback-to-${target}`;
}

/** An environment as a rollback plans it: its name, its tracked branch, and its history as its agent reported it. */
export interface RollbackEnvironment {
  name: string;
  branch: string;
  history: History | undefined;
}

/** What a rollback does to one environment: deploy `target` (live now: `from`), or nothing, and why. */
export type RollbackStep =
  { environment: string; ok: true; target: Revision; from: Revision } | { environment: string; ok: false; reason: string };

/**
 * One revert pull request of a rollback: the tracked branch it puts back, the branch it comes
 * from, the revision live when it was asked (of the first environment it covers), the revision it
 * goes back to, and the environments it covers, in the order they were asked.
 */
export interface RevertPlan {
  branch: string;
  head: string;
  from: string;
  target: string;
  environments: string[];
}

/** A rollback as a value: one step per environment, in the order asked, and the revert pull requests they need. */
export interface RollbackPlan {
  steps: RollbackStep[];
  reverts: RevertPlan[];
}

/**
 * Plans a rollback: each environment's target ({@link rollbackTarget}), and one revert pull
 * request per tracked branch and target, so environments that share a branch and go back to the
 * same revision share the pull request that says so in Git.
 */
export function planRollback(environments: readonly RollbackEnvironment[], ask: RollbackAsk): RollbackPlan {
  const steps: RollbackStep[] = [];
  const reverts = new Map<string, RevertPlan>();
  for (const env of environments) {
    const picked = rollbackTarget(env.history, ask);
    if (!picked.ok) {
      steps.push({ environment: env.name, ok: false, reason: picked.reason });
      continue;
    }
    const { target, from } = picked;
    steps.push({ environment: env.name, ok: true, target, from });
    const key = `${env.branch}\n${target.sha}`;
    const revert = reverts.get(key) ?? {
      branch: env.branch,
      head: revertBranch(ask, target.sha),
      from: from.sha,
      target: target.sha,
      environments: [],
    };
    revert.environments.push(env.name);
    reverts.set(key, revert);
  }
  return { steps, reverts: [...reverts.values()] };
}

/** What became of a rollback's revert pull request. */
export type RevertOutcome =
  | { kind: "opened"; pull: { number: number; url: string } }
  /** The branch already has the target's tree. */
  | { kind: "unchanged" }
  /** Not written: it would change these workflow files (none named when GitHub refused without naming one). */
  | { kind: "workflows"; files: readonly string[] };

/**
 * Where GitHub keeps Actions workflows: a GitHub App may create, change or delete a file below it
 * only with the `workflows` permission, which Sluice does not ask for (it would let the app change
 * CI), so a revert that changes one is left to a person.
 */
export const WORKFLOWS_DIR = ".github/workflows";

/** A file of a Git tree as a revert compares them: its path below the tree, its blob and its mode. */
export interface TreeFile {
  path: string;
  sha: string;
  mode: string;
}

/** The paths whose file is added, removed or changed (content or mode) from `before` to `after`, sorted. */
export function changedFiles(before: readonly TreeFile[], after: readonly TreeFile[]): string[] {
  const old = new Map(before.map((f) => [f.path, `${f.mode} ${f.sha}`]));
  const changed = new Set<string>();
  for (const f of after) if (old.get(f.path) !== `${f.mode} ${f.sha}`) changed.add(f.path);
  const kept = new Set(after.map((f) => f.path));
  for (const f of before) if (!kept.has(f.path)) changed.add(f.path);
  return [...changed].sort();
}
