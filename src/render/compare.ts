import type { Config, Environment } from "../core/config.ts";
import { diffResources, summarize, type DiffOptions } from "../core/diff.ts";
import type { SourceProblem } from "../core/errors.ts";
import type { DiffReport, EnvironmentDiff, ReportProblem, Side } from "../core/diff-report.ts";
import { buildResourceSet, type NormalizedMemo, type ResourceSet } from "../core/resource-set.ts";
import type { RendererContext } from "./context.ts";
import { PathMemo } from "./files.ts";
import { renderEnvironment } from "./render-environment.ts";

/** One environment compared: its diff, and the problems of both sides tagged with the environment and side. */
export interface EnvironmentComparison {
  diff: EnvironmentDiff;
  errors: ReportProblem[];
}

/** What to compare in this process, and how. */
export interface CompareInput {
  config: Config;
  renderer: InProcessRenderer;
  /** Only these environments (all when absent). */
  environments?: readonly string[];
  diff?: DiffOptions;
}

/** One environment of one checkout, rendered and indexed. */
export interface RenderedSide extends ResourceSet {
  /** The render may succeed when tried again (it timed out, or its process died): never cache it. */
  transient?: boolean;
  /** Things worth knowing that are not errors. */
  notes?: string[];
  /** The environment's path does not exist at this commit. */
  missing?: boolean;
}

/** Renders every selected environment at base and head in this process, one after another, and diffs them. */
export async function compareCheckouts(input: CompareInput): Promise<DiffReport> {
  const compared: EnvironmentComparison[] = [];
  for (const env of selectEnvironments(input.config, input.environments)) compared.push(await input.renderer.compare(env, input.diff));
  return reportOf(compared);
}

/** The report of environments compared, in the order given. */
export function reportOf(compared: readonly EnvironmentComparison[]): DiffReport {
  return { environments: compared.map((c) => c.diff), errors: compared.flatMap((c) => c.errors) };
}

/** An environment not rendered, and why (such as its inputs being unchanged). */
export function skippedComparison(env: Environment, reason: string): EnvironmentComparison {
  return {
    diff: { name: env.name, summary: { added: 0, modified: 0, removed: 0, unchanged: 0 }, changes: [], skipped: reason },
    errors: [],
  };
}

/** Compares the two rendered sides of an environment. */
export function compareEnvironment(env: Environment, sides: Record<Side, RenderedSide>, options?: DiffOptions): EnvironmentComparison {
  const { base, head } = sides;
  const errors = [...tagProblems(base.problems, env, "base"), ...tagProblems(head.problems, env, "head")];
  // A path missing at one commit is an environment added or removed; missing at both, a mistake.
  if (base.missing && head.missing)
    errors.push({
      file: env.path,
      line: 1,
      message: `environment ${env.name}: path ${env.path} does not exist at either commit; fix environments[].path in the configuration`,
      environment: env.name,
    });
  const changes = diffResources(base.resources, head.resources, options);
  const unknown = [...new Set([...base.unknownScopes, ...head.unknownScopes])].sort();
  const notes = [...new Set([...(head.notes ?? []), ...(unknown.length > 0 ? [unknownScopeNote(unknown)] : [])])];
  return { diff: { name: env.name, summary: summarize(changes), changes, ...(notes.length > 0 ? { notes } : {}) }, errors };
}

/**
 * Renders both sides of an environment in this process, sharing one parse cache: most documents
 * are the same text on both sides and are parsed once.
 */
export class InProcessRenderer {
  readonly #base: RendererContext;
  readonly #head: RendererContext;

  constructor(base: RendererContext, head: RendererContext) {
    this.#base = base;
    this.#head = head;
  }

  /** Both sides of `env` rendered here and compared. */
  async compare(env: Environment, options?: DiffOptions): Promise<EnvironmentComparison> {
    const [base, head] = await renderSides([this.#base, this.#head], env);
    if (!base || !head) throw new Error("renderSides returned fewer sides than asked");
    return compareEnvironment(env, { base, head }, options);
  }
}

/** How a render treats an environment with no inputs. */
export interface RenderSideOptions {
  /** A deploy needs its inputs: a missing directory, or one that renders nothing, is an error rather than an empty environment. */
  requireInputs?: boolean;
}

/** Renders one environment of several checkouts at once, sharing a parse cache; each side has its own alias budget. */
export async function renderSides(
  contexts: readonly RendererContext[],
  env: Environment,
  options: RenderSideOptions = {},
): Promise<RenderedSide[]> {
  const parseCache = new Map<string, unknown>();
  const normalized: NormalizedMemo = new WeakMap();
  // The checkouts do not change while they render: each path is looked at once.
  const paths = new PathMemo();
  return Promise.all(contexts.map((context) => renderSide({ ...context, parseCache, normalized, paths }, env, options)));
}

/** Renders one side of one environment of one checkout and indexes its resources. */
export async function renderSide(context: RendererContext, env: Environment, options: RenderSideOptions = {}): Promise<RenderedSide> {
  const rendered = await renderEnvironment(context, env, options);
  const set = buildResourceSet(rendered.objects, env.namespace, context.normalized);
  const problems = [...rendered.problems, ...set.problems];
  if (options.requireInputs && problems.length === 0 && set.resources.size === 0) {
    problems.push({
      file: env.path,
      line: 1,
      message: `environment ${env.name} renders no objects; a deploy never applies an empty render (remove the environment from the configuration instead)`,
    });
  }
  return {
    resources: set.resources,
    problems,
    unknownScopes: set.unknownScopes,
    ...(rendered.transient ? { transient: true } : {}),
    ...(rendered.notes ? { notes: rendered.notes } : {}),
    ...(rendered.missing ? { missing: true } : {}),
  };
}

/** The one line that says which kinds' scope is unknown and what follows from it. */
export function unknownScopeNote(kinds: readonly string[]): string {
  return `the scope of ${kinds.join(", ")} is unknown here (no CustomResourceDefinition in these manifests): such objects show the namespace their manifest gives, or none; the agent reads the real scope from the cluster`;
}

/**
 * The environments named, in configuration order.
 * @throws Error naming an unknown environment and the known ones
 */
export function selectEnvironments(config: Config, names: readonly string[] | undefined): Environment[] {
  if (!names || names.length === 0) return config.environments;
  const known = new Set(config.environments.map((e) => e.name));
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown environment ${unknown.map((n) => `"${n}"`).join(", ")}; the configuration has ${[...known].map((n) => `"${n}"`).join(", ")}`,
    );
  }
  return config.environments.filter((env) => names.includes(env.name));
}

function tagProblems(problems: readonly SourceProblem[], env: Environment, side: Side): ReportProblem[] {
  // The reason is for renderers deciding what to skip; reports carry file, line and message.
  return problems.map((p) => ({ file: p.file, line: p.line, message: p.message, environment: env.name, side }));
}
