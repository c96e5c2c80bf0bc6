import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { GO_RESERVED_MB } from "./render-budget.ts";

/** A scratch home for one renderer run, so no user configuration, plugin or cache is used. */
export interface Scratch {
  home: string;
  env: NodeJS.ProcessEnv;
  dispose: () => Promise<void>;
}

const MIB = 1024 * 1024;

/**
 * How the Go runtime of helm and kustomize collects garbage. A render is short and most of what it
 * allocates stays reachable until it prints, so collecting as the heap grows (Go's default, GOGC=100)
 * spends about a quarter of a typical render's CPU for nothing. The collector is off (GOGC=off) until the
 * runtime's memory nears `GOMEMLIMIT`, which then makes it collect as hard as it must:
 * three quarters of what the tool may hold under its address-space cap (the rest of the cap is
 * address space Go reserves and never fills, `GO_RESERVED_MB`), or a quarter of the machine's
 * memory, at most 1 GiB, where no cap is set.
 */
export function goRuntimeEnv(toolMemoryBytes: number | undefined, machineBytes = totalmem()): { GOGC: string; GOMEMLIMIT: string } {
  const holdable = toolMemoryBytes === undefined ? undefined : toolMemoryBytes - GO_RESERVED_MB * MIB;
  const limit =
    holdable === undefined ? Math.min(1024 * MIB, Math.floor(machineBytes / 4)) : Math.max(64 * MIB, Math.floor((holdable * 3) / 4));
  return { GOGC: "off", GOMEMLIMIT: `${Math.floor(limit / MIB)}MiB` };
}

/**
 * Creates an empty home with an environment that points every tool at it: no plugins, no
 * repositories, no credentials, and a dead proxy so that a tool that tries the network fails
 * at once even where network namespaces are not available. `toolMemoryBytes` is the address
 * space each tool may take, which bounds its garbage collector's target (`goRuntimeEnv`).
 */
export async function createScratch(toolMemoryBytes?: number): Promise<Scratch> {
  const home = await mkdtemp(join(tmpdir(), "sluice-render-"));
  const plugins = join(home, "plugins");
  await mkdir(plugins);
  const deadProxy = "http://127.0.0.1:9";
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    TMPDIR: home,
    LANG: "C.UTF-8",
    XDG_CONFIG_HOME: join(home, "config"),
    XDG_CACHE_HOME: join(home, "cache"),
    XDG_DATA_HOME: join(home, "data"),
    HELM_CONFIG_HOME: join(home, "helm-config"),
    HELM_CACHE_HOME: join(home, "helm-cache"),
    HELM_DATA_HOME: join(home, "helm-data"),
    HELM_PLUGINS: plugins,
    KUSTOMIZE_PLUGIN_HOME: plugins,
    KUBECONFIG: join(home, "no-kubeconfig"),
    HTTP_PROXY: deadProxy,
    HTTPS_PROXY: deadProxy,
    http_proxy: deadProxy,
    https_proxy: deadProxy,
    NO_PROXY: "",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ALLOW_PROTOCOL: "file",
    GIT_CONFIG_NOSYSTEM: "1",
    ...goRuntimeEnv(toolMemoryBytes),
  };
  return { home, env, dispose: () => rm(home, { recursive: true, force: true }) };
}
