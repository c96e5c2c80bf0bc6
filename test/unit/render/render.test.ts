import { chmod, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { parseConfig, type Environment } from "../../../src/core/config.ts";
import type { RendererContext } from "../../../src/render/context.ts";
import { renderEnvironment } from "../../../src/render/render-environment.ts";
import { errorLine } from "../../../src/render/tool-output.ts";
import { openRendererContext } from "../../../src/render/setup.ts";
import type { RenderTools } from "../../../src/render/tools.ts";
import { checkout, removeCheckouts, tempDir, writeTree } from "../../helpers/checkouts.ts";

afterAll(removeCheckouts);

const contexts: (RendererContext & { dispose: () => Promise<void> })[] = [];
afterAll(async () => {
  await Promise.all(contexts.map((c) => c.dispose()));
});

async function context(
  root: string,
  tools: RenderTools = { kustomize: inject("kustomize"), helm: inject("helm") },
  limits?: { timeoutMs: number; maxOutputBytes: number },
) {
  const ctx = await openRendererContext(root, tools, limits);
  contexts.push(ctx);
  return ctx;
}

function env(fields: Partial<Environment> & { name?: string } = {}): Environment {
  const base = parseConfig(`version: 1\nenvironments:\n  - name: ${fields.name ?? "test"}\n`).environments[0];
  if (!base) throw new Error("no environment");
  return { ...base, ...fields };
}

const names = (objects: { object: Record<string, unknown> }[]) =>
  objects.map((o) => `${String(o.object.kind)}/${(o.object.metadata as { name: string }).name}`);

describe("plain rendering", () => {
  it("reads yaml, yml and json recursively, skipping hidden directories and other files", async () => {
    const root = await checkout("plain-app");
    const rendered = await renderEnvironment(await context(root), env());
    expect(rendered.problems).toEqual([]);
    expect(names(rendered.objects)).toEqual([
      "Deployment/api",
      "Service/api",
      "ConfigMap/api-flags",
      "ConfigMap/api-limits",
      "Namespace/shop",
    ]);
    expect(rendered.objects[0]?.source).toEqual({ file: "manifests/apps/api.yaml", line: 2 });
    expect(rendered.objects[2]?.source.file).toBe("manifests/apps/config.json");
  });

  it("renders nothing for a path that does not exist", async () => {
    const rendered = await renderEnvironment(await context(await checkout("plain-app")), env({ path: "nowhere" }));
    expect(rendered).toEqual({ objects: [], problems: [], missing: true });
  });

  it("refuses a path that is a symbolic link out of the checkout", async () => {
    const root = await checkout("plain-app");
    await symlink("/etc", join(root, "escape"));
    const rendered = await renderEnvironment(await context(root), env({ path: "escape" }));
    expect(rendered.problems).toEqual([{ file: "escape", line: 1, message: "escape resolves outside the checkout" }]);
  });

  it("reads a manifest that is a link inside the checkout, and names one that leads outside instead of skipping it", async () => {
    const root = await checkout("plain-app");
    // In a hidden directory, which plain rendering does not list: read only through the link.
    await mkdir(join(root, ".shared"));
    await writeFile(join(root, ".shared", "extra.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n");
    await symlink("../.shared/extra.yaml", join(root, "manifests", "extra.yaml"));
    await symlink("/etc/hostname", join(root, "manifests", "host.yaml"));
    const rendered = await renderEnvironment(await context(root), env());
    expect(rendered.problems).toEqual([
      { file: "manifests/host.yaml", line: 1, message: "is a symbolic link that leads outside the checkout; it was not read" },
    ]);
    expect(rendered.objects).toHaveLength(6);
    expect(rendered.objects.map((o) => JSON.stringify(o.object))).toContain(
      JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "shared" } }),
    );
  });
});

describe("kustomize rendering (real kustomize)", () => {
  it("builds an overlay with its base, patches and images", async () => {
    const root = await checkout("kustomize-app");
    const config = parseConfig(await import("node:fs/promises").then((fs) => fs.readFile(join(root, ".github/sluice.yml"), "utf8")));
    const production = config.environments.find((e) => e.name === "production");
    if (!production) throw new Error("fixture has no production");
    const rendered = await renderEnvironment(await context(root), production);
    expect(rendered.problems).toEqual([]);
    expect(names(rendered.objects).sort()).toEqual([
      expect.stringMatching(/^ConfigMap\/web-config-[a-z0-9]{10}$/),
      "Deployment/web",
      "Secret/web-credentials",
      "Service/web",
    ]);
    const deployment = rendered.objects.find((o) => o.object.kind === "Deployment")?.object as {
      metadata: { namespace: string };
      spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
    };
    expect(deployment.metadata.namespace).toBe("web-prod");
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.template.spec.containers[0]?.image).toBe("ghcr.io/example/web:1.3.2");
    expect(rendered.objects[0]?.source.file).toBe("deploy/overlays/production/kustomization.yaml");
  });

  it("is picked by render: auto, and kubectl kustomize is used when kustomize is absent", async () => {
    const root = await checkout("kustomize-app");
    const viaKubectl = await renderEnvironment(await context(root, { kubectl: "kubectl" }), env({ path: "deploy/overlays/staging" }));
    const viaKustomize = await renderEnvironment(await context(root), env({ path: "deploy/overlays/staging" }));
    expect(viaKubectl.problems).toEqual([]);
    expect(names(viaKubectl.objects)).toEqual(names(viaKustomize.objects));
    expect(names(viaKustomize.objects)).toHaveLength(3);
  });

  it("maps a YAML error in a resource to its file and line", async () => {
    const root = await checkout("kustomize-app", {
      "deploy/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports: [\n",
    });
    const rendered = await renderEnvironment(await context(root), env({ path: "deploy/overlays/staging" }));
    expect(rendered.objects).toEqual([]);
    expect(rendered.problems).toHaveLength(1);
    expect(rendered.problems[0]).toMatchObject({
      file: "deploy/base/service.yaml",
      line: 6,
      message: expect.stringMatching(/^kustomize: .*service\.yaml/) as string,
    });
    expect(rendered.problems[0]?.message).not.toContain(root);
  });

  it("reports an invalid kustomization at the kustomization file, before kustomize runs", async () => {
    const root = await checkout("kustomize-app", {
      "deploy/overlays/staging/kustomization.yaml": "resources:\n  - ../../base\n  bad: [\n",
    });
    const rendered = await renderEnvironment(await context(root), env({ path: "deploy/overlays/staging" }));
    expect(rendered.problems).toEqual([
      {
        file: "deploy/overlays/staging/kustomization.yaml",
        line: 3,
        message: "is not valid YAML: All mapping items must start at the same column",
      },
    ]);
  });

  it("has no network: a remote base fails at once with a clear error", async () => {
    const root = await checkout(undefined, {
      "k/kustomization.yaml": "resources:\n  - https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0\n",
    });
    const rendered = await renderEnvironment(await context(root), env({ path: "k" }));
    expect(rendered.objects).toEqual([]);
    expect(rendered.problems[0]?.file).toBe("k/kustomization.yaml");
    expect(rendered.problems[0]?.message).toBe(
      'remote reference "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0" is not allowed: Sluice renders without network access; vendor it into the repository',
    );
  });

  it("refuses exec functions and plugins", async () => {
    const root = await checkout(undefined, {
      "k/kustomization.yaml": "generators:\n  - gen.yaml\n",
      "k/gen.yaml":
        "apiVersion: example.com/v1\nkind: Gen\nmetadata:\n  name: g\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
    });
    const rendered = await renderEnvironment(await context(root), env({ path: "k" }));
    expect(rendered.objects).toEqual([]);
    expect(rendered.problems).toHaveLength(1);
  });
});

describe("helm rendering (real helm)", () => {
  const production = () =>
    env({
      name: "production",
      path: "charts/web",
      namespace: "prod",
      render: "helm",
      helm: { releaseName: "web", values: ["values-prod.yaml"], set: {}, includeCRDs: true, apiVersions: [] },
    });

  it("renders the chart with its values, CRDs and namespace, pointing at each template", async () => {
    const rendered = await renderEnvironment(await context(await checkout("helm-app")), production());
    expect(rendered.problems).toEqual([]);
    expect(names(rendered.objects)).toEqual([
      "CustomResourceDefinition/backups.web.example.com",
      "Service/web-web",
      "Deployment/web-web",
      "Ingress/web-web",
    ]);
    const deployment = rendered.objects.find((o) => o.object.kind === "Deployment");
    expect((deployment?.object.spec as { replicas: number }).replicas).toBe(4);
    expect(deployment?.source).toEqual({ file: "charts/web/templates/deployment.yaml", line: 1 });
  });

  it("is picked by render: auto", async () => {
    const rendered = await renderEnvironment(await context(await checkout("helm-app")), env({ path: "charts/web" }));
    expect(names(rendered.objects)).toEqual([
      "CustomResourceDefinition/backups.web.example.com",
      "Service/test-web",
      "Deployment/test-web",
    ]);
  });

  it("maps a template error to the template file and line", async () => {
    const root = await checkout("helm-app", { "charts/web/templates/broken.yaml": "kind: ConfigMap\n{{ .Values.missing.deeper }}\n" });
    const rendered = await renderEnvironment(await context(root), production());
    expect(rendered.problems).toEqual([
      { file: "charts/web/templates/broken.yaml", line: 2, message: expect.stringContaining("nil pointer") as string },
    ]);
  });

  it("maps a values file error to the values file", async () => {
    const root = await checkout("helm-app", { "charts/web/values-prod.yaml": "replicaCount: [\n" });
    const rendered = await renderEnvironment(await context(root), production());
    expect(rendered.problems[0]).toMatchObject({ file: "charts/web/values-prod.yaml", line: 1 });
  });

  it("names a missing values file", async () => {
    const rendered = await renderEnvironment(await context(await checkout("helm-app")), {
      ...production(),
      helm: { releaseName: "web", values: ["nope.yaml"], set: {}, includeCRDs: true, apiVersions: [] },
    });
    expect(rendered.problems).toEqual([{ file: "charts/web/nope.yaml", line: 1, message: "helm values file nope.yaml does not exist" }]);
  });

  it("renders as the Kubernetes it targets: a chart that needs a recent Kubernetes renders, and helm.kubeVersion and helm.apiVersions reach it", async () => {
    // podinfo's chart shape: a kubeVersion constraint and a template that asks for an API version.
    const chart = {
      "chart/Chart.yaml":
        'apiVersion: v1\nname: podinfo\nversion: 6.9.2\nappVersion: 6.9.2\nkubeVersion: ">=1.23.0-0"\ndescription: Podinfo Helm chart for Kubernetes\n',
      "chart/values.yaml": "replicaCount: 1\n",
      "chart/templates/hpa.yaml":
        '{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: monitoring\n{{- end }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube\ndata:\n  version: "{{ .Capabilities.KubeVersion.Version }}"\n',
    };
    const root = await checkout(undefined, chart);
    const base = env({ path: "chart", render: "helm" });
    const plain = await renderEnvironment(await context(root), base);
    expect(plain.problems).toEqual([]);
    expect(names(plain.objects)).toEqual(["ConfigMap/kube"]);
    const pinned = await renderEnvironment(await context(root), {
      ...base,
      helm: { values: [], set: {}, includeCRDs: true, kubeVersion: "1.31.4", apiVersions: ["monitoring.coreos.com/v1"] },
    });
    expect(names(pinned.objects)).toEqual(["ConfigMap/monitoring", "ConfigMap/kube"]);
    expect((pinned.objects[1]?.object.data as { version: string }).version).toBe("v1.31.4");
    const old = await renderEnvironment(await context(root), {
      ...base,
      helm: { values: [], set: {}, includeCRDs: true, kubeVersion: "1.20", apiVersions: [] },
    });
    expect(old.problems).toEqual([
      {
        file: "chart/Chart.yaml",
        line: 5,
        message: expect.stringContaining("chart requires kubeVersion: >=1.23.0-0 which is incompatible with Kubernetes v1.20") as string,
      },
    ]);
  });

  it("says when helm is not installed", async () => {
    const rendered = await renderEnvironment(await context(await checkout("helm-app"), {}), production());
    expect(rendered.problems[0]?.message).toBe("helm was not found; install it or set SLUICE_HELM");
  });
});

describe("renderer limits", () => {
  async function fakeTool(script: string): Promise<string> {
    const dir = await tempDir();
    const path = join(dir, "tool");
    await writeTree(dir, { tool: `#!/bin/sh\n${script}\n` });
    await chmod(path, 0o755);
    return path;
  }

  it("kills a renderer that runs past the timeout", async () => {
    const root = await checkout(undefined, { "k/kustomization.yaml": "resources: []\n" });
    const ctx = await context(root, { kustomize: await fakeTool("sleep 30") }, { timeoutMs: 300, maxOutputBytes: 1024 });
    const rendered = await renderEnvironment(ctx, env({ path: "k" }));
    expect(rendered.problems).toEqual([{ file: "k/kustomization.yaml", line: 1, message: "kustomize did not finish within 300 ms" }]);
  });

  it("kills a renderer whose output passes the limit", async () => {
    const root = await checkout(undefined, { "k/kustomization.yaml": "resources: []\n" });
    const ctx = await context(root, { kustomize: await fakeTool("yes 'a: b'") }, { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 });
    const rendered = await renderEnvironment(ctx, env({ path: "k" }));
    expect(rendered.problems).toEqual([
      { file: "k/kustomization.yaml", line: 1, message: "kustomize output exceeded the limit of 65536 bytes" },
    ]);
  });

  it("caps the size of plain manifests", async () => {
    const root = await checkout("plain-app");
    const ctx = await context(root, {}, { timeoutMs: 1_000, maxOutputBytes: 300 });
    const rendered = await renderEnvironment(ctx, env());
    expect(rendered.problems[0]?.message).toMatch(/manifests exceed the limit of 300 bytes/);
  });
});

describe("renderer messages", () => {
  it("show paths of the checkout relative to it and hide every other absolute path", () => {
    const root = "/var/cache/sluice/checkouts/222-abc";
    const stderr = [
      `Error: security; file '/var/cache/sluice/checkouts/111-victim/base' is not in or below '${root}/k'`,
      "more input echoed on the next line",
    ].join("\n");
    expect(errorLine(stderr, root)).toBe("security; file '<outside the checkout>' is not in or below 'k'");
    expect(errorLine(`Error: evalsymlink failure on '/etc/passwd' : lstat /etc/passwd: no such file or directory`, root)).toBe(
      "evalsymlink failure on '<outside the checkout>' : lstat <outside the checkout>: no such file or directory",
    );
    expect(errorLine("Error: replace operation does not apply: doc is missing path: /spec/replicas: missing value", root)).toBe(
      "replace operation does not apply: doc is missing path: /spec/replicas: missing value",
    );
    expect(errorLine(`Error: accumulating resources from '${root}/k/apps/v1.yaml': apps/v1 is fine`, root)).toBe(
      "accumulating resources from 'k/apps/v1.yaml': apps/v1 is fine",
    );
  });
});
