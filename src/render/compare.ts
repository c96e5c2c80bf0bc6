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
}

/**
 * Renders every selected environment at base and head and diffs them, one environment at a time.
 * Both sides share a parse cache: most documents are the same text on both sides and are parsed once.
 */
export async function compareCheckouts(input: CompareInput): Promise<DiffReport> {
  const selected = selectEnvironments(input.config, input.environments);
  const errors: ReportProblem[] = [];
  const environments: EnvironmentDiff[] = [];
  for (const env of selected) {
    const parseCache = new Map<string, unknown>();
    const [base, head] = await Promise.all([
      renderSide({ ...input.base, parseCache }, env),
      renderSide({ ...input.head, parseCache }, env),
    ]);
    errors.push(...tagProblems(base.problems, env, "base"), ...tagProblems(head.problems, env, "head"));
    const changes = diffResources(base.resources, head.resources, input.diff);
    environments.push({ name: env.name, summary: summarize(changes), changes });
  }
  return { environments, errors };
}

/** Renders one environment of one checkout and indexes its resources. */
export async function renderSide(context: RendererContext, env: Environment): Promise<{ resources: Map<string, Resource>; problems: SourceProblem[] }> {
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
