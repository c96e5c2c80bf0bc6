import fc from "fast-check";
import { stringify } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { parseCommand } from "../../src/core/commands.ts";
import { parseConfig, validateConfig } from "../../src/core/config.ts";
import { diffResources } from "../../src/core/diff.ts";
import { statedId } from "../../src/core/identity.ts";
import type { KubeObject, ManifestObject } from "../../src/core/manifest.ts";
import { normalize } from "../../src/core/normalize.ts";
import { buildResourceSet } from "../../src/core/resource-set.ts";
import { generateSigningKeys, open, privateKeyFromPem, publicKeyFromPem, seal, SignatureError } from "../../src/core/signing.ts";

// Properties of the pure core, each over many generated cases; the total is printed and must
// reach 100,000.

const counted: Record<string, number> = {};
/** Checks `property` over `runs` cases and counts them. */
function check<Ts extends [unknown, ...unknown[]]>(name: string, runs: number, property: fc.IProperty<Ts>): void {
  counted[name] = runs;
  fc.assert(property, { numRuns: runs });
}

afterAll(() => {
  const total = Object.values(counted).reduce((a, b) => a + b, 0);
  for (const [name, runs] of Object.entries(counted)) console.log(`property ${name}: ${runs.toLocaleString("en")} cases`);
  console.log(`properties: ${total.toLocaleString("en")} cases in all`);
  expect(total).toBeGreaterThanOrEqual(100_000);
});

const dns = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
const text = fc.string({ unit: "binary", maxLength: 40 });
const labels = fc.dictionary(fc.stringMatching(/^[a-z]([-a-z0-9.]{0,10}[a-z0-9])?$/), text, { maxKeys: 4 });

/** Objects as manifests carry them: core and grouped kinds, namespaced or not, with arbitrary data. */
const kubeObject: fc.Arbitrary<KubeObject> = fc.record({
  apiVersion: fc.constantFrom("v1", "apps/v1", "batch/v1", "example.com/v1alpha1"),
  kind: fc.constantFrom("ConfigMap", "Deployment", "Job", "Widget", "Service"),
  metadata: fc.record(
    {
      name: dns,
      namespace: dns,
      labels,
      annotations: labels,
      resourceVersion: fc.nat().map(String),
      uid: fc.uuid(),
    },
    { requiredKeys: ["name"] },
  ),
  data: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
  spec: fc.jsonValue({ maxDepth: 3 }),
  status: fc.jsonValue({ maxDepth: 1 }),
});

const manifests = (objects: readonly KubeObject[]): ManifestObject[] =>
  objects.map((object, index) => ({ object, source: { file: "m.yaml", line: index + 1 } }));

describe("properties", { timeout: 600_000 }, () => {
  it("configuration: valid configurations read back as written, and any text gives a result, never an exception", () => {
    const environment = fc.record({
      name: dns,
      path: fc.stringMatching(/^[a-z0-9][a-z0-9/_-]{0,20}$/).filter((p) => !p.includes("//") && !p.endsWith("/")),
      namespace: dns,
      branch: fc.stringMatching(/^[a-z][a-z0-9/-]{0,15}$/),
      prune: fc.boolean(),
      autoDeploy: fc.boolean(),
      selfHeal: fc.boolean(),
    });
    check(
      "configuration round trip",
      10_000,
      fc.property(
        fc.uniqueArray(environment, { minLength: 1, maxLength: 4, selector: (e) => e.name }),
        fc.boolean(),
        (environments, drafts) => {
          const config = parseConfig(stringify({ version: 1, environments, previews: { drafts } }));
          expect(config.environments.map((e) => ({ ...e }))).toEqual(environments.map((e) => expect.objectContaining(e) as unknown));
          expect(config.previews.drafts).toBe(drafts);
        },
      ),
    );
    check(
      "configuration of any text",
      15_000,
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => stringify(v)),
        ),
        (source) => {
          const result = validateConfig(source);
          if (!result.ok) for (const error of result.errors) expect(error.line).toBeGreaterThanOrEqual(1);
        },
      ),
    );
  });

  it("commands: any comment parses without an exception, and a command names exactly the environments it lists", () => {
    const environments = ["production", "staging", "dev"];
    check(
      "commands of any text",
      15_000,
      fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), (body) => {
        const first = parseCommand(body, environments);
        expect(parseCommand(body, environments)).toEqual(first);
        if (first && first.kind !== "invalid" && "environments" in first)
          for (const env of first.environments) expect(environments).toContain(env);
      }),
    );
    check(
      "commands as written",
      10_000,
      fc.property(
        fc.constantFrom("sync", "rollback"),
        fc.subarray(environments),
        fc.constantFrom(" ", "  ", "\t"),
        fc.boolean(),
        (name, named, space, prefixed) => {
          const command = parseCommand(
            `${prefixed ? "/sluice " : "/"}${name}${named.map((e) => space + e).join("")}\nmore text`,
            environments,
          );
          expect(command).toEqual({
            kind: name,
            environments: named.length > 0 ? named : environments,
            named: named.length > 0,
          });
        },
      ),
    );
  });

  it("normalization is idempotent, and diffing a set against itself changes nothing", () => {
    check(
      "normalization idempotence",
      10_000,
      fc.property(kubeObject, (object) => {
        const namespace = (object.metadata as { namespace?: string } | undefined)?.namespace ?? "default";
        const id = { ...statedId(object), namespace };
        const once = normalize(object, id);
        expect(normalize(once, id)).toEqual(once);
      }),
    );
    check(
      "diff of a set with itself",
      10_000,
      fc.property(fc.array(kubeObject, { maxLength: 6 }), (objects) => {
        const { resources } = buildResourceSet(manifests(objects), "default");
        const again = buildResourceSet(manifests(structuredClone(objects)), "default").resources;
        for (const change of diffResources(resources, again)) expect([change.action, change.diff]).toEqual(["unchanged", ""]);
      }),
    );
  });

  it("masking never lets a Secret value through, in data or stringData, encoded or not", () => {
    const value = fc.string({ minLength: 4, maxLength: 24 }).map((v) => `sv-${v}`);
    const secret = (data: Record<string, string>, stringData: Record<string, string>): KubeObject => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "creds", namespace: "app" },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
      stringData,
    });
    const values = fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,10}$/), value, { maxKeys: 4 });
    check(
      "masking",
      20_000,
      fc.property(values, values, values, values, (baseData, baseString, headData, headString) => {
        const base = buildResourceSet(manifests([secret(baseData, baseString)]), "app").resources;
        const head = buildResourceSet(manifests([secret(headData, headString)]), "app").resources;
        const shown = JSON.stringify(diffResources(base, head));
        for (const v of [baseData, baseString, headData, headString].flatMap((d) => Object.values(d))) {
          expect(shown).not.toContain(v);
          expect(shown).not.toContain(Buffer.from(v).toString("base64"));
        }
      }),
    );
  });

  it("signing round-trips every payload and rejects every single-byte change", () => {
    const keys = generateSigningKeys();
    const privateKey = privateKeyFromPem(keys.privateKey);
    const publicKey = publicKeyFromPem(keys.publicKey);
    check(
      "signing round trip",
      10_000,
      fc.property(fc.json({ maxDepth: 3 }), (json) => {
        // Integers beyond 2^53 come back exact (as raw JSON), so the bytes are compared.
        const payload: unknown = JSON.parse(json);
        expect(JSON.stringify(open("job", seal("job", payload, privateKey), publicKey))).toBe(JSON.stringify(payload));
      }),
    );
    // Every single-byte change of every field, all of them: the body, the signature and the kind.
    const envelope = seal("job", { id: "merge-1-production-abc", objects: [{ kind: "ConfigMap", data: { a: "1" } }] }, privateKey);
    let changes = 0;
    for (const field of ["body", "sig", "kind"] as const) {
      const original = Buffer.from(envelope[field], "latin1");
      for (let index = 0; index < original.length; index++)
        for (let delta = 1; delta < 256; delta++) {
          const bytes = Buffer.from(original);
          bytes[index] = ((bytes[index] ?? 0) + delta) % 256;
          const changed = { ...envelope, [field]: bytes.toString("latin1") };
          expect(() => open("job", changed, publicKey), `${field}[${index}] + ${delta}`).toThrow(SignatureError);
          changes++;
        }
    }
    counted["signing rejects single-byte changes"] = changes;
  });
});
