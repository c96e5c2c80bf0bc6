import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A scratch home for one renderer run, so no user configuration, plugin or cache is used. */
export interface Scratch {
  home: string;
  env: NodeJS.ProcessEnv;
  dispose: () => Promise<void>;
}

/**
 * Creates an empty home with an environment that points every tool at it: no plugins, no
 * repositories, no credentials, and a dead proxy so that a tool that tries the network fails
 * at once even where network namespaces are not available.
 */
export async function createScratch(): Promise<Scratch> {
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
  };
  return { home, env, dispose: () => rm(home, { recursive: true, force: true }) };
}
