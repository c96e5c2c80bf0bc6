import type { Config, Environment } from "../core/config.ts";
import { diffResources, summarize, type DiffOptions } from "../core/diff.ts";
import type { SourceProblem } from "../core/errors.ts";
import type { DiffReport, EnvironmentDiff, ReportProblem, Side } from "../core/report.ts";
import { buildResourceSet, type Resource } from "../core/resource-set.ts";
import type { RendererContext } from "./context.ts";
import { renderEnvironment } from "./render-environment.ts";

/** The two checkouts to compare and how. */
export interface CompareInput {
  base: RendererContext;
  head: RendererContext;
  config: Config;
  /** Only these environments (all when absent). */
  environments?: readonly string[];
  diff?: DiffOptions;
  /** Why an environment need not be rendered at all (such as unchanged inputs); undefined renders it. */
  skip?: (env: Environment) => Promise<string | undefined>;
  /** Renders one side of one environment; {@link renderSide} by default (the app adds its cache). */
  render?: (context: RendererContext, env: Environment, side: Side) => Promise<RenderedSide>;
}

/** One environment of one checkout, rendered and indexed. */
export interface RenderedSide {
  resources: Map<string, Resource>;
  problems: SourceProblem[];
}

/**
 * Renders every selected environment at base and head and diffs them, one environment at a time.
 * Both sides share a parse cache: most documents are the same text on both sides and are parsed once.
 */
export async function compareCheckouts(input: CompareInput): Promise<DiffReport> {
  const selected = selectEnvironments(input.config, input.environments);
  const errors: ReportProblem[] = [];
  const environments: EnvironmentDiff[] = [];
  const render = input.render ?? ((context: RendererContext, env: Environment) => renderSide(context, env));
  for (const env of selected) {
    const skipped = await input.skip?.(env);
    if (skipped !== undefined) {
      environments.push({ name: env.name, summary: { added: 0, modified: 0, removed: 0, unchanged: 0 }, changes: [], skipped });
      continue;
    }
    const parseCache = new Map<string, unknown>();
    const [base, head] = await Promise.all([
      render({ ...input.base, parseCache }, env, "base"),
      render({ ...input.head, parseCache }, env, "head"),
    ]);
    errors.push(...tagProblems(base.problems, env, "base"), ...tagProblems(head.problems, env, "head"));
    const changes = diffResources(base.resources, head.resources, input.diff);
    environments.push({ name: env.name, summary: summarize(changes), changes });
  }
  return { environments, errors };
}

/** Renders one environment of one checkout and indexes its resources. */
export async function renderSide(context: RendererContext, env: Environment): Promise<RenderedSide> {
  const rendered = await renderEnvironment(context, env);
  const set = buildResourceSet(rendered.objects, env.namespace);
  return { resources: set.resources, problems: [...rendered.problems, ...set.problems] };
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
    throw new Error(`unknown environment ${unknown.map((n) => `"${n}"`).join(", ")}; the configuration has ${[...known].map((n) => `"${n}"`).join(", ")}`);
  }
  return config.environments.filter((env) => names.includes(env.name));
}

function tagProblems(problems: readonly SourceProblem[], env: Environment, side: Side): ReportProblem[] {
  return problems.map((p) => ({ ...p, environment: env.name, side }));
}
