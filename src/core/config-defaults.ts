import type { Config, Environment } from "./config.ts";

// What a configuration is when a repository has none. Kept apart from the schema (and from zod,
// which takes longer to load than the rest of `sluice diff`) so the common case starts fast; a
// test checks that these defaults are the schema's.

/** The schema's defaults for an environment, besides its name. */
export const ENVIRONMENT_DEFAULTS: Omit<Environment, "name"> = {
  path: ".",
  namespace: "default",
  render: "auto",
  branch: "main",
  watch: [],
  ignore: [],
  strict: true,
  autoDeploy: true,
  prune: true,
  allowEmpty: false,
  selfHeal: false,
  transient: false,
  drift: { ignore: [] },
  clusters: [],
  waves: [],
  freeze: [],
};

/** The schema's defaults for the rest of a configuration. */
export const CONFIG_DEFAULTS: Omit<Config, "environments"> = {
  version: 1,
  commands: { permission: "write" },
  previews: { drafts: true, liveTimeout: "failure" },
};

/** The configuration used when a repository has no `.github/sluice.yml` and nothing was discovered: the whole checkout, one lenient environment. */
export function defaultConfig(branch = "main"): Config {
  return { ...CONFIG_DEFAULTS, environments: [{ ...ENVIRONMENT_DEFAULTS, name: "default", branch, strict: false }] };
}

/** A directory that renders on its own: it holds a kustomization or a chart. */
export interface DiscoveredRoot {
  path: string;
  render: "kustomize" | "helm";
}

/**
 * The configuration of a repository without `.github/sluice.yml`, as Flux treats a plain path:
 * every kustomization and chart directory is an environment of its own (named after its path),
 * and the manifests outside them form the `default` environment, which skips files that are not
 * Kubernetes objects instead of failing on them.
 */
export function discoveredConfig(roots: readonly DiscoveredRoot[], looseManifests: boolean, branch = "main"): Config {
  const used = new Set<string>();
  const nameOf = (path: string): string => {
    const base =
      path
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 55)
        .replace(/-+$/, "") || "root";
    let name = base;
    for (let i = 2; used.has(name) || name === "default"; i++) name = `${base}-${i}`;
    used.add(name);
    return name;
  };
  const environments: Environment[] = roots.map((root) => ({
    ...ENVIRONMENT_DEFAULTS,
    name: nameOf(root.path),
    path: root.path,
    // Found by its kustomization or Chart.yaml in one commit, which the other may not have yet (a
    // pull request that turns plain manifests into a chart): each commit renders what it has.
    render: "auto",
    branch,
    strict: false,
  }));
  if (looseManifests || environments.length === 0) {
    environments.unshift({
      ...ENVIRONMENT_DEFAULTS,
      name: "default",
      path: ".",
      render: "plain",
      branch,
      strict: false,
      ignore: roots.map((r) => r.path),
    });
  }
  return { ...CONFIG_DEFAULTS, environments };
}
