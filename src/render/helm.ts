import type { Environment } from "../core/config.ts";
import type { SourceProblem } from "../core/errors.ts";
import { isRecord, parseManifests, type SourceLocation } from "../core/manifest.ts";
import { RenderError } from "./errors.ts";
import { errorMessage } from "../core/errors.ts";
import { CheckoutPathError, inEnvironment, readCheckoutFile, relativeTo, resolveInside, type PathReads } from "./files.ts";
import type { Rendered } from "./plain.ts";
import { runBounded, runsSandboxed } from "./process.ts";
import { sharedParseOptions, type RendererContext } from "./context.ts";
import { outputOrThrow, yamlLine } from "./tool-output.ts";

/**
 * Runs `helm template` on the chart in `dir` with the environment's release name, namespace and
 * values, using only the chart's vendored dependencies, and reads the output as manifests. Each
 * object points at the template it came from (`# Source:`).
 */
export async function renderHelm(context: RendererContext, dir: string, env: Environment): Promise<Rendered> {
  const envPath = relativeTo(context.checkoutRoot, dir);
  const chartFile = inEnvironment(envPath, "Chart.yaml");
  if (!context.tools.helm) {
    throw new RenderError({ file: chartFile, line: 1, message: "helm was not found; install it or set SLUICE_HELM" }, "missing-tool");
  }
  const chart = await readChart(context.checkoutRoot, chartFile, context.paths);
  const chartName = chart.name;
  const helm = env.helm ?? { values: [], set: {}, includeCRDs: true, apiVersions: [] };
  const args = ["template", helm.releaseName ?? env.name, dir, "--namespace", env.namespace, "--skip-tests"];
  if (helm.includeCRDs) args.push("--include-crds");
  if (helm.kubeVersion) args.push("--kube-version", helm.kubeVersion);
  for (const apiVersion of helm.apiVersions) args.push("--api-versions", apiVersion);
  for (const values of helm.values) {
    const resolved = await resolveInside(dir, values, context.paths).catch((error: unknown) => {
      throw new RenderError({ file: chartFile, line: 1, message: `helm values file ${values}: ${errorMessage(error)}` }, "exit");
    });
    if (resolved.kind === "directory") {
      throw new RenderError(
        { file: inEnvironment(envPath, values), line: 1, message: `helm values file ${values} is a directory` },
        "exit",
      );
    }
    if (resolved.kind !== "file") {
      throw new RenderError(
        { file: inEnvironment(envPath, values), line: 1, message: `helm values file ${values} does not exist` },
        "exit",
      );
    }
    args.push("--values", resolved.absolute);
  }
  for (const [key, value] of Object.entries(helm.set)) args.push("--set-string", `${key}=${value}`);
  // helm loads a values.schema.json's `$ref` and `$id` from the file system (`{"$ref": "file:///x"}`,
  // and a relative reference resolves against `/`), a read no link check sees. Only the sandbox,
  // whose file system is the checkout, makes that harmless; without it, schemas are not read.
  if (!(await runsSandboxed(context.run.sandbox))) args.push("--skip-schema-validation");
  const result = await runBounded(context.tools.helm, args, context.run);
  const stdout = outputOrThrow(
    result,
    "helm",
    { file: chartFile, line: 1, message: "" },
    (message) => locateHelmError(message, envPath, chartName, chart.text),
    {
      ...context.run,
      checkoutRoot: context.checkoutRoot,
    },
  );
  const sources = sourceLines(stdout, envPath, chartName);
  const parsed = parseManifests(stdout, {
    file: chartFile,
    locate: (line) => sourceAt(sources, line) ?? { file: chartFile, line: 1 },
    ...sharedParseOptions(context),
  });
  return { objects: parsed.objects, problems: parsed.problems };
}

/** Chart.yaml is metadata: a few kilobytes at most. */
const MAX_CHART_FILE = 1024 * 1024;

async function readChart(checkoutRoot: string, chartFile: string, paths?: PathReads): Promise<{ name: string; text: string }> {
  let text: string;
  try {
    text = (await readCheckoutFile(checkoutRoot, chartFile, MAX_CHART_FILE, paths)).toString("utf8");
  } catch (error) {
    const missing = error instanceof CheckoutPathError && error.problem === "missing";
    throw new RenderError(
      { file: chartFile, line: 1, message: missing ? "Chart.yaml is missing; render: helm needs a chart directory" : errorMessage(error) },
      "exit",
    );
  }
  const { parse } = await import("yaml");
  let chart: unknown;
  try {
    chart = parse(text);
  } catch (error) {
    throw new RenderError({ file: chartFile, line: yamlLine(String(error)) ?? 1, message: "Chart.yaml is not valid YAML" }, "exit");
  }
  if (!isRecord(chart) || typeof chart.name !== "string") {
    throw new RenderError({ file: chartFile, line: 1, message: "Chart.yaml has no name" }, "exit");
  }
  return { name: chart.name, text };
}

/** Maps a chart-relative template path (`web/templates/x.yaml`) to a checkout path. */
function templatePath(path: string, envPath: string, chartName: string): string {
  return path.startsWith(`${chartName}/`) ? inEnvironment(envPath, path.slice(chartName.length + 1)) : inEnvironment(envPath, path);
}

/** Maps a helm error to the template or values file and line it names (or to Chart.yaml's `kubeVersion:`). */
export function locateHelmError(message: string, envPath: string, chartName: string, chartText = ""): SourceProblem {
  if (/chart requires kubeVersion/.test(message)) {
    const index = chartText.search(/^kubeVersion:/m);
    const line = index < 0 ? 1 : chartText.slice(0, index).split("\n").length;
    return {
      file: inEnvironment(envPath, "Chart.yaml"),
      line,
      message: `${message} (set helm.kubeVersion in .github/sluice.yml to the version your cluster runs)`,
    };
  }
  const template = /template: ([^\s:]+):(\d+):\d+/.exec(message) ?? /parse error at \(([^\s:]+):(\d+)\)/.exec(message);
  if (template?.[1] && template[2]) return { file: templatePath(template[1], envPath, chartName), line: Number(template[2]), message };
  const yamlError = /YAML parse error on ([^\s:]+):/.exec(message);
  if (yamlError?.[1]) return { file: templatePath(yamlError[1], envPath, chartName), line: yamlLine(message) ?? 1, message };
  const values = /failed to parse ([^\s:]+):/.exec(message);
  if (values?.[1])
    return {
      file: values[1].startsWith(envPath) && envPath !== "" ? values[1] : inEnvironment(envPath, values[1]),
      line: yamlLine(message) ?? 1,
      message,
    };
  return { file: inEnvironment(envPath, "Chart.yaml"), line: 1, message };
}

/** The `# Source:` comment lines of helm's output, in order. */
function sourceLines(output: string, envPath: string, chartName: string): { line: number; file: string }[] {
  const out: { line: number; file: string }[] = [];
  let line = 0;
  for (const text of output.split("\n")) {
    line += 1;
    if (text.startsWith("# Source: ")) out.push({ line, file: templatePath(text.slice(10).trim(), envPath, chartName) });
  }
  return out;
}

function sourceAt(sources: readonly { line: number; file: string }[], line: number): SourceLocation | undefined {
  let found: SourceLocation | undefined;
  for (const source of sources) {
    if (source.line > line) break;
    found = { file: source.file, line: 1 };
  }
  return found;
}
