import { diffResources } from "../core/diff.ts";
import { resourceKey, type ResourceId } from "../core/identity.ts";
import type { KubeObject } from "../core/manifest.ts";
import { normalize } from "../core/normalize.ts";
import type { Resource } from "../core/resource-set.ts";

/** A diff longer than this is cut: it travels through Redis in a signed report and ends in a comment. */
const MAX_DIFF_CHARS = 20_000;

/**
 * The unified diff between two states of one object (`from` absent: it is created), normalized as
 * the git diff is and with Secret values masked, here in the agent, before anything leaves the
 * cluster; undefined when they do not differ.
 */
export function liveDiff(id: ResourceId, from: KubeObject | undefined, to: KubeObject): string | undefined {
  const before = from ? new Map([[resourceKey(id), resource(id, from)]]) : new Map<string, Resource>();
  const [change] = diffResources(before, new Map([[resourceKey(id), resource(id, to)]]));
  if (!change || change.action === "unchanged") return undefined;
  return change.diff.length > MAX_DIFF_CHARS
    ? `${change.diff.slice(0, MAX_DIFF_CHARS)}\n… (cut at ${MAX_DIFF_CHARS} characters)`
    : change.diff;
}

/** Just the identity fields of something that carries them (a result, a drifted object). */
export function idFields(id: ResourceId): ResourceId {
  return { group: id.group, version: id.version, kind: id.kind, namespace: id.namespace, name: id.name };
}

function resource(id: ResourceId, object: KubeObject): Resource {
  return { id, key: resourceKey(id), json: JSON.stringify(normalize(object, id)), source: { file: "live", line: 1 } };
}
