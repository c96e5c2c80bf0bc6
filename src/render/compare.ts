import type { Config, Environment } from "../core/config.ts";
import { diffResources, summarize, type DiffOptions } from "../core/diff.ts";
import type { DiffReport, EnvironmentDiff, ReportProblem, Side } from "../core/report.ts";
import { buildResourceSet } from "../core/resource-set.ts";
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

/** Renders every selected environment at base and head and diffs them, one environment at a time. */
export async function compareCheckouts(input: CompareInput): Promise<DiffReport> {
  const selected = selectEnvironments(input.config, input.environments);
  const errors: ReportProblem[] = [];
  const environments: EnvironmentDiff[] = [];
  for (const env of selected) {
    const [base, head] = await Promise.all([renderSide(input.base, env, "base"), renderSide(input.head, env, "head")]);
    errors.push(...base.problems, ...head.problems);
    const changes = diffResources(base.resources, head.resources, input.diff);
    environments.push({ name: env.name, summary: summarize(changes), changes });
  }
  return { environments, errors };
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

async function renderSide(context: RendererContext, env: Environment, side: Side) {
  const rendered = await renderEnvironment(context, env);
  const set = buildResourceSet(rendered.objects, env.namespace);
  const problems = [...rendered.problems, ...set.problems].map((p): ReportProblem => ({ ...p, environment: env.name, side }));
  return { resources: set.resources, problems };
}
