import { isRecord, setOwn, type KubeObject } from "./manifest.ts";

/** How one key of a Secret changed. Values are never shown, only this. */
export type SecretKeyChange = "added" | "removed" | "changed" | "unchanged";

/** The token that stands for a Secret value in every output. It depends on the change only, never on the value. */
export function maskToken(change: SecretKeyChange, side: "base" | "head"): string {
  if (change === "changed") return side === "base" ? "<masked: changed, old value>" : "<masked: changed, new value>";
  return `<masked: ${change}>`;
}

/** Per key of `data`, how a Secret changed between base and head (either may be absent). */
export function secretKeyChanges(base: KubeObject | undefined, head: KubeObject | undefined): Map<string, SecretKeyChange> {
  const before = secretData(base);
  const after = secretData(head);
  const changes = new Map<string, SecretKeyChange>();
  for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    // Own keys only: `"constructor" in {}` is true, and a key of that name must not look unchanged.
    if (!Object.hasOwn(after, key)) changes.set(key, "removed");
    else if (!Object.hasOwn(before, key)) changes.set(key, "added");
    else changes.set(key, before[key] === after[key] ? "unchanged" : "changed");
  }
  return changes;
}

/**
 * Replaces every value of a normalized Secret's `data` with a mask token for its change, so a diff
 * of the masked pair shows which keys changed and nothing of any value, encoded or decoded.
 */
export function maskSecretPair(
  base: KubeObject | undefined,
  head: KubeObject | undefined,
): [KubeObject | undefined, KubeObject | undefined] {
  const changes = secretKeyChanges(base, head);
  return [maskSide(base, changes, "base"), maskSide(head, changes, "head")];
}

function maskSide(object: KubeObject | undefined, changes: Map<string, SecretKeyChange>, side: "base" | "head"): KubeObject | undefined {
  if (object === undefined) return undefined;
  const out: KubeObject = { ...object };
  const data = secretData(object);
  if (isRecord(object.data)) {
    const masked: Record<string, unknown> = {};
    for (const key of Object.keys(data)) setOwn(masked, key, maskToken(changes.get(key) ?? "unchanged", side));
    out.data = masked;
  } else if (object.data !== undefined && object.data !== null) {
    // Not a map: nothing can be said per key, so nothing of it is shown.
    out.data = "<masked: not a map>";
  }
  // Normalization folds stringData away; strip it anyway so an unnormalized Secret cannot leak.
  delete out.stringData;
  return out;
}

function secretData(object: KubeObject | undefined): Record<string, unknown> {
  return object !== undefined && isRecord(object.data) ? object.data : {};
}
