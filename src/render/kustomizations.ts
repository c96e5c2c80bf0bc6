import { lstat } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { decodeManifest, isRecord } from "../core/manifest.ts";
import { CheckoutPathError, readCheckoutFile, relativeTo, resolveInside, SYSTEM_PATHS, type PathReads } from "./files.ts";

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

/** Fields whose entries are plugin configurations: a file, a directory, or the configuration inline. */
const PLUGIN_FIELDS = ["generators", "transformers", "validators"];

/** The paths a builtin plugin configuration reads (ConfigMapGenerator's files, PatchTransformer's path, …). */
function pluginPaths(doc: unknown): string[] {
  if (!isRecord(doc)) return [];
  const out: string[] = [];
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : typeof value === "string" ? [value] : [];
  for (const file of strings(doc.files)) out.push(file.includes("=") ? file.slice(file.indexOf("=") + 1) : file);
  out.push(...strings(doc.envs), ...strings(doc.env), ...strings(doc.path));
  for (const field of ["patches", "replacements"]) {
    const list = doc[field];
    if (Array.isArray(list)) for (const item of list) if (isRecord(item) && typeof item.path === "string") out.push(item.path);
  }
  return out;
}

/** Every path-like reference of a kustomization, local or remote, as written; plugin configurations are not among them. */
function references(doc: Record<string, unknown>): string[] {
  const refs: string[] = [];
  const strings = (value: unknown): void => {
    if (Array.isArray(value)) for (const item of value) if (typeof item === "string") refs.push(item);
  };
  for (const field of ["resources", "bases", "components", "crds", "configurations", "patchesStrategicMerge"]) strings(doc[field]);
  for (const field of ["patches", "patchesJson6902", "replacements"]) {
    const list = doc[field];
    if (Array.isArray(list)) for (const item of list) if (isRecord(item) && typeof item.path === "string") refs.push(item.path);
  }
  for (const { files, envs } of generatorSources(doc)) refs.push(...files, ...envs);
  if (isRecord(doc.openapi) && typeof doc.openapi.path === "string") refs.push(doc.openapi.path);
  // Inline patches and multi-line strings are not paths.
  return refs.filter((ref) => !ref.includes("\n"));
}

/** The plugin configuration entries of a kustomization: inline ones (multi-line strings) and the paths of the others. */
function pluginEntries(doc: Record<string, unknown>): { inline: string[]; paths: string[] } {
  const inline: string[] = [];
  const paths: string[] = [];
  for (const field of PLUGIN_FIELDS) {
    const list = doc[field];
    if (!Array.isArray(list)) continue;
    for (const item of list) if (typeof item === "string") (item.includes("\n") ? inline : paths).push(item);
  }
  return { inline, paths };
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

/** Local paths a kustomization refers to, relative to its directory: its resources, bases, patches, generator files and plugin configurations. */
export function localReferences(doc: unknown): string[] {
  if (!isRecord(doc)) return [];
  return [...references(doc), ...pluginEntries(doc).paths].filter((ref) => !isRemote(ref));
}

/**
 * A kustomization, or a plugin configuration, that Sluice cannot read exactly as kustomize would:
 * the render is refused instead of checked by a guess, since what Sluice cannot read it cannot
 * check for references outside the checkout.
 */
export class UnreadableKustomizationError extends Error {
  readonly file: string;
  readonly line: number;
  /** What is wrong, without the file's name. */
  readonly reason: string;

  constructor(file: string, line: number, reason: string) {
    super(`${file} ${reason}`);
    this.name = "UnreadableKustomizationError";
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/**
 * Reads a kustomization or plugin configuration as data, strictly: UTF-8 with `\n` line ends, one
 * YAML document, no duplicate keys and no merge keys (kustomize's Go YAML reads each of those
 * otherwise than a YAML 1.2 parser would, which would let a reference pass unseen).
 * @throws UnreadableKustomizationError naming the file and line
 */
async function parseStrictly(file: string, bytes: Uint8Array): Promise<unknown[]> {
  const decoded = decodeManifest(bytes);
  if ("problem" in decoded) throw new UnreadableKustomizationError(file, decoded.line ?? 1, decoded.problem);
  return parseTextStrictly(file, decoded.text);
}

async function parseTextStrictly(file: string, text: string, firstLine = 1): Promise<unknown[]> {
  const bareCr = /\r(?!\n)/.exec(text);
  if (bareCr)
    throw new UnreadableKustomizationError(
      file,
      firstLine - 1 + lineOfIndex(text, bareCr.index),
      "ends a line with a lone carriage return",
    );
  // Loaded here, not at start-up: plain manifests never need it.
  const { parseAllDocuments } = await import("yaml");
  const parsed = parseAllDocuments(text, { uniqueKeys: true, merge: false });
  const documents = Array.isArray(parsed) ? parsed : [parsed];
  const values: unknown[] = [];
  for (const document of documents) {
    const [error] = document.errors;
    if (error) {
      const at = error.linePos?.[0].line ?? 1;
      const reason =
        error.code === "DUPLICATE_KEY"
          ? "repeats a key, which kustomize reads otherwise than Sluice: write each key once"
          : `is not valid YAML: ${(error.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")}`;
      throw new UnreadableKustomizationError(file, firstLine - 1 + at, reason);
    }
    const value: unknown = document.toJS({ maxAliasCount: 100 });
    if (hasMergeKey(value))
      throw new UnreadableKustomizationError(file, firstLine, "uses a YAML merge key (<<), which Sluice does not read; write the keys out");
    values.push(value);
  }
  return values;
}

function hasMergeKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasMergeKey);
  if (!isRecord(value)) return false;
  return Object.keys(value).includes("<<") || Object.values(value).some(hasMergeKey);
}

function lineOfIndex(text: string, index: number): number {
  return text.slice(0, index).split(/\r\n|\r|\n/).length;
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

/** A reference kustomize must not follow: fetched over the network, or outside the checkout. */
export interface RefusedReference {
  file: string;
  line: number;
  ref: string;
}

/**
 * The kustomization in `dir` (a real directory inside the checkout), or undefined when there is
 * none or it is empty; a kustomization that is not a map is left to kustomize to report.
 * @throws UnreadableKustomizationError when it cannot be read strictly (see parseStrictly), is not a regular file, or is too large
 */
export async function loadKustomization(root: string, dir: string, paths: PathReads = SYSTEM_PATHS): Promise<Kustomization | undefined> {
  const name = await findKustomization(dir);
  if (!name) return undefined;
  const file = relativeTo(root, join(dir, name));
  // A kustomization that is a link inside the checkout is read through it, as kustomize does.
  const bytes = await readCheckoutFile(root, file, MAX_KUSTOMIZATION_BYTES, paths).catch((error: unknown) => {
    throw new UnreadableKustomizationError(
      file,
      1,
      error instanceof CheckoutPathError ? error.message.slice(file.length + 1) : String(error),
    );
  });
  const documents = await parseStrictly(file, bytes);
  const meaningful = documents.filter((doc) => doc !== null && doc !== undefined);
  if (meaningful.length > 1) throw new UnreadableKustomizationError(file, 1, "holds several YAML documents; a kustomization is one");
  const [doc] = meaningful;
  const text = Buffer.from(bytes).toString("utf8");
  return isRecord(doc) ? { dir, file, text, doc } : undefined;
}

/**
 * Reads the kustomization in `dir` and every local base and component it refers to, transitively,
 * staying inside the checkout. Says which references are remote (Sluice renders without network)
 * and which lead outside the checkout (an absolute path, a `..` above its root, or a link out):
 * kustomize would read either, so the render refuses them before kustomize runs.
 */
export async function readKustomizations(
  root: string,
  dir: string,
  paths: PathReads = SYSTEM_PATHS,
): Promise<{ kustomizations: Kustomization[]; remote: RefusedReference[]; outside: RefusedReference[] }> {
  const kustomizations: Kustomization[] = [];
  const remote: RefusedReference[] = [];
  const outside: RefusedReference[] = [];
  const visited = new Set<string>();
  const realRoot = resolve(root);
  async function visit(path: string): Promise<void> {
    if (visited.has(path)) return;
    visited.add(path);
    const target = await resolveInside(root, relativeTo(root, path), paths).catch(() => undefined);
    if (target?.kind !== "directory") return;
    const kustomization = await loadKustomization(root, target.absolute, paths);
    if (!kustomization) return;
    kustomizations.push(kustomization);
    // A reference must stay inside from every directory kustomize might read it relative to.
    const check = async (ref: string, file: string, line: number, ...bases: string[]): Promise<boolean> => {
      const at = { file, line, ref };
      if (isRemote(ref)) remote.push(at);
      else if ((await Promise.all(bases.map((base) => leavesCheckout(realRoot, base, ref, paths)))).some(Boolean)) outside.push(at);
      else return true;
      return false;
    };
    for (const ref of references(kustomization.doc))
      if (await check(ref, kustomization.file, lineOf(kustomization.text, ref), kustomization.dir))
        await visit(resolve(kustomization.dir, ref));
    // Plugin configurations (builtin generators and transformers) read files and URLs of their own.
    const plugins = pluginEntries(kustomization.doc);
    for (const config of plugins.inline) {
      const line = lineOf(kustomization.text, config.split("\n")[0] ?? config);
      for (const doc of await parseTextStrictly(kustomization.file, config, line))
        for (const ref of pluginPaths(doc)) await check(ref, kustomization.file, line, kustomization.dir);
    }
    for (const ref of plugins.paths) {
      if (!(await check(ref, kustomization.file, lineOf(kustomization.text, ref), kustomization.dir))) continue;
      const path = resolve(kustomization.dir, ref);
      const target = await resolveInside(root, relativeTo(root, path), paths).catch(() => undefined);
      if (target?.kind === "directory") await visit(path);
      else if (target?.kind === "file") {
        const file = relativeTo(root, target.absolute);
        const bytes = await readCheckoutFile(root, file, MAX_KUSTOMIZATION_BYTES, paths).catch((error: unknown) => {
          throw new UnreadableKustomizationError(
            file,
            1,
            error instanceof CheckoutPathError ? error.message.slice(file.length + 1) : String(error),
          );
        });
        for (const doc of await parseStrictly(file, bytes))
          for (const inner of pluginPaths(doc)) await check(inner, file, 1, kustomization.dir, dirname(target.absolute));
      }
    }
  }
  await visit(resolve(root, relativeTo(root, dir)));
  return { kustomizations, remote, outside };
}

/**
 * Whether a local reference of the kustomization in `dir` leads outside the checkout at `root`, as
 * written or through links; one whose path cannot be followed (an I/O error) counts as leading out.
 */
async function leavesCheckout(root: string, dir: string, ref: string, paths: PathReads): Promise<boolean> {
  if (isAbsolute(ref)) return true;
  const path = resolve(dir, ref);
  if (path !== root && !path.startsWith(root + sep)) return true;
  return resolveInside(root, relativeTo(root, path), paths).then(
    () => false,
    (error: unknown) => error instanceof CheckoutPathError && (error.problem === "outside" || error.problem === "unreadable"),
  );
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
