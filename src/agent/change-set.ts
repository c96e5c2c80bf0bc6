import type { ObjectResult } from "../core/agent-protocol.ts";
import { resourceKey, type ResourceId } from "../core/identity.ts";

/** What happened to one object in a deploy. */
export function entry(
  id: ResourceId,
  action: ObjectResult["action"],
  health: ObjectResult["health"],
  durationMs: number,
  message?: string,
): ObjectResult {
  return { ...id, action, health, durationMs, ...(message ? { message } : {}) };
}

/**
 * What one stage of a deploy did (apply, prune): the entries of the objects it touched, and the
 * error that stopped it part-way, if one did. A stage never throws away what it already changed:
 * the caller appends `changes` and then decides what `error` means (as Flux's `ApplyAllStaged`).
 */
export interface StageResult {
  changes: ObjectResult[];
  error?: Error;
}

/** `error` as an Error, for a stage result: a thrown non-Error becomes one naming its value. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * What a deploy did, object by object: each stage's entries are appended, and the whole is read
 * back in the order the objects were given. Objects no stage reached read as skipped.
 */
export class ChangeSet {
  readonly #entries = new Map<string, ObjectResult>();

  /** Appends the entries of one stage; a later entry of the same object replaces an earlier one. */
  append(results: readonly ObjectResult[]): void {
    for (const result of results) this.#entries.set(resourceKey(result), result);
  }

  /** How many objects have an entry. */
  get size(): number {
    return this.#entries.size;
  }

  get(id: ResourceId): ObjectResult | undefined {
    return this.#entries.get(resourceKey(id));
  }

  /** The entries of `ids`, in that order. */
  entries(ids: readonly ResourceId[]): ObjectResult[] {
    return ids.map((id) => this.get(id) ?? entry(id, "skipped", "unknown", 0));
  }
}
