import { lstat } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { isRecord } from "../core/manifest.ts";
import { readCheckoutFile, relativeTo, resolveInside } from "./files.ts";

/** File names kustomize accepts for a kustomization, in its order of preference. */
export const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
/** A kustomization is a few kilobytes; anything far larger is not read for references. */
const MAX_KUSTOMIZATION_BYTES = 1024 * 1024;
/** Generator files whose values are masked in messages are read up to this size. */
const MAX_GENERATOR_FILE_BYTES = 1024 * 1024;

/** The kustomization file in `dir`, if there is one. */
export async function findKustomization(dir: string): Promise<string | undefined> {
  for (const name of KUSTOMIZATION_FILES) {
    const info = await lstat(join(dir, name)).catch(() => undefined);
    if (info) return name;
  }
  return undefined;
}

/** Whether a kustomization reference names something fetched over the network. */
export function isRemote(ref: string): boolean {
  return (
    /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) ||
    /^[a-z][a-z0-9+.-]*::/i.test(ref) ||
    ref.startsWith("git@") ||
    /^(github\.com|gitlab\.com|bitbucket\.org)[/:]/.test(ref)
  );
}

/** Every path-like reference of a kustomization, local or remote, as written. */
function references(doc: Record<string, unknown>): string[] {
  const refs: string[] = [];
  const strings = (value: unknown): void => {
    if (Array.isArray(value)) for (const item of value) if (typeof item === "string") refs.push(item);
  };
  for (const field of [
    "resources",
    "bases",
    "components",
    "crds",
    "configurations",
    "transformers",
    "generators",
    "validators",
    "patchesStrategicMerge",
  ])
    strings(doc[field]);
  for (const field of ["patches", "patchesJson6902", "replacements"]) {
    const list = doc[field];
    if (Array.isArray(list)) for (const item of list) if (isRecord(item) && typeof item.path === "string") refs.push(item.path);
  }
  for (const { files } of generatorSources(doc)) refs.push(...files);
  if (isRecord(doc.openapi) && typeof doc.openapi.path === "string") refs.push(doc.openapi.path);
  // Inline patches and multi-line strings are not paths.
  return refs.filter((ref) => !ref.includes("\n"));
}

/** The literals and files of a kustomization's generators. */
function generatorSources(doc: Record<string, unknown>): { secret: boolean; literals: string[]; files: string[]; envs: string[] }[] {
  const out: { secret: boolean; literals: string[]; files: string[]; envs: string[] }[] = [];
  for (const field of ["configMapGenerator", "secretGenerator"]) {
    const list = doc[field];
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (!isRecord(item)) continue;
      const strings = (value: unknown): string[] =>
        Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : typeof value === "string" ? [value] : [];
      const files = strings(item.files).map((file) => (file.includes("=") ? file.slice(file.indexOf("=") + 1) : file));
      out.push({
        secret: field === "secretGenerator",
        literals: strings(item.literals),
        files,
        envs: [...strings(item.envs), ...strings(item.env)],
      });
    }
  }
  return out;
}

/** Local paths a kustomization refers to, relative to its directory. */
export function localReferences(doc: unknown): string[] {
  return isRecord(doc) ? references(doc).filter((ref) => !isRemote(ref)) : [];
}

/** A kustomization read from a checkout. */
export interface Kustomization {
  /** Its directory, absolute. */
  dir: string;
  /** Its file, relative to the checkout. */
  file: string;
  text: string;
  doc: Record<string, unknown>;
}

/** A reference to something kustomize would fetch over the network. */
export interface RemoteReference {
  file: string;
  line: number;
  ref: string;
}

/**
 * The kustomization in `dir` (a real directory inside the checkout), or undefined when there is
 * none or it cannot be read as a map; kustomize itself reports what is wrong with it.
 */
export async function loadKustomization(root: string, dir: string): Promise<Kustomization | undefined> {
  const name = await findKustomization(dir);
  if (!name) return undefined;
  const file = relativeTo(root, join(dir, name));
  // A kustomization that is a link inside the checkout is read through it, as kustomize does.
  const text = await readLocal(root, file, MAX_KUSTOMIZATION_BYTES);
  if (text === undefined) return undefined;
  // Loaded here, not at start-up: plain manifests never need it.
  const { parse } = await import("yaml");
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch {
    return undefined;
  }
  return isRecord(doc) ? { dir, file, text, doc } : undefined;
}

/**
 * Reads the kustomization in `dir` and every local base and component it refers to, transitively,
 * staying inside the checkout. Says which references are remote: Sluice renders without network.
 */
export async function readKustomizations(
  root: string,
  dir: string,
): Promise<{ kustomizations: Kustomization[]; remote: RemoteReference[] }> {
  const kustomizations: Kustomization[] = [];
  const remote: RemoteReference[] = [];
  const visited = new Set<string>();
  const realRoot = resolve(root);
  async function visit(path: string): Promise<void> {
    if (visited.has(path) || (path !== realRoot && !path.startsWith(realRoot + sep))) return;
    visited.add(path);
    const target = await resolveInside(root, relativeTo(root, path)).catch(() => undefined);
    if (target?.kind !== "directory") return;
    const kustomization = await loadKustomization(root, target.absolute);
    if (!kustomization) return;
    kustomizations.push(kustomization);
    for (const ref of references(kustomization.doc)) {
      if (isRemote(ref)) remote.push({ file: kustomization.file, line: lineOf(kustomization.text, ref), ref });
      else await visit(resolve(kustomization.dir, ref));
    }
  }
  await visit(resolve(root, relativeTo(root, dir)));
  return { kustomizations, remote };
}

/** A file of the checkout as text, or undefined when it cannot be read safely (kustomize reports why). */
async function readLocal(root: string, path: string, maxBytes: number): Promise<string | undefined> {
  return readCheckoutFile(root, path, maxBytes).then(
    (data) => data.toString("utf8"),
    () => undefined,
  );
}

function lineOf(text: string, needle: string): number {
  const index = text.indexOf(needle);
  return index < 0 ? 1 : text.slice(0, index).split("\n").length;
}

/**
 * The values a render must never print: every `secretGenerator` literal, and the contents and
 * values of its files and env files. Renderer messages are masked with these.
 */
export async function secretGeneratorValues(root: string, kustomizations: readonly Kustomization[]): Promise<string[]> {
  const values = new Set<string>();
  const generatorFile = (dir: string, path: string) => readLocal(root, relativeTo(root, resolve(dir, path)), MAX_GENERATOR_FILE_BYTES);
  for (const { dir, doc } of kustomizations) {
    for (const source of generatorSources(doc)) {
      if (!source.secret) continue;
      for (const literal of source.literals) values.add(literal.includes("=") ? literal.slice(literal.indexOf("=") + 1) : literal);
      for (const file of source.files) {
        const text = await generatorFile(dir, file);
        if (text === undefined) continue;
        values.add(text);
        for (const line of text.split(/\r?\n/)) values.add(line);
      }
      for (const env of source.envs) {
        const text = await generatorFile(dir, env);
        for (const line of text?.split(/\r?\n/) ?? [])
          if (line.includes("=") && !line.trimStart().startsWith("#")) values.add(line.slice(line.indexOf("=") + 1));
      }
    }
  }
  return [...values].map((v) => v.trim()).filter((v) => v.length >= 3);
}
