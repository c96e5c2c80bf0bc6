import type { ChangeSummary, ResourceChange } from "./diff.ts";
import type { SourceProblem } from "./errors.ts";

/** One environment's comparison of base and head. */
export interface EnvironmentDiff {
  name: string;
  summary: ChangeSummary;
  /** Every resource of the environment, unchanged ones included. */
  changes: ResourceChange[];
  /** Set when the environment was not rendered, with the reason (for example "inputs unchanged"). */
  skipped?: string;
  /** Things worth knowing that are not errors, said once per environment. */
  notes?: string[];
}

/** Which checkout a problem was found in. */
export type Side = "base" | "head";
/** Both sides, base first. */
export const SIDES: readonly Side[] = ["base", "head"];

/** A problem found while rendering or reading an environment. */
export interface ReportProblem extends SourceProblem {
  environment?: string;
  side?: Side;
}

/** The result of comparing two checkouts, the input of every output format. */
export interface DiffReport {
  environments: EnvironmentDiff[];
  errors: ReportProblem[];
}

/** Whether anything changed in any environment. */
export function hasChanges(report: DiffReport): boolean {
  return report.environments.some((env) => env.summary.added + env.summary.modified + env.summary.removed > 0);
}

/** The order in which changes are shown: what disappears matters most. */
export const ACTION_ORDER = ["removed", "modified", "added"] as const;

/** The JSON contract of `sluice diff --format json`. */
export interface JsonReport {
  environments: {
    name: string;
    summary: ChangeSummary;
    changes: {
      group: string;
      version: string;
      kind: string;
      namespace: string;
      name: string;
      action: ResourceChange["action"];
      diff: string;
      secretKeys?: ResourceChange["secretKeys"];
    }[];
    skipped?: string;
    notes?: string[];
  }[];
  errors: ReportProblem[];
}

/** Maps a report to the JSON contract. */
export function toJsonReport(report: DiffReport): JsonReport {
  return {
    environments: report.environments.map((env) => ({
      name: env.name,
      summary: env.summary,
      changes: env.changes.map((change) => ({
        ...change.id,
        action: change.action,
        diff: change.diff,
        ...(change.secretKeys ? { secretKeys: change.secretKeys } : {}),
      })),
      ...(env.skipped ? { skipped: env.skipped } : {}),
      ...(env.notes ? { notes: env.notes } : {}),
    })),
    errors: report.errors.map((e) => ({ ...e })),
  };
}
