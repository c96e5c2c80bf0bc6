import type { SourceProblem } from "../core/errors.ts";
import { RenderError } from "./errors.ts";
import type { RunResult } from "./process.ts";

const MAX_MESSAGE = 1_000;
/**
 * An absolute path of this machine: one under a directory of a Linux root. A JSON pointer in a
 * message (`/spec/replicas`) is not one.
 */
const MACHINE_PATH =
  /(^|[\s'"`(=:[])\/(?:bin|boot|dev|etc|home|lib|lib32|lib64|libx32|media|mnt|nix|opt|private|proc|root|run|sbin|snap|srv|sys|tmp|usr|var|app|workspace)(?=[/\s'"`):,\]]|$)[^\s'"`):,\]]*/g;
const MIB = 1024 * 1024;

/**
 * The error line of a renderer's stderr, with absolute checkout paths made relative, every other
 * absolute path hidden, and the length capped. Only the `Error:` line is kept: tools echo input on
 * later lines, and input may hold secrets. Paths outside the checkout would tell a pull request
 * where the app keeps its files, and whether a path exists on its machine.
 */
export function errorLine(stderr: string, checkoutRoot: string, secrets: readonly string[] = []): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines.find((l) => l.startsWith("Error:")) ?? lines[0] ?? "failed without a message";
  const relative = maskValues(
    line
      .replace(/^Error:\s*/, "")
      .split(`${checkoutRoot}/`)
      .join("")
      .split(checkoutRoot)
      .join(".")
      .replace(MACHINE_PATH, "$1<outside the checkout>"),
    secrets,
  );
  return relative.length > MAX_MESSAGE ? `${relative.slice(0, MAX_MESSAGE)}…` : relative;
}

/** Replaces every occurrence of any of `values` (longest first, and their base64) with a mask. */
export function maskValues(text: string, values: readonly string[]): string {
  const forms = new Set<string>();
  for (const value of values) {
    forms.add(value);
    forms.add(Buffer.from(value, "utf8").toString("base64"));
  }
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) if (form.length >= 3) out = out.split(form).join("<masked>");
  return out;
}

/** The `yaml: line N` number a tool reports, if any. */
export function yamlLine(message: string): number | undefined {
  const match = /\byaml: line (\d+)/.exec(message);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Turns a failed run into a RenderError at `fallback`, or returns the stdout of a successful one. */
export function outputOrThrow(
  result: RunResult,
  tool: string,
  fallback: SourceProblem,
  locate: (message: string) => SourceProblem,
  options: { timeoutMs: number; maxOutputBytes: number; memoryBytes?: number; checkoutRoot: string; secrets?: readonly string[] },
): string {
  switch (result.outcome) {
    case "ok":
      return result.stdout;
    case "timeout":
      throw new RenderError({ ...fallback, message: `${tool} did not finish within ${options.timeoutMs} ms` }, "timeout");
    case "output-limit":
      throw new RenderError(
        { ...fallback, message: `${tool} output exceeded the limit of ${options.maxOutputBytes} bytes` },
        "output-limit",
      );
    case "spawn":
      throw new RenderError({ ...fallback, message: `${tool} could not be started: ${result.error.message}` }, "spawn", {
        cause: result.error,
      });
    case "exit": {
      // What Go's runtime says when it cannot map more under the address-space limit.
      if (options.memoryBytes !== undefined && /out of memory|cannot allocate memory|failed to reserve/.test(result.stderr))
        throw new RenderError(
          {
            ...fallback,
            message: `${tool} needed more than the ${Math.round(options.memoryBytes / MIB)} MiB of address space one render may take (SLUICE_RENDER_TOOL_MEMORY_MB)`,
          },
          "memory-limit",
        );
      const message = errorLine(result.stderr, options.checkoutRoot, options.secrets);
      throw new RenderError(locate(`${tool}: ${message}`), "exit");
    }
  }
}
