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
 * What a deploy did, object by object: each stage adds its entries, and the whole is read back in
 * the order the objects were given. Objects no stage reached read as skipped.
 */
export class ChangeSet {
  readonly #entries = new Map<string, ObjectResult>();

  add(result: ObjectResult): void {
    this.#entries.set(resourceKey(result), result);
  }

  get(id: ResourceId): ObjectResult | undefined {
    return this.#entries.get(resourceKey(id));
  }

  /** The entries of `ids`, in that order. */
  entries(ids: readonly ResourceId[]): ObjectResult[] {
    return ids.map((id) => this.get(id) ?? entry(id, "skipped", "unknown", 0));
  }
}
