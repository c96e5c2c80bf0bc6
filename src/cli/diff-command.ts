import { access, constants, readFile, stat, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { CONFIG_PATH } from "../core/config-path.ts";
import type { Config } from "../core/config.ts";
import { formatProblem } from "../core/errors.ts";
import { renderMarkdown } from "../core/markdown.ts";
import { hasChanges, toJsonReport, type DiffReport } from "../core/diff-report.ts";
import { compareCheckouts, InProcessRenderer, selectEnvironments } from "../render/compare.ts";
import { discoverBoth } from "../render/discover.ts";
import { isSandboxSetting } from "../render/process.ts";
import { DEFAULT_LIMITS } from "../render/render-environment.ts";
import { openRendererContext, resolveTools } from "../render/setup.ts";
import { EXIT, type CommandIo } from "./io.ts";

/** Output formats of `sluice diff`. */
export type DiffFormat = "markdown" | "json" | "html";

/** The parsed arguments of `sluice diff`. */
export interface DiffArgs {
  base: string;
  head: string;
  environments: string[];
  configFile?: string;
  format: DiffFormat;
  out?: string;
}

/** Runs `sluice diff` and returns its exit code. */
export async function runDiff(args: DiffArgs, io: CommandIo): Promise<number> {
  const baseDir = resolve(io.cwd, args.base);
  const headDir = resolve(io.cwd, args.head);
  // A checkout that is not there would read as "everything removed": that is an error, not a diff.
  for (const [name, dir] of [
    ["BASE", args.base],
    ["HEAD", args.head],
  ] as const) {
    const problem = await checkoutProblem(resolve(io.cwd, dir));
    if (problem) {
      io.stderr(`sluice diff: ${name} ${dir} ${problem}\n`);
      return EXIT.error;
    }
  }
  const config = await loadConfig(baseDir, headDir, args.configFile ? resolve(io.cwd, args.configFile) : undefined, args.configFile);
  if (!config.ok) {
    for (const message of config.errors) io.stderr(`${message}\n`);
    return EXIT.error;
  }
  try {
    selectEnvironments(config.config, args.environments);
  } catch (error) {
    io.stderr(`sluice diff: ${(error as Error).message}\n`);
    return EXIT.error;
  }
  const tools = await resolveTools(io.env);
  const sandbox = io.env.SLUICE_RENDER_SANDBOX ?? "auto";
  if (!isSandboxSetting(sandbox)) {
    io.stderr(`sluice diff: SLUICE_RENDER_SANDBOX must be one of auto, required, off, got "${sandbox}"\n`);
    return EXIT.error;
  }
  const limits = { ...DEFAULT_LIMITS, sandbox };
  const [base, head] = await Promise.all([openRendererContext(baseDir, tools, limits), openRendererContext(headDir, tools, limits)]);
  let report: DiffReport;
  try {
    report = await compareCheckouts({
      renderer: new InProcessRenderer(base, head),
      config: config.config,
      environments: args.environments,
    });
  } finally {
    await Promise.all([base.dispose(), head.dispose()]);
  }
  const output = await format(report, args);
  if (args.out) await writeFile(resolve(io.cwd, args.out), output);
  else io.stdout(output);
  for (const problem of report.errors) io.stderr(`${formatProblem(problem)}\n`);
  if (report.errors.length > 0) return EXIT.error;
  return hasChanges(report) ? EXIT.changes : EXIT.noChanges;
}

async function format(report: DiffReport, args: DiffArgs): Promise<string> {
  switch (args.format) {
    case "json":
      return `${JSON.stringify(toJsonReport(report), null, 2)}\n`;
    case "markdown":
      return `${renderMarkdown(report, { header: `### Sluice diff\n\n\`${args.base}\` → \`${args.head}\`` })}\n`;
    case "html": {
      // diff2html is loaded only for this format.
      const [{ renderHtmlPage }, { loadPageViews }] = await Promise.all([import("../core/html.ts"), import("../views.ts")]);
      return renderHtmlPage(report, await loadPageViews(), { title: "Sluice diff", subtitle: `${args.base} → ${args.head}` });
    }
  }
}

/** Why a path cannot be a checkout, or undefined when it is a readable directory. */
async function checkoutProblem(dir: string): Promise<string | undefined> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return "is a file; a checkout is a directory";
    await access(dir, constants.R_OK | constants.X_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? "does not exist"
      : code === "EACCES"
        ? "cannot be read (permission denied)"
        : `cannot be read: ${code ?? String(error)}`;
  }
}

type Loaded = { ok: true; config: Config } | { ok: false; errors: string[] };

/** Reads the configuration: an explicit file, else BASE/.github/sluice.yml, else the default. */
async function loadConfig(baseDir: string, headDir: string, explicit: string | undefined, shownAs: string | undefined): Promise<Loaded> {
  const path = explicit ?? resolve(baseDir, CONFIG_PATH);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (explicit)
      return { ok: false, errors: [`${shownAs ?? path}: cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`] };
    return { ok: true, config: await discoverBoth(baseDir, headDir) };
  }
  // The schema (and zod) load only when there is a file to check.
  const { validateConfig } = await import("../core/config.ts");
  const result = validateConfig(text, shownAs ?? CONFIG_PATH);
  return result.ok ? result : { ok: false, errors: result.errors.map((e) => e.message) };
}
