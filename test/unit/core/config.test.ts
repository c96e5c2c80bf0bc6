import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CONFIG_DEFAULTS, defaultConfig, ENVIRONMENT_DEFAULTS } from "../../../src/core/config-defaults.ts";
import {
  ConfigError,
  configJsonSchema,
  configReference,
  configSchema,
  parseConfig,
  REFERENCE_MARKERS,
  validateConfig,
} from "../../../src/core/config.ts";

function errorsOf(text: string): { line: number; field: string; message: string }[] {
  const result = validateConfig(text);
  if (result.ok) throw new Error("expected the configuration to be invalid");
  return result.errors.map((e) => ({ line: e.line, field: e.field, message: e.message }));
}

describe("parseConfig", () => {
  it("reports an alias that points nowhere, or too many aliases, as a configuration error at its line", () => {
    expect(validateConfig("*!")).toEqual({ ok: false, errors: [expect.objectContaining({ line: 1 }) as unknown] });
    expect(() => parseConfig("version: 1\nenvironments: *missing\n")).toThrow(
      ".github/sluice.yml:2: invalid YAML: Unresolved alias (the anchor must be set before the alias): missing",
    );
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      ...Array.from(
        { length: 8 },
        (_, i) =>
          `${"bcdefghi"[i]}: &${"bcdefghi"[i]} [${Array(10)
            .fill(`*${i === 0 ? "a" : "bcdefghi"[i - 1]}`)
            .join(", ")}]`,
      ),
    ].join("\n");
    const result = validateConfig(bomb);
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.errors[0]?.message).toMatch(/^\.github\/sluice\.yml:\d+: invalid YAML: .*alias/i);
  });

  it("fills defaults for a minimal environment", () => {
    const config = parseConfig("version: 1\nenvironments:\n  - name: production\n    path: deploy/prod\n");
    expect(config.environments[0]).toEqual({
      name: "production",
      path: "deploy/prod",
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
    });
    expect(config.commands.permission).toBe("write");
    expect(config.previews.drafts).toBe(true);
  });

  it("reads helm settings", () => {
    const config = parseConfig(`version: 1
environments:
  - name: production
    path: charts/web
    render: helm
    helm: { releaseName: web, values: [values-prod.yaml] }
`);
    expect(config.environments[0]?.helm).toEqual({
      releaseName: "web",
      values: ["values-prod.yaml"],
      set: {},
      includeCRDs: true,
      apiVersions: [],
    });
  });

  it("names the file, line and field of a bad environment name", () => {
    const text = "version: 1\nenvironments:\n  - name: Production\n    path: x\n";
    expect(() => parseConfig(text)).toThrow(ConfigError);
    expect(() => parseConfig(text)).toThrow(".github/sluice.yml:3: environments[0].name: must be lowercase letters, digits and '-'");
  });

  it("rejects duplicate environment names at the second one", () => {
    expect(errorsOf("version: 1\nenvironments:\n  - name: prod\n  - name: prod\n")).toEqual([
      { line: 4, field: "environments[1].name", message: expect.stringContaining('duplicates environments[0].name "prod"') as string },
    ]);
  });

  it("rejects unknown fields at their line", () => {
    expect(errorsOf("version: 1\nenvironments:\n  - name: prod\n    namespce: x\n")).toEqual([
      { line: 4, field: "environments[0].namespce", message: expect.stringContaining('unknown field "namespce"') as string },
    ]);
  });

  it("rejects a render mode that does not exist", () => {
    const [error] = errorsOf("version: 1\nenvironments:\n  - name: prod\n    render: jsonnet\n");
    expect(error).toMatchObject({ line: 4, field: "environments[0].render" });
    expect(error?.message).toContain('must be one of "auto", "plain", "kustomize", "helm"');
  });

  it("rejects paths that leave the repository", () => {
    expect(errorsOf("version: 1\nenvironments:\n  - name: prod\n    path: ../secrets\n")[0]).toMatchObject({
      line: 4,
      field: "environments[0].path",
    });
    expect(errorsOf("version: 1\nenvironments:\n  - name: prod\n    path: /etc\n")[0]?.message).toContain("inside the repository");
  });

  it("rejects a missing version and a wrong one", () => {
    expect(errorsOf("environments:\n  - name: prod\n")[0]).toMatchObject({ line: 1, field: "version" });
    expect(errorsOf("version: 2\nenvironments:\n  - name: prod\n")[0]).toMatchObject({ line: 1, field: "version" });
  });

  it("rejects an empty environment list and an empty file", () => {
    expect(errorsOf("version: 1\nenvironments: []\n")[0]).toMatchObject({ line: 2, field: "environments" });
    expect(errorsOf("# nothing\n")[0]?.message).toContain("is empty");
  });

  it("reports invalid YAML with its line and without echoing the source", () => {
    const [error] = errorsOf("version: 1\nenvironments:\n  - name: prod\n   path: [unclosed\n");
    expect(error?.line).toBeGreaterThanOrEqual(3);
    expect(error?.message).toMatch(/^\.github\/sluice\.yml:\d+: invalid YAML: /);
    expect(error?.message).not.toContain("unclosed");
  });

  it("uses the file name it is given", () => {
    expect(() => parseConfig("version: 3\nenvironments: []\n", "custom.yml")).toThrow(/^custom\.yml:1: version/);
  });

  it("has a default of one environment over the whole checkout", () => {
    expect(defaultConfig().environments).toMatchObject([{ name: "default", path: ".", namespace: "default", render: "auto" }]);
  });

  it("keeps the defaults used without a configuration file equal to the schema's", () => {
    const parsed = configSchema.parse({ version: 1, environments: [{ name: "x" }] });
    const {
      environments: [environment],
      ...rest
    } = parsed;
    expect({ ...ENVIRONMENT_DEFAULTS, name: "x" }).toEqual(environment);
    expect(CONFIG_DEFAULTS).toEqual(rest);
    expect(configSchema.parse(defaultConfig())).toEqual(defaultConfig());
  });
});

describe("configJsonSchema", () => {
  it("matches the committed schema/sluice.schema.json (run `npm run schema` after changing the schema)", async () => {
    const committed: unknown = JSON.parse(await readFile(new URL("../../../schema/sluice.schema.json", import.meta.url), "utf8"));
    expect(committed).toEqual(configJsonSchema());
  });

  it("describes the environment fields", () => {
    const schema = JSON.stringify(configJsonSchema());
    for (const field of ["environments", "namespace", "render", "releaseName", "autoDeploy"]) expect(schema).toContain(`"${field}"`);
  });

  it("is the configuration reference in README.md (run `npm run schema` after changing the schema)", async () => {
    const readme = await readFile(new URL("../../../README.md", import.meta.url), "utf8");
    const section = readme.slice(
      readme.indexOf(REFERENCE_MARKERS.start) + REFERENCE_MARKERS.start.length,
      readme.indexOf(REFERENCE_MARKERS.end),
    );
    expect(section.trim()).toBe(configReference());
    // Every field is a row, nested ones by path.
    expect(configReference()).toContain("| `environments[].drift.ignore[].jsonPointers` | `[]` |");
    expect(configReference()).toContain("| `environments[].name` | required |");
  });
});
