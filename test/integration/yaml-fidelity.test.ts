import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";
import { parseJson } from "../../src/core/json.ts";
import { parseManifests } from "../../src/core/manifest.ts";
import { objectsDigest } from "../../src/core/agent-protocol.ts";
import { diffResources } from "../../src/core/diff.ts";
import { canonicalJson } from "../../src/core/normalize.ts";
import { buildResourceSet } from "../../src/core/resource-set.ts";
import { generateSigningKeys, open, privateKeyFromPem, publicKeyFromPem, seal } from "../../src/core/signing.ts";
import { removeCheckouts, tempDir } from "../helpers/checkouts.ts";

const run = promisify(execFile);
afterAll(removeCheckouts);

/** Scalars whose meaning depends on the YAML version, each in a field of its own. */
const SCALARS = [
  "0755",
  "0644",
  "0o755",
  "0x1F",
  "0b101",
  "1_000",
  "1_000.5",
  "012",
  "08",
  "+12",
  "-0755",
  "yes",
  "Yes",
  "YES",
  "no",
  "No",
  "on",
  "On",
  "off",
  "OFF",
  "y",
  "Y",
  "n",
  "N",
  "true",
  "False",
  "1:20",
  "190:20:30",
  "2024-01-01",
  "2001-12-14t21:59:43.10-05:00",
  "~",
  "null",
  "Null",
  "12345678901234567890",
  "9007199254740993",
  "-9223372036854775808",
  "3.14",
  "1e3",
  ".5",
  "0.",
  "'0755'",
  '"yes"',
];

function manifest(): string {
  const fields = SCALARS.map((value, i) => `  f${String(i).padStart(2, "0")}: ${value}`).join("\n");
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: scalars\n  namespace: default\nspec:\n${fields}\n  list: [yes, no, 0755, on]\n  on: key-named-on\n`;
}

describe("YAML as kubectl reads it", () => {
  it("reads every scalar of the table the way `kubectl create --dry-run=client -o json` does", async () => {
    const dir = await tempDir();
    const file = join(dir, "scalars.yaml");
    await writeFile(file, manifest());
    const { stdout } = await run("kubectl", [
      "--kubeconfig",
      inject("kubeconfigPath"),
      "create",
      "--dry-run=client",
      "--validate=false",
      "-o",
      "json",
      "-f",
      file,
    ]);
    // Read exactly: kubectl writes 64-bit integers in full.
    const kubectl = (parseJson(stdout) as { spec: Record<string, unknown> }).spec;
    const parsed = parseManifests(manifest(), { file: "scalars.yaml" });
    expect(parsed.problems).toEqual([]);
    const [ours] = parsed.objects;
    const spec = ours?.object.spec as Record<string, unknown>;
    const mismatches = Object.keys(kubectl)
      .filter((key) => canonicalJson({ v: kubectl[key] }) !== canonicalJson({ v: spec[key] }))
      .map(
        (key) =>
          `${key} (${SCALARS[Number(key.slice(1))] ?? key}): kubectl ${JSON.stringify(kubectl[key])}, sluice ${canonicalJson({ v: spec[key] })}`,
      );
    expect(mismatches).toEqual([]);
    expect(Object.keys(spec).sort()).toEqual(Object.keys(kubectl).sort());
  });

  it("reads podinfo's cronjob volume modes as the octal numbers the API server expects", () => {
    const cronjob =
      'apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: backup\nspec:\n  schedule: "*/5 * * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: backup\n              image: ghcr.io/stefanprodan/podinfo:6.9.2\n          volumes:\n            - name: scripts\n              configMap:\n                name: backup-scripts\n                defaultMode: 0755\n            - name: data\n              secret:\n                secretName: data\n                defaultMode: 0644\n';
    const [object] = parseManifests(cronjob, { file: "deploy/bases/database/cronjob-backup.yaml" }).objects;
    const volumes = (
      object?.object as {
        spec: {
          jobTemplate: {
            spec: { template: { spec: { volumes: { configMap?: { defaultMode: number }; secret?: { defaultMode: number } }[] } } };
          };
        };
      }
    ).spec.jobTemplate.spec.template.spec.volumes;
    expect(volumes.map((v) => v.configMap?.defaultMode ?? v.secret?.defaultMode)).toEqual([493, 420]);
  });

  it("keeps 64-bit integers beyond 2^53 exact through normalization, the diff, the signed job and its digest", () => {
    const text = (value: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\nspec:\n  max: 9223372036854775807\n  exact: ${value}\n`;
    const base = buildResourceSet(parseManifests(text("9007199254740993"), { file: "big.yaml" }).objects, "default").resources;
    const head = buildResourceSet(parseManifests(text("9007199254740995"), { file: "big.yaml" }).objects, "default").resources;
    const [resource] = head.values();
    expect(resource?.json).toContain('"max":9223372036854775807');
    const [change] = diffResources(base, head);
    expect(change?.diff).toContain("-  exact: 9007199254740993\n+  exact: 9007199254740995");
    // The app signs objects parsed back from JSON; the agent reads the signed body the same way.
    const objects = [parseJson(resource?.json ?? "") as Record<string, unknown>];
    const keys = generateSigningKeys();
    const opened = open("job", seal("job", { objects }, privateKeyFromPem(keys.privateKey)), publicKeyFromPem(keys.publicKey)) as {
      objects: Record<string, unknown>[];
    };
    expect(JSON.stringify(opened.objects)).toContain("9223372036854775807");
    expect(objectsDigest(opened.objects)).toBe(objectsDigest(objects));
    expect(objectsDigest(opened.objects)).not.toBe(
      objectsDigest([parseJson((resource?.json ?? "").replace("9223372036854775807", "9223372036854775806")) as Record<string, unknown>]),
    );
  });
});
