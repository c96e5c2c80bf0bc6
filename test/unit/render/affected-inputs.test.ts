import { symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/core/config.ts";
import { environmentInputs } from "../../../src/render/inputs.ts";
import { checkout, removeCheckouts } from "../../helpers/checkouts.ts";

afterAll(removeCheckouts);

// One chart, two environments, each with a values file of its own: the common shape of helm in a
// monorepo. helm loads every file of a chart its .helmignore does not exclude (a template may read
// any through .Files, or print them all with the context), so another environment's values file is
// left out of an environment's inputs only once .helmignore lists it.
const config = parseConfig(`version: 1
environments:
  - name: staging
    path: charts/web
    helm:
      values: [values-staging.yaml]
  - name: production
    path: charts/web
    helm:
      values: [env/values-production.yaml]
`);
const [staging, production] = config.environments;
if (!staging || !production) throw new Error("fixture config");
const environments = [staging, production];

const chart: Record<string, string> = {
  "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
  "charts/web/.helmignore": "# per-environment values\nvalues-*.yaml\n/env/\nREADME.md\ncommon.yaml\n",
  "charts/web/values.yaml": "replicas: 1\n",
  "charts/web/values-staging.yaml": "replicas: 2\n",
  "charts/web/env/values-production.yaml": "replicas: 5\n",
  "charts/web/README.md": "# web\n",
  "charts/web/templates/deployment.yaml": "kind: Deployment\nspec:\n  replicas: {{ .Values.replicas }}\n",
};

/** Whether each environment's inputs differ between the chart and the chart with `changes`. */
async function affected(changes: Record<string, string | null>, base: Record<string, string> = chart): Promise<string[]> {
  const [before, after] = [await checkout(undefined, base), await checkout(undefined, { ...base, ...changes })];
  const out: string[] = [];
  for (const env of environments)
    if ((await environmentInputs(before, env)).digest !== (await environmentInputs(after, env)).digest) out.push(env.name);
  return out;
}

describe("the inputs of environments that share a helm chart", () => {
  it("leave out another environment's values file that .helmignore lists", async () => {
    expect(await affected({ "charts/web/values-staging.yaml": "replicas: 3\n" })).toEqual(["staging"]);
    expect(await affected({ "charts/web/env/values-production.yaml": "replicas: 6\n" })).toEqual(["production"]);
    expect(await affected({ "charts/web/README.md": "# web, again\n" })).toEqual([]);
    const inputs = await environmentInputs(await checkout(undefined, chart), staging);
    expect(inputs.files).toEqual([
      "charts/web/.helmignore",
      "charts/web/Chart.yaml",
      "charts/web/templates/deployment.yaml",
      "charts/web/values-staging.yaml",
      "charts/web/values.yaml",
    ]);
  });

  it("keep what helm reads for every environment: the chart, its default values, templates, CRDs and subcharts", async () => {
    const both = ["staging", "production"];
    expect(await affected({ "charts/web/values.yaml": "replicas: 4\n" })).toEqual(both);
    expect(await affected({ "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.2.0\n" })).toEqual(both);
    expect(await affected({ "charts/web/templates/service.yaml": "kind: Service\n" })).toEqual(both);
    expect(await affected({ "charts/web/crds/crd.yaml": "kind: CustomResourceDefinition\n" })).toEqual(both);
    expect(await affected({ "charts/web/charts/lib/Chart.yaml": "apiVersion: v2\nname: lib\nversion: 0.1.0\n" })).toEqual(both);
    expect(await affected({ "charts/web/values.schema.json": "{}\n" })).toEqual(both);
    // A kustomization added beside the chart turns `render: auto` into kustomize.
    expect(await affected({ "charts/web/kustomization.yaml": "resources: []\n" })).toEqual(both);
  });

  it("keep every file helm loads: all of them without a .helmignore, and what it does not list", async () => {
    const both = ["staging", "production"];
    const unlisted: Record<string, string> = { ...chart };
    delete unlisted["charts/web/.helmignore"];
    expect(await affected({ "charts/web/values-staging.yaml": "replicas: 3\n" }, unlisted)).toEqual(both);
    expect(await affected({ "charts/web/README.md": "# web, again\n" }, unlisted)).toEqual(both);
    // A file .helmignore does not list is in `.Files` for every environment.
    expect(await affected({ "charts/web/files/config.json": "{}\n" })).toEqual(both);
    // helm reads the default values whatever .helmignore says; and .helmignore itself decides the rest.
    const greedy = { ...chart, "charts/web/.helmignore": "*.yaml\n" };
    expect(await affected({ "charts/web/values.yaml": "replicas: 4\n" }, greedy)).toEqual(both);
    expect(await affected({ "charts/web/.helmignore": "values-*.yaml\n" })).toEqual(both);
    // A rule helm reads otherwise than this copy does (`**`) leaves nothing out.
    const starStar = { ...chart, "charts/web/.helmignore": "**/values-*.yaml\n" };
    expect(await affected({ "charts/web/values-staging.yaml": "replicas: 3\n" }, starStar)).toEqual(both);
    const reversed = { ...chart, "charts/web/.helmignore": "values-[z-a]*.yaml\nvalues-*.yaml\n" };
    expect(await affected({ "charts/web/values-staging.yaml": "replicas: 3\n" }, reversed)).toEqual(both);
  });

  it("read .helmignore rules as helm does: base names, paths from the top, directories, classes", async () => {
    const rules = { ...chart, "charts/web/.helmignore": "/top-[0-9].yaml\nnested/*.txt\ncache/\nv?lues-s*.yaml\n/env/\n" };
    expect(await affected({ "charts/web/top-1.yaml": "a: 2\n" }, rules)).toEqual([]);
    expect(await affected({ "charts/web/sub/top-1.yaml": "a: 2\n" }, rules)).toEqual(["staging", "production"]);
    expect(await affected({ "charts/web/nested/a.txt": "x\n" }, rules)).toEqual([]);
    expect(await affected({ "charts/web/nested/deeper/a.txt": "x\n" }, rules)).toEqual(["staging", "production"]);
    expect(await affected({ "charts/web/x/cache/a.json": "{}\n" }, rules)).toEqual([]);
    expect(await affected({ "charts/web/values-staging.yaml": "replicas: 3\n" }, rules)).toEqual(["staging"]);
  });

  it("follow a values file that is a link to another file of the chart", async () => {
    const [before, after] = [await checkout(undefined, chart), await checkout(undefined, { ...chart, "charts/web/common.yaml": "b: 2\n" })];
    for (const root of [before, after]) await symlink("../common.yaml", join(root, "charts/web/env/values-production.yaml.link"));
    const helm = production.helm ?? { values: [], set: {}, includeCRDs: true, apiVersions: [] };
    const linked = { ...production, helm: { ...helm, values: ["env/values-production.yaml.link"] } };
    expect((await environmentInputs(after, linked)).digest).not.toBe((await environmentInputs(before, linked)).digest);
    expect((await environmentInputs(after, staging)).digest).toBe((await environmentInputs(before, staging)).digest);
  });

  it("read a chart whose environment says `render: helm` the same way", async () => {
    const explicit = { ...production, render: "helm" as const };
    const [before, after] = [
      await checkout(undefined, chart),
      await checkout(undefined, { ...chart, "charts/web/values-staging.yaml": "replicas: 3\n" }),
    ];
    expect((await environmentInputs(after, explicit)).digest).toBe((await environmentInputs(before, explicit)).digest);
  });
});

describe("the inputs of a chart whose templates directory is a link into a shared directory", () => {
  it("keep the shared templates and every file of the chart", async () => {
    const shared: Record<string, string> = { ...chart, "shared/templates/deployment.yaml": "kind: Deployment\n" };
    delete shared["charts/web/templates/deployment.yaml"];
    const [before, after] = [
      await checkout(undefined, shared),
      await checkout(undefined, { ...shared, "shared/templates/deployment.yaml": "kind: Deployment\nspec: {}\n" }),
    ];
    for (const root of [before, after]) await symlink("../../shared/templates", join(root, "charts/web/templates"));
    expect((await environmentInputs(after, staging)).digest).not.toBe((await environmentInputs(before, staging)).digest);
    expect((await environmentInputs(before, staging)).files).toContain("shared/templates/deployment.yaml");
  });
});
