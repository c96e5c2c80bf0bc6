import { createTwoFilesPatch } from "diff";
import { diffPath, isSecret, type ResourceId } from "./identity.ts";
import { parseJson } from "./json.ts";
import type { KubeObject, SourceLocation } from "./manifest.ts";
import { maskSecretPair, secretKeyChanges, type SecretKeyChange } from "./mask.ts";
import { canonicalYaml, sameObject } from "./normalize.ts";
import type { Resource } from "./resource-set.ts";

/** What happened to a resource between base and head. */
export type ChangeAction = "added" | "removed" | "modified" | "unchanged";

/** One resource's change: its identity, action, unified diff (empty when unchanged) and origins. */
export interface ResourceChange {
  id: ResourceId;
  action: ChangeAction;
  /** Unified diff of the canonical YAML, Secret values masked. Empty when unchanged. */
  diff: string;
  /** For Secrets: per key, how the value changed. */
  secretKeys?: Record<string, SecretKeyChange>;
  /** True when the text diff was too large to compute and shows a whole-object replacement. */
  replaced?: boolean;
  base?: SourceLocation;
  head?: SourceLocation;
}

/** Counts of resources per action. */
export interface ChangeSummary {
  added: number;
  modified: number;
  removed: number;
  unchanged: number;
}

/** Options for {@link diffResources}. */
export interface DiffOptions {
  /** Lines of context around each hunk. */
  context?: number;
  /**
   * Upper bound on the edit distance the line diff explores. Past it the diff is shown as a
   * whole-object replacement, which keeps pathological inputs from hanging (Myers is O(N·D)).
   */
  maxEditLength?: number;
}

const DEFAULTS: Required<DiffOptions> = { context: 3, maxEditLength: 2_000 };

/**
 * Compares two resource sets. Every resource of either side appears once, sorted by identity;
 * changed ones carry a unified diff of their canonical YAML with Secret values masked.
 */
export function diffResources(
  base: ReadonlyMap<string, Resource>,
  head: ReadonlyMap<string, Resource>,
  options: DiffOptions = {},
): ResourceChange[] {
  const settings = { ...DEFAULTS, ...options };
  const keys = [...new Set([...base.keys(), ...head.keys()])].sort();
  return keys.map((key) => {
    const before = base.get(key);
    const after = head.get(key);
    const id = (after ?? before)?.id;
    if (id === undefined) throw new Error(`resource ${key} is in neither set`);
    // Most resources are unchanged and byte-identical: only parse the JSON when it differs.
    const identical = before !== undefined && after !== undefined && before.json === after.json;
    const beforeObject = before && !identical ? (parseJson(before.json) as KubeObject) : undefined;
    const afterObject = after && !identical ? (parseJson(after.json) as KubeObject) : undefined;
    const action: ChangeAction = !before
      ? "added"
      : !after
        ? "removed"
        : identical || (beforeObject && afterObject && sameObject(beforeObject, afterObject))
          ? "unchanged"
          : "modified";
    const change: ResourceChange = { id, action, diff: "" };
    if (before) change.base = before.source;
    if (after) change.head = after.source;
    if (isSecret(id)) {
      const data = identical ? (parseJson(before.json) as KubeObject) : undefined;
      change.secretKeys = Object.fromEntries(secretKeyChanges(data ?? beforeObject, data ?? afterObject));
    }
    if (action !== "unchanged") Object.assign(change, unifiedDiff(id, beforeObject, afterObject, settings));
    return change;
  });
}

/** Counts the actions of a list of changes. */
export function summarize(changes: readonly ResourceChange[]): ChangeSummary {
  const summary: ChangeSummary = { added: 0, modified: 0, removed: 0, unchanged: 0 };
  for (const change of changes) summary[change.action] += 1;
  return summary;
}

function unifiedDiff(
  id: ResourceId,
  before: KubeObject | undefined,
  after: KubeObject | undefined,
  settings: Required<DiffOptions>,
): { diff: string; replaced?: boolean } {
  const [base, head] = isSecret(id) ? maskSecretPair(before, after) : [before, after];
  const path = diffPath(id);
  const oldText = base ? canonicalYaml(base) : "";
  const newText = head ? canonicalYaml(head) : "";
  const oldName = base ? `a/${path}` : "/dev/null";
  const newName = head ? `b/${path}` : "/dev/null";
  const patch = createTwoFilesPatch(oldName, newName, oldText, newText, undefined, undefined, {
    context: settings.context,
    maxEditLength: settings.maxEditLength,
  });
  if (patch !== undefined) return { diff: stripIndexHeader(patch) };
  return { diff: replacement(oldName, newName, oldText, newText), replaced: true };
}

/** jsdiff starts patches with a `====` rule; unified diff readers (and diff2html) do not need it. */
function stripIndexHeader(patch: string): string {
  return patch.startsWith("===") ? patch.slice(patch.indexOf("\n") + 1) : patch;
}

/** A single hunk that removes every old line and adds every new one. */
function replacement(oldName: string, newName: string, oldText: string, newText: string): string {
  const oldLines = splitLines(oldText);
  const newLines = splitLines(newText);
  const header = `--- ${oldName}\n+++ ${newName}\n@@ -${range(oldLines.length)} +${range(newLines.length)} @@\n`;
  return header + oldLines.map((l) => `-${l}\n`).join("") + newLines.map((l) => `+${l}\n`).join("");
}

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

function range(count: number): string {
  return count === 0 ? "0,0" : `1,${count}`;
}
