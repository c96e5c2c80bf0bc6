// The peer of bench/monorepo.ts, run in a process of its own: every environment of a generated
// monorepo checkout rendered one after another, by its renderer alone (kustomize build, helm
// template, Sluice's own read of a plain directory) or by Sluice's own render (the tool and reading
// its output, no sandbox). With --parallel N, N environments at a time, as a CI job that renders
// on every core would: "ms" is then the wall time, and "byKind" sums each kind's own. Prints
// {"ms", "byKind"} as JSON.
// Usage: node bench/monorepo-renderers.ts --dir DIR --kustomize PATH --helm PATH --environments N --mode renderers|sluice [--parallel N]
import { execFile } from "node:child_process";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { parseConfig, type Environment } from "../src/core/config.ts";
import { renderSide } from "../src/render/compare.ts";
import { DEFAULT_LIMITS } from "../src/render/render-environment.ts";
import { openRendererContext } from "../src/render/setup.ts";
import { monorepoConfig, monorepoEnvironments, type MonorepoEnvironment } from "./monorepo-tree.ts";

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    kustomize: { type: "string" },
    helm: { type: "string" },
    environments: { type: "string", default: "500" },
    mode: { type: "string", default: "renderers" },
    parallel: { type: "string", default: "1" },
  },
});
const { dir, kustomize, helm } = values;
if (!dir || !kustomize || !helm) throw new Error("--dir, --kustomize and --helm are required");
const tools = { kustomize, helm };
const environments = monorepoEnvironments(Number(values.environments));
/** The environments as the configuration gives them to a renderer, by name. */
const configured = new Map<string, Environment>(parseConfig(monorepoConfig(environments)).environments.map((e) => [e.name, e]));

function entryOf(env: MonorepoEnvironment): Environment {
  const entry = configured.get(env.name);
  if (!entry) throw new Error(`environment ${env.name} is not in the generated configuration`);
  return entry;
}

type Context = Awaited<ReturnType<typeof openRendererContext>>;

/** Sluice's own render of one environment (the tool and reading its output). */
async function sluiceRender(env: MonorepoEnvironment, context: Context): Promise<void> {
  const side = await renderSide(context, entryOf(env));
  if (side.problems.length > 0) throw new Error(`environment ${env.name} did not render: ${side.problems[0]?.message ?? ""}`);
}

/** One environment by its renderer alone; a plain directory by Sluice's own read, which is its renderer. */
async function rendererAlone(env: MonorepoEnvironment, context: Context): Promise<void> {
  const path = join(dir ?? "", env.path);
  if (env.kind === "kustomize") await run(tools.kustomize, ["build", path], { maxBuffer: 1024 ** 3 });
  else if (env.kind === "helm")
    await run(
      tools.helm,
      ["template", env.name, path, "--namespace", env.namespace, "--skip-tests", "--values", join(path, env.values ?? "")],
      { maxBuffer: 1024 ** 3 },
    );
  else await sluiceRender(env, context);
}

const byKind: Record<string, number> = { plain: 0, kustomize: 0, helm: 0 };
const context = await openRendererContext(dir, tools, { ...DEFAULT_LIMITS, sandbox: "off" });
const started = performance.now();
try {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let env = environments[next++]; env; env = environments[next++]) {
      const began = performance.now();
      await (values.mode === "sluice" ? sluiceRender(env, context) : rendererAlone(env, context));
      byKind[env.kind] = (byKind[env.kind] ?? 0) + performance.now() - began;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(values.parallel)) }, worker));
} finally {
  await context.dispose();
}
const wall = performance.now() - started;
process.stdout.write(
  `${JSON.stringify({ ms: Number(values.parallel) > 1 ? wall : Object.values(byKind).reduce((a, b) => a + b, 0), byKind })}\n`,
);
