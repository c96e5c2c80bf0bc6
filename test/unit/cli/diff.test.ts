import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";
import { bundleDiffCommand } from "../../../scripts/bundle-cli.ts";
import { runDiff as runDiffFromSource } from "../../../src/cli/diff-command.ts";
import { main } from "../../../src/cli/main.ts";
import type { JsonReport } from "../../../src/core/diff-report.ts";
import { checkout, FIXTURES, removeCheckouts, tempDir } from "../../helpers/checkouts.ts";

afterAll(removeCheckouts);

const ENTRY = fileURLToPath(new URL("../../../src/cli/sluice.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

async function sluice(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    env: { PATH: process.env.PATH, SLUICE_KUSTOMIZE: inject("kustomize"), SLUICE_HELM: inject("helm") },
    cwd: process.cwd(),
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

async function json(args: string[]): Promise<{ code: number; report: JsonReport; stderr: string }> {
  const { code, stdout, stderr } = await sluice([...args, "--format", "json"]);
  return { code, report: JSON.parse(stdout) as JsonReport, stderr };
}

describe("sluice diff", () => {
  it("exits 0 when nothing changed", async () => {
    const { code, report } = await json(["diff", await checkout("kustomize-app"), await checkout("kustomize-app")]);
    expect(code).toBe(0);
    expect(report.environments.map((e) => [e.name, e.summary])).toEqual([
      ["staging", { added: 0, modified: 0, removed: 0, unchanged: 3 }],
      ["production", { added: 0, modified: 0, removed: 0, unchanged: 4 }],
    ]);
  });

  it("exits 1 with the JSON contract when something changed", async () => {
    const base = await checkout("kustomize-app");
    const head = await checkout("kustomize-app", {
      "deploy/overlays/production/kustomization.yaml": (
        await readFile(join(base, "deploy/overlays/production/kustomization.yaml"), "utf8")
      ).replace("newTag: 1.3.2", "newTag: 1.4.0"),
    });
    const { code, report } = await json(["diff", base, head, "--env", "production"]);
    expect(code).toBe(1);
    expect(report.environments).toHaveLength(1);
    const production = report.environments[0];
    expect(production?.summary).toEqual({ added: 0, modified: 1, removed: 0, unchanged: 3 });
    const deployment = production?.changes.find((c) => c.kind === "Deployment");
    expect(deployment).toMatchObject({
      group: "apps",
      version: "v1",
      kind: "Deployment",
      namespace: "web-prod",
      name: "web",
      action: "modified",
    });
    expect(deployment?.diff).toContain("-          image: ghcr.io/example/web:1.3.2\n+          image: ghcr.io/example/web:1.4.0");
    expect(production?.changes.filter((c) => c.action === "unchanged").every((c) => c.diff === "")).toBe(true);
    expect(report.errors).toEqual([]);
  });

  it("never prints a Secret value in any format", async () => {
    const base = await checkout("kustomize-app");
    const head = await checkout("kustomize-app", {
      "deploy/overlays/production/secret.yaml":
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-credentials\nstringData:\n  DATABASE_PASSWORD: Tr0ub4dor&3\n  API_TOKEN: tok_live_4f9a8b7c6d5e\n",
    });
    const values = ["correct-horse-battery-staple", "Tr0ub4dor&3", "tok_live_4f9a8b7c6d5e"].flatMap((v) => [
      v,
      Buffer.from(v).toString("base64"),
    ]);
    for (const format of ["json", "markdown", "html"]) {
      const { code, stdout } = await sluice(["diff", base, head, "--format", format]);
      expect(code).toBe(1);
      for (const value of values) expect(stdout).not.toContain(value);
    }
    const { report } = await json(["diff", base, head, "--env", "production"]);
    expect(report.environments[0]?.changes.find((c) => c.kind === "Secret")?.secretKeys).toEqual({
      API_TOKEN: "unchanged",
      DATABASE_PASSWORD: "changed",
    });
  });

  it("gives cluster-scoped objects an empty namespace and reports errors with files relative to the checkout", async () => {
    const base = await checkout("plain-app");
    const head = await checkout("plain-app", { "manifests/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n" });
    const { code, report, stderr } = await json(["diff", base, head]);
    expect(code).toBe(2);
    expect(report.environments[0]?.changes.find((c) => c.kind === "Namespace")?.namespace).toBe("");
    expect(report.errors).toEqual([
      { file: "manifests/broken.yaml", line: 1, message: "ConfigMap is missing metadata.name", environment: "default", side: "head" },
    ]);
    expect(stderr).toContain("manifests/broken.yaml:1: ConfigMap is missing metadata.name");
  });

  it("reads the configuration from BASE, not HEAD", async () => {
    const base = await checkout("kustomize-app");
    const head = await checkout("kustomize-app", {
      ".github/sluice.yml": "version: 1\nenvironments:\n  - name: everything\n    path: .\n",
    });
    const { report } = await json(["diff", base, head]);
    expect(report.environments.map((e) => e.name)).toEqual(["staging", "production"]);
  });

  it("takes --config and --out", async () => {
    const dir = await tempDir();
    const configFile = join(dir, "sluice.yml");
    const out = join(dir, "report.html");
    await import("node:fs/promises").then((fs) =>
      fs.writeFile(configFile, "version: 1\nenvironments:\n  - name: web\n    path: charts/web\n    namespace: prod\n"),
    );
    const { code, stdout } = await sluice([
      "diff",
      await checkout("helm-app"),
      await checkout("helm-app", {
        "charts/web/values.yaml": "replicaCount: 2\nimage: { repository: r, tag: t }\nservice: { port: 80 }\ningress: { enabled: false }\n",
      }),
      "--config",
      configFile,
      "--format",
      "html",
      "--out",
      out,
    ]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    const page = await readFile(out, "utf8");
    expect(page).toContain("d2h-file-side-diff");
    expect(page).toContain("Deployment/prod/web-web");
  });

  it("exits 2 with the file, line and field of an invalid configuration", async () => {
    const base = await checkout("plain-app", { ".github/sluice.yml": "version: 1\nenvironments:\n  - name: Bad_Name\n" });
    const { code, stderr } = await sluice(["diff", base, base]);
    expect(code).toBe(2);
    expect(stderr).toContain(".github/sluice.yml:3: environments[0].name: must be lowercase letters, digits and '-'");
  });

  it("exits 2 on an unknown environment, format, or missing argument", async () => {
    const dir = await checkout("kustomize-app");
    expect(await sluice(["diff", dir, dir, "--env", "qa"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('unknown environment "qa"; the configuration has "staging", "production"') as string,
    });
    expect(await sluice(["diff", dir, dir, "--format", "yaml"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--format must be one of markdown, json, html") as string,
    });
    expect((await sluice(["diff", dir])).code).toBe(2);
    expect((await sluice(["diff", dir, dir, "--bogus"])).stderr).toContain("Unknown option '--bogus'");
    expect((await sluice(["deploy"])).stderr).toContain('unknown command "deploy"');
    expect((await sluice(["diff", dir, dir, "--config", "/nonexistent.yml"])).stderr).toContain("/nonexistent.yml: cannot be read: ENOENT");
  });

  it("runs as a process with kubectl diff exit codes", async () => {
    const base = await checkout("plain-app");
    const head = await checkout("plain-app", { "manifests/namespace.yaml": null });
    const run = promisify(execFile);
    const env = { ...process.env, SLUICE_KUSTOMIZE: inject("kustomize") };
    const same = await run(process.execPath, [ENTRY, "diff", base, base], { env });
    expect(same.stdout).toContain("| `default` | 0 | 0 | 0 | 5 | no changes |");
    const changed = await run(process.execPath, [ENTRY, "diff", base, head], { env }).then(
      () => 0,
      (error: unknown) => error,
    );
    expect(changed).toMatchObject({ code: 1, stdout: expect.stringContaining("🔴 removed <code>Namespace shop</code>") as string });
  });
});

describe("sluice diff on what is not a checkout", () => {
  it("is an error naming the path, never a diff against nothing", async () => {
    const base = await checkout("plain-app");
    const missing = join(await tempDir(), "nonexistent");
    const one = await sluice(["diff", base, missing]);
    expect(one.code).toBe(2);
    expect(one.stderr).toBe(`sluice diff: HEAD ${missing} does not exist\n`);
    const both = await sluice(["diff", missing, `${missing}-too`]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain(`BASE ${missing} does not exist`);
    const file = await sluice(["diff", join(base, "manifests/namespace.yaml"), base]);
    expect(file.code).toBe(2);
    expect(file.stderr).toContain("manifests/namespace.yaml is a file; a checkout is a directory");
  });
});

describe("help", () => {
  it.each([
    ["diff", "Usage: sluice diff BASE HEAD"],
    ["keys", "Usage: sluice keys generate"],
    ["app", "Usage: sluice app"],
    ["agent", "Usage: sluice agent"],
  ])("sluice %s --help prints the command's help and does nothing else", async (command, usage) => {
    for (const args of [[command, "--help"], [command, "-h"], ...(command === "keys" ? [["keys", "generate", "--help"]] : [])]) {
      const { code, stdout, stderr } = await sluice(args);
      expect(code).toBe(0);
      expect(stdout).toContain(usage);
      expect(stdout).not.toContain("BEGIN PRIVATE KEY");
      expect(stderr).toBe("");
    }
  });

  it("answers an unknown option with the command's help on stderr", async () => {
    const { code, stderr } = await sluice(["diff", "--colour", "a", "b"]);
    expect(code).toBe(2);
    expect(stderr).toContain("Unknown option '--colour'");
    expect(stderr).toContain("Usage: sluice diff BASE HEAD");
  });
});

describe("kinds whose scope is unknown", () => {
  it("shows them without an invented namespace and says so once", async () => {
    const files = {
      "m/issuer.yaml": "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt\nspec: {}\n",
      "m/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
      "m/gadget.yaml": "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n",
    };
    const { code, report } = await json(["diff", await checkout(undefined, {}), await checkout(undefined, files)]);
    expect(code).toBe(1);
    const [env] = report.environments;
    expect(env?.changes.map((c) => [c.kind, c.namespace])).toEqual([
      ["ClusterIssuer", ""],
      ["Gadget", ""],
      ["Widget", ""],
    ]);
    expect(env?.notes).toEqual([expect.stringMatching(/^the scope of Gadget\.example\.com, Widget\.example\.com is unknown here/)]);
  });
});

describe("a repository without .github/sluice.yml", () => {
  it("is read as Flux reads a plain path: charts and kustomizations are environments of their own, other YAML is skipped with one note", async () => {
    // The shape of fluxcd/flux2-kustomize-helm-example plus a chart and a docker-compose file.
    const files = {
      "clusters/production/apps.yaml":
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 10m0s\n  path: ./apps/production\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
      "apps/base/podinfo/kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: podinfo\nresources:\n  - namespace.yaml\n  - release.yaml\n",
      "apps/base/podinfo/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: podinfo\n",
      "apps/base/podinfo/release.yaml":
        'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\nspec:\n  interval: 50m\n  chart:\n    spec:\n      chart: podinfo\n      version: "6.x"\n',
      "apps/production/kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base/podinfo\n",
      "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
      "charts/web/values.yaml": "replicaCount: 2\n",
      "charts/web/templates/cm.yaml":
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-web\ndata:\n  replicas: "{{ .Values.replicaCount }}"\n',
      "docker-compose.yml": "services:\n  web:\n    image: nginx\n",
      "values-extra.yaml": "global:\n  enabled: true\n",
    };
    const { code, report, stderr } = await json(["diff", await checkout(undefined, {}), await checkout(undefined, files)]);
    expect(report.errors).toEqual([]);
    expect(stderr).toBe("");
    expect(code).toBe(1);
    expect(report.environments.map((e) => [e.name, e.summary.added])).toEqual([
      ["default", 1],
      ["apps-base-podinfo", 2],
      ["apps-production", 2],
      ["charts-web", 1],
    ]);
    expect(report.environments[0]?.notes).toContain(
      "skipped 2 files that hold no Kubernetes objects: docker-compose.yml, values-extra.yaml",
    );
    expect(report.environments[3]?.changes.map((c) => c.name)).toEqual(["charts-web-web"]);
  });

  it("is strict where the configuration names a path", async () => {
    const files = {
      ".github/sluice.yml": "version: 1\nenvironments:\n  - name: prod\n    path: m\n",
      "m/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
      "m/values.yaml": "replicas: 2\n",
    };
    const repo = await checkout(undefined, files);
    const { code, report } = await json(["diff", repo, repo]);
    expect(code).toBe(2);
    expect(report.errors.filter((e) => e.side === "head")).toEqual([
      expect.objectContaining({ file: "m/values.yaml", message: expect.stringContaining("is missing apiVersion, kind") as string }),
    ]);
  });
});

describe("the bundled diff command (what `npm run build` ships)", () => {
  it("reports exactly what the source does, on plain, kustomize and helm changes", async () => {
    // Bundled next to a dist-shaped directory inside the project, so its packages resolve from node_modules.
    const outfile = join(ROOT, ".cache", "bundle-test", "cli", "diff-command.js");
    await bundleDiffCommand(outfile);
    const bundled = (await import(`${pathToFileURL(outfile).href}?${Date.now()}`)) as typeof import("../../../src/cli/diff-command.ts");
    // What it leaves to separate files it finds where the compiled modules are (dist/ mirrors src/).
    const lazy = [...(await readFile(outfile, "utf8")).matchAll(/import\("(\.\.\/[^"]+)\.js"\)/g)].map((m) => m[1] as string);
    expect(lazy.sort()).toEqual(["../core/config", "../core/html", "../views"]);
    for (const module of lazy) await expect(stat(join(ROOT, "src", "cli", `${module}.ts`))).resolves.toBeDefined();
    // Without a configuration file (which the bundle loads from dist/), each fixture is discovered.
    const noConfig = { ".github/sluice.yml": null };
    const pairs: [string, string][] = [
      [
        await checkout("plain-app", noConfig),
        await checkout("plain-app", {
          ...noConfig,
          "manifests/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  mode: 0755\n  on: yes\n",
        }),
      ],
      [
        await checkout("kustomize-app", noConfig),
        await checkout("kustomize-app", {
          ...noConfig,
          "deploy/overlays/production/kustomization.yaml": (
            await readFile(join(FIXTURES, "kustomize-app/deploy/overlays/production/kustomization.yaml"), "utf8")
          ).replace("newTag: 1.3.2", "newTag: 1.4.0"),
          "deploy/overlays/staging/kustomization.yaml": null,
        }),
      ],
      [
        await checkout("helm-app", noConfig),
        await checkout("helm-app", {
          ...noConfig,
          "charts/web/values.yaml": `${await readFile(join(FIXTURES, "helm-app/charts/web/values.yaml"), "utf8")}\nextraNote: "a: b"\n`,
          "charts/web/templates/broken.yaml": "kind: ConfigMap\nmetadata:\n  name: {{ .Values.missing.key }}\n",
        }),
      ],
    ];
    for (const [base, head] of pairs) {
      const run = async (runDiff: typeof bundled.runDiff) => {
        let stdout = "";
        let stderr = "";
        const code = await runDiff(
          { base, head, environments: [], format: "json" },
          {
            env: { PATH: process.env.PATH, SLUICE_KUSTOMIZE: inject("kustomize"), SLUICE_HELM: inject("helm") },
            cwd: process.cwd(),
            stdout: (t) => (stdout += t),
            stderr: (t) => (stderr += t),
          },
        );
        return { code, stdout, stderr };
      };
      const [fromSource, fromBundle] = [await run(runDiffFromSource), await run(bundled.runDiff)];
      expect(fromSource.stdout.length).toBeGreaterThan(100);
      expect(fromBundle).toEqual(fromSource);
    }
  });
});
