// A monorepo of many environments for bench/monorepo.ts: a third plain directories, a third
// kustomize overlays over shared bases, a third helm charts shared by several environments with a
// values file each; 20–100 objects per environment. Every environment reads one shared file of
// its kind (a plain directory through a link), so a change to the shared files affects them all.
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** How an environment renders. */
export type MonorepoKind = "plain" | "kustomize" | "helm";

/** One environment of the generated monorepo. */
export interface MonorepoEnvironment {
  name: string;
  kind: MonorepoKind;
  /** Its directory in the checkout. */
  path: string;
  namespace: string;
  /** The objects it renders. */
  objects: number;
  /** Its values file, relative to `path` (helm only). */
  values?: string;
}

/** What differs between the generated commits. */
export interface MonorepoVersion {
  /** The shared files' version: changing it changes every environment. */
  shared: number;
  /** Environments with a change of their own, by name. */
  touched?: readonly string[];
}

/** Base objects per kustomize base and per helm chart: the rest of each environment's objects are its own. */
const SHARED_OBJECTS = 10;
/** Environments per kustomize base and per chart. */
const GROUP = 25;

/** The environments of a monorepo of `count`, in configuration order. */
export function monorepoEnvironments(count: number): MonorepoEnvironment[] {
  const kinds: MonorepoKind[] = ["plain", "kustomize", "helm"];
  return Array.from({ length: count }, (_, i) => {
    const kind = kinds[i % 3] ?? "plain";
    const name = `${kind[0] ?? "x"}-${String(i).padStart(3, "0")}`;
    const objects = 20 + ((i * 37) % 81);
    const group = Math.floor(i / 3 / GROUP);
    if (kind === "plain") return { name, kind, path: `plain/${name}`, namespace: name, objects };
    if (kind === "kustomize") return { name, kind, path: `kustomize/overlays/${name}`, namespace: name, objects };
    return { name, kind, path: `helm/chart-${group}`, namespace: name, objects, values: `values-${name}.yaml` };
  });
}

function configMap(name: string, version: number, index: number): string {
  return [
    "apiVersion: v1",
    "kind: ConfigMap",
    "metadata:",
    `  name: ${name}`,
    "  labels:",
    "    app.kubernetes.io/part-of: monorepo",
    "data:",
    `  index: "${index}"`,
    `  version: "${version}"`,
    "  settings.yaml: |",
    "    log:",
    "      level: info",
    `    replicas: ${1 + (index % 4)}`,
  ].join("\n");
}

function deployment(name: string, version: number): string {
  return [
    "apiVersion: apps/v1",
    "kind: Deployment",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    "  replicas: 2",
    "  selector:",
    "    matchLabels:",
    `      app: ${name}`,
    "  template:",
    "    metadata:",
    "      labels:",
    `        app: ${name}`,
    "    spec:",
    "      containers:",
    `        - name: ${name}`,
    `          image: registry.example/${name}:1.${version}.0`,
    "          ports:",
    "            - containerPort: 8080",
    "          resources:",
    "            requests:",
    "              cpu: 50m",
    "              memory: 64Mi",
  ].join("\n");
}

/** `count` objects named after `prefix`: a Deployment every fifth, ConfigMaps otherwise. */
function objects(prefix: string, count: number, version: number): string {
  return Array.from({ length: count }, (_, i) =>
    i % 5 === 0 ? deployment(`${prefix}-${i}`, version) : configMap(`${prefix}-${i}`, version, i),
  ).join("\n---\n");
}

/** The `.github/sluice.yml` of the monorepo. */
export function monorepoConfig(environments: readonly MonorepoEnvironment[]): string {
  const lines = ["version: 1", "environments:"];
  for (const env of environments) {
    lines.push(`  - name: ${env.name}`, `    path: ${env.path}`, `    namespace: ${env.namespace}`);
    if (env.values) lines.push("    helm:", `      values: [${env.values}]`);
  }
  return `${lines.join("\n")}\n`;
}

/** Writes the monorepo at `version` into `dir` (emptied first). */
export async function writeMonorepo(dir: string, environments: readonly MonorepoEnvironment[], version: MonorepoVersion): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  const touched = new Set(version.touched ?? []);
  const files = new Map<string, string>();
  files.set(".github/sluice.yml", monorepoConfig(environments));
  files.set("shared/plain/common.yaml", objects("common", 2, version.shared));
  const groups = new Set<number>();
  for (const env of environments) {
    const own = touched.has(env.name) ? version.shared + 1 : 0;
    if (env.kind === "plain") {
      files.set(`${env.path}/objects.yaml`, objects(env.name, env.objects - 2, own));
    } else if (env.kind === "kustomize") {
      const group = Math.floor(Number(env.name.slice(2)) / 3 / GROUP);
      groups.add(group);
      files.set(
        `${env.path}/kustomization.yaml`,
        `resources:\n  - ../../bases/base-${group}\n  - own.yaml\nnameSuffix: -${env.name}\nlabels:\n  - pairs:\n      environment: ${env.name}\n`,
      );
      files.set(`${env.path}/own.yaml`, objects("own", env.objects - SHARED_OBJECTS, own));
    } else {
      files.set(`${env.path}/${env.values ?? "values.yaml"}`, `count: ${env.objects - SHARED_OBJECTS}\nversion: ${own}\n`);
    }
  }
  for (const group of groups) {
    files.set(`kustomize/bases/base-${group}/kustomization.yaml`, "resources:\n  - base.yaml\n");
    files.set(`kustomize/bases/base-${group}/base.yaml`, objects("base", SHARED_OBJECTS, version.shared));
  }
  const charts = new Set(environments.filter((env) => env.kind === "helm").map((env) => env.path));
  for (const chart of charts) {
    files.set(`${chart}/Chart.yaml`, `apiVersion: v2\nname: ${chart.split("/").at(-1) ?? "chart"}\nversion: 0.1.0\n`);
    files.set(`${chart}/values.yaml`, "count: 10\nversion: 0\n");
    // helm reads every file of a chart it does not ignore: each values file is its environment's alone.
    files.set(`${chart}/.helmignore`, "values-*.yaml\n");
    files.set(`${chart}/templates/shared.yaml`, objects("shared", SHARED_OBJECTS, version.shared));
    files.set(
      `${chart}/templates/own.yaml`,
      [
        "{{- range $i := until (int .Values.count) }}",
        "---",
        configMap("{{ $.Release.Name }}-own-{{ $i }}", 0, 0).replace('version: "0"', 'version: "{{ $.Values.version }}"'),
        "{{- end }}",
        "",
      ].join("\n"),
    );
  }
  for (const [path, text] of files) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), `${text}\n`);
  }
  for (const env of environments)
    if (env.kind === "plain") await symlink("../../shared/plain/common.yaml", join(dir, env.path, "common.yaml"));
}
