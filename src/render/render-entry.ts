import { promisify } from "node:util";
import { constants, gunzip, gzip } from "node:zlib";
import type { SourceProblem } from "../core/errors.ts";
import type { Resource } from "../core/resource-set.ts";
import type { RenderedSide } from "./compare.ts";

/** A cached render never decompresses past this. */
const MAX_RENDER_BYTES = 1024 * 1024 * 1024;

/** One environment rendered at one set of inputs, as a render cache entry holds it. */
export interface RenderEntry {
  resources: Resource[];
  problems: SourceProblem[];
  unknownScopes?: string[];
  notes?: string[];
  /** The environment's path does not exist at these inputs. */
  missing?: boolean;
}

/**
 * A rendered side as a render cache entry: a first line of JSON with everything but the objects'
 * JSON, then each object's JSON on a line of its own (JSON text has no raw line breaks), so
 * neither writing nor reading escapes the objects a second time. Gzipped, off the main thread.
 */
export async function encodeRenderEntry(side: RenderedSide): Promise<Buffer> {
  const resources = [...side.resources.values()];
  const header = {
    resources: resources.map(({ json: _json, ...resource }) => resource),
    problems: side.problems,
    ...(side.unknownScopes.length > 0 ? { unknownScopes: side.unknownScopes } : {}),
    ...(side.notes ? { notes: side.notes } : {}),
    ...(side.missing ? { missing: true } : {}),
  };
  const text = [JSON.stringify(header), ...resources.map((r) => r.json)].join("\n");
  return promisify(gzip)(text, { level: constants.Z_BEST_SPEED });
}

/** The render in a cache entry, or undefined when it does not decode. */
export async function decodeRenderEntry(data: Uint8Array): Promise<RenderEntry | undefined> {
  try {
    const lines = (await promisify(gunzip)(data, { maxOutputLength: MAX_RENDER_BYTES })).toString("utf8").split("\n");
    const header = JSON.parse(lines[0] ?? "") as Omit<RenderEntry, "resources"> & { resources: Omit<Resource, "json">[] };
    if (!Array.isArray(header.resources) || header.resources.length !== lines.length - 1) return undefined;
    return { ...header, resources: header.resources.map((resource, index) => ({ ...resource, json: lines[index + 1] ?? "" })) };
  } catch {
    return undefined;
  }
}

/** A decoded render cache entry as a rendered side, its resources indexed by key. */
export function sideOfEntry(render: RenderEntry): RenderedSide {
  return {
    ...render,
    unknownScopes: render.unknownScopes ?? [],
    resources: new Map(render.resources.map((r) => [r.key, r])),
  };
}
