import { mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig, type Environment } from "../../../src/core/config.ts";
import { PathMemo, resolveInside, SYSTEM_PATHS, type PathReads } from "../../../src/render/files.ts";
import { CheckoutReads, environmentInputs } from "../../../src/render/inputs.ts";
import { readKustomizations } from "../../../src/render/kustomizations.ts";
import { checkout, removeCheckouts } from "../../helpers/checkouts.ts";

afterAll(removeCheckouts);

const config = parseConfig(`version: 1
environments:
  - name: staging
    path: deploy/overlays/staging
  - name: production
    path: deploy/overlays/production
    watch: [shared]
`);
const [staging, production] = config.environments;
if (!staging || !production) throw new Error("fixture config");

describe("environmentInputs", () => {
  it("follows kustomize bases, so a base change touches every overlay", async () => {
    const before = await checkout("kustomize-app");
    const after = await checkout("kustomize-app", {
      "deploy/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
    });
    const inputs = await environmentInputs(before, staging);
    expect(inputs.files).toEqual([
      "deploy/base/deployment.yaml",
      "deploy/base/kustomization.yaml",
      "deploy/base/service.yaml",
      "deploy/overlays/staging/kustomization.yaml",
    ]);
    expect((await environmentInputs(after, staging)).digest).not.toBe(inputs.digest);
    expect((await environmentInputs(after, production)).digest).not.toBe((await environmentInputs(before, production)).digest);
  });

  it("is unchanged by files the environment does not read, and changed by watched ones", async () => {
    const before = await checkout("kustomize-app");
    const elsewhere = await checkout("kustomize-app", { "deploy/overlays/production/replicas.yaml": "x: 1\n", "README.md": "hi\n" });
    expect((await environmentInputs(elsewhere, staging)).digest).toBe((await environmentInputs(before, staging)).digest);
    const watched = await checkout("kustomize-app", { "shared/values.txt": "x\n" });
    expect((await environmentInputs(watched, production)).digest).not.toBe((await environmentInputs(before, production)).digest);
  });

  it("skips remote bases and inline patches and survives an unparseable kustomization", async () => {
    const root = await checkout(undefined, {
      "k/kustomization.yaml":
        "resources:\n  - https://github.com/x/y//z?ref=v1\n  - ../outside-of-nothing\npatches:\n  - patch: |-\n      - op: add\n",
      "broken/kustomization.yaml": "resources: [\n",
    });
    expect((await environmentInputs(root, { ...staging, path: "k" })).files).toEqual(["k/kustomization.yaml"]);
    expect((await environmentInputs(root, { ...staging, path: "broken" })).files).toEqual(["broken/kustomization.yaml"]);
  });

  it("reads a base, a chart and their files once for all the environments of a checkout that share them, with the same digests", async () => {
    const files: Record<string, string> = {
      "base/kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
      "base/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
      "base/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
      "chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
      "chart/.helmignore": "values-*.yaml\n",
      "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n",
    };
    const environments: Environment[] = [];
    for (let i = 0; i < 40; i += 1) {
      files[`overlays/o${i}/kustomization.yaml`] = `resources: [../../base]\nnamePrefix: o${i}-\n`;
      files[`chart/values-r${i}.yaml`] = `name: r${i}\n`;
      environments.push({ ...staging, name: `o${i}`, path: `overlays/o${i}` });
      environments.push({
        ...staging,
        name: `r${i}`,
        path: "chart",
        render: "helm" as const,
        helm: { values: [`values-r${i}.yaml`], set: {}, includeCRDs: false, apiVersions: [] },
      });
    }
    const root = await checkout(undefined, files);
    const reads = new CheckoutReads();
    const shared = await Promise.all(environments.map((env) => environmentInputs(root, env, reads)));
    const alone = await Promise.all(environments.map((env) => environmentInputs(root, env)));
    expect(shared.map((inputs) => inputs.digest)).toEqual(alone.map((inputs) => inputs.digest));
    expect(shared.map((inputs) => inputs.files)).toEqual(alone.map((inputs) => inputs.files));
    // 40 overlay directories, the base, the chart and its templates; every file digested once.
    expect(reads.counts.directories).toBe(43);
    expect(reads.counts.files).toBe(Object.keys(files).length);
  });

  it("reads each directory once however the kustomizations nest and refer to their parents", async () => {
    // 60 nested kustomizations, each naming the next one down and the one above it, and 200 files at the bottom.
    const files: Record<string, string> = {};
    let dir = "k";
    for (let level = 0; level < 60; level += 1) {
      files[`${dir}/kustomization.yaml`] = `resources:\n  - a\n${level > 0 ? "  - ..\n" : ""}`;
      dir = `${dir}/a`;
    }
    for (let i = 0; i < 200; i += 1) files[`${dir}/f${i}.yaml`] = "kind: ConfigMap\n";
    const root = await checkout(undefined, files);
    const inputs = await environmentInputs(root, { ...staging, path: "k/a/a/a" });
    // Read from the environment down, then each parent once: 61 directories in all, not one walk per kustomization.
    expect(inputs.directoriesRead).toBe(61);
    expect(inputs.files).toHaveLength(260);
  });
});

describe("PathMemo", () => {
  it("resolves every path as the system does, links out and loops included, asking the system once per path", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 30; i += 1) files[`deep/er/still/f${i}.yaml`] = "a: 1\n";
    const root = await checkout(undefined, files);
    await symlink("f0.yaml", join(root, "deep/er/still/inside.yaml"));
    await symlink("../../..", join(root, "deep/er/up"));
    await symlink("up/../../etc/passwd", join(root, "deep/er/leak"));
    await symlink("loop-b", join(root, "deep/loop-a"));
    await symlink("loop-a", join(root, "deep/loop-b"));
    await mkdir(join(root, "deep/er/still/empty"));
    const paths = [
      ...Object.keys(files),
      "deep/er/still/inside.yaml",
      "deep/er/leak",
      "deep/loop-a",
      "deep/er/still/empty",
      "deep/er/still/missing.yaml",
    ];
    const counter = (asked: string[]): PathReads => ({
      lstat: (path) => (asked.push(`lstat ${path}`), SYSTEM_PATHS.lstat(path)),
      readlink: (path) => (asked.push(`readlink ${path}`), SYSTEM_PATHS.readlink(path)),
      realpath: (path) => (asked.push(`realpath ${path}`), SYSTEM_PATHS.realpath(path)),
    });
    const settle = (promise: Promise<unknown>) =>
      promise.then(
        (value) => value,
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
    const once: string[] = [];
    const every: string[] = [];
    const memo = new PathMemo(counter(once));
    const remembered = await Promise.all(paths.map((path) => settle(resolveInside(root, path, memo))));
    const direct = await Promise.all(paths.map((path) => settle(resolveInside(root, path, counter(every)))));
    expect(remembered).toEqual(direct);
    expect(direct).toContain("deep/er/leak resolves outside the checkout");
    expect(direct).toContain("deep/loop-a is a loop of symbolic links");
    expect(direct).toContainEqual({ absolute: join(root, "deep/er/still/f0.yaml"), kind: "file", size: 5 });
    // Each path on the way asked once for all 35 paths: the root, three directories, 33 entries and the links' targets.
    expect(new Set(once).size).toBe(once.length);
    expect(every.filter((asked) => asked.endsWith("/deep")).length).toBeGreaterThan(30);
    expect(once.length).toBeLessThan(every.length / 3);
  });

  it('refuses a reference whose path cannot be followed (an I/O error, not "missing"), and does not keep the failure', async () => {
    const root = await checkout(undefined, {
      "env/kustomization.yaml": "resources:\n  - shared/cm.yaml\n",
      "elsewhere/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    });
    await symlink("../elsewhere", join(root, "env/shared"));
    let failures = 1;
    const flaky: PathReads = {
      ...SYSTEM_PATHS,
      lstat: (path) =>
        path.endsWith("/env/shared") && failures-- > 0
          ? Promise.reject(Object.assign(new Error("EIO: i/o error, lstat"), { code: "EIO" }))
          : SYSTEM_PATHS.lstat(path),
    };
    const memo = new PathMemo(flaky);
    const first = await readKustomizations(root, join(root, "env"), memo);
    expect(first.outside).toEqual([{ file: "env/kustomization.yaml", line: 2, ref: "shared/cm.yaml" }]);
    const again = await readKustomizations(root, join(root, "env"), memo);
    expect(again.outside).toEqual([]);
    await expect(
      resolveInside(
        root,
        "env/shared/cm.yaml",
        new PathMemo({ ...flaky, lstat: () => Promise.reject(Object.assign(new Error("EIO"), { code: "EIO" })) }),
      ),
    ).rejects.toThrow("env/shared/cm.yaml cannot be followed: EIO");
  });

  it("takes only a path that cannot exist as nothing there", async () => {
    const root = await checkout(undefined, { "a.yaml": "a: 1\n" });
    expect(await SYSTEM_PATHS.lstat(join(root, "missing"))).toBeUndefined();
    expect(await SYSTEM_PATHS.lstat(join(root, "a.yaml", "under-a-file"))).toBeUndefined();
    expect(await SYSTEM_PATHS.lstat(join(root, "x".repeat(300)))).toBeUndefined();
  });
});
