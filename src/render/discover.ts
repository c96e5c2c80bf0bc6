import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { discoveredConfig, type DiscoveredRoot } from "../core/config-defaults.ts";
import type { Config } from "../core/config.ts";
import { isManifestFile, isSkippedDirectory, relativeTo } from "./files.ts";
import { KUSTOMIZATION_FILES } from "./kustomizations.ts";

/**
 * Finds what a checkout without `.github/sluice.yml` deploys: the topmost directories holding a
 * kustomization or a Chart.yaml (each renders on its own, so nothing below them is read as plain
 * manifests), and whether any manifest file lies outside them. Symbolic links are not followed.
 */
export async function discoverRoots(checkoutRoot: string): Promise<{ roots: DiscoveredRoot[]; looseManifests: boolean }> {
  const roots: DiscoveredRoot[] = [];
  let looseManifests = false;
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    const path = relativeTo(checkoutRoot, dir) || ".";
    if (KUSTOMIZATION_FILES.some((name) => names.has(name))) {
      roots.push({ path, render: "kustomize" });
      return;
    }
    if (names.has("Chart.yaml")) {
      roots.push({ path, render: "helm" });
      return;
    }
    if (!looseManifests && entries.some((e) => e.isFile() && isManifestFile(e.name))) looseManifests = true;
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) if (entry.isDirectory() && !isSkippedDirectory(entry.name)) await walk(join(dir, entry.name));
  }
  await walk(checkoutRoot);
  return { roots, looseManifests };
}

/**
 * The configuration of a change whose base has no configuration file: the roots of both sides,
 * so a chart or kustomization the change adds is rendered as one, not read as plain files.
 */
export async function discoverBoth(baseRoot: string, headRoot: string, branch = "main"): Promise<Config> {
  const [base, head] = await Promise.all([discoverRoots(baseRoot), discoverRoots(headRoot)]);
  const roots = new Map<string, DiscoveredRoot>();
  for (const root of [...base.roots, ...head.roots]) if (!roots.has(root.path)) roots.set(root.path, root);
  return discoveredConfig(
    [...roots.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    base.looseManifests || head.looseManifests,
    branch,
  );
}

/** The configuration of a checkout that has no configuration file (see {@link discoveredConfig}). */
export async function discoverConfig(checkoutRoot: string, branch = "main"): Promise<Config> {
  const { roots, looseManifests } = await discoverRoots(checkoutRoot);
  return discoveredConfig(roots, looseManifests, branch);
}
