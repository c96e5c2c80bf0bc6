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
      clusters: [],
      waves: [],
      freeze: [],
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

describe("freeze windows in the configuration", () => {
  const config = (freeze: string) =>
    ["version: 1", "environments:", "  - name: production", "    freeze:", freeze, "  - name: staging"].join("\n") + "\n";

  it("reads one-off and recurring windows, with their zones", () => {
    const parsed = parseConfig(
      config(
        [
          "      - from: 2026-12-24T18:00",
          "        until: 2027-01-04T09:00",
          "        timezone: Europe/Berlin",
          "        reason: Holidays",
          "      - schedule: 0 18 * * FRI",
          "        duration: 2d15h",
          "        reason: Weekend",
        ].join("\n"),
      ),
    );
    expect(parsed.environments[0]?.freeze).toMatchObject([
      { kind: "once", from: Date.parse("2026-12-24T17:00:00Z"), until: Date.parse("2027-01-04T08:00:00Z"), timezone: "Europe/Berlin" },
      { kind: "recurring", duration: 63 * 3_600_000, timezone: "UTC", reason: "Weekend" },
    ]);
    expect(parsed.environments[1]?.freeze).toEqual([]);
  });

  it("names the line of an `until` that is not after `from`", () => {
    const text = config(
      [
        "      - from: 2026-12-24T18:00",
        "        until: 2026-12-24T09:00",
        "        timezone: Europe/Berlin",
        "        reason: Holidays",
      ].join("\n"),
    );
    expect(errorsOf(text)).toEqual([
      {
        line: 6,
        field: "environments[0].freeze[0].until",
        message:
          '.github/sluice.yml:6: environments[0].freeze[0].until: must be after from (2026-12-24T18:00 Europe/Berlin), not "2026-12-24T09:00"',
      },
    ]);
  });

  it("names the line of an unknown time zone, of a bad schedule and of a stray field", () => {
    const text = config(
      [
        "      - from: 2026-12-24T18:00",
        "        until: 2027-01-04T09:00",
        "        timezone: Europe/Berln",
        "        reason: Holidays",
        "      - schedule: 0 18 * * FRY",
        "        duration: 1d",
        "        reason: Weekend",
        "        timzone: UTC",
      ].join("\n"),
    );
    expect(errorsOf(text)).toEqual([
      {
        line: 7,
        field: "environments[0].freeze[0].timezone",
        message:
          '.github/sluice.yml:7: environments[0].freeze[0].timezone: is not a time zone: "Europe/Berln"; use an IANA name such as Europe/Berlin, America/New_York or UTC',
      },
      {
        line: 9,
        field: "environments[0].freeze[1].schedule",
        message:
          '.github/sluice.yml:9: environments[0].freeze[1].schedule: day-of-week "FRY" is not a number 0-7 or a name SUN-SAT in "0 18 * * FRY"',
      },
      {
        line: 12,
        field: "environments[0].freeze[1].timzone",
        message: '.github/sluice.yml:12: environments[0].freeze[1].timzone: unknown field "timzone"',
      },
    ]);
  });
});

describe("promotion in the configuration", () => {
  /** A configuration of these environments, each `name` or `[name, its other lines]`, one field a line. */
  const config = (...environments: (string | [string, string[]])[]) =>
    [
      "version: 1",
      "environments:",
      ...environments.flatMap((env) => {
        const [name, lines] = typeof env === "string" ? [env, []] : env;
        return [`  - name: ${name}`, ...lines.map((line) => `    ${line}`)];
      }),
    ].join("\n") + "\n";
  const after = (upstream: string, soak?: string): string[] => [
    "promotion:",
    `  after: ${upstream}`,
    ...(soak === undefined ? [] : [`  soak: ${soak}`]),
  ];
  /** The error `validateConfig` gives for `field` of environment `index` at `line`. */
  const issue = (line: number, index: number, field: "after" | "soak", message: string) => {
    const path = `environments[${index}].promotion.${field}`;
    return { line, field: path, message: `.github/sluice.yml:${line}: ${path}: ${message}` };
  };

  it("reads a chain of promotions, with the soak in milliseconds and 0 when not given", () => {
    const parsed = parseConfig(config("dev", ["staging", after("dev")], ["production", after("staging", "1h30m")]));
    expect(parsed.environments.map((e) => e.promotion)).toEqual([
      undefined,
      { after: "dev", soak: 0 },
      { after: "staging", soak: 5_400_000 },
    ]);
  });

  it("names the line of an unknown `after`, and of the environment itself", () => {
    expect(errorsOf(config("staging", ["production", after("stagin")]))).toEqual([
      issue(6, 1, "after", 'names environment "stagin", which is not in this configuration'),
    ]);
    expect(errorsOf(config("staging", ["production", after("production")]))).toEqual([
      issue(6, 1, "after", "names the environment itself"),
    ]);
  });

  it("names the line of an `after` on another branch", () => {
    expect(errorsOf(config(["staging", ["branch: develop"]], ["production", after("staging")]))).toEqual([
      issue(7, 1, "after", 'names "staging", which tracks branch develop; an environment promotes from one on its own branch (main)'),
    ]);
  });

  it("names a cycle of three environments in order, at each one's line", () => {
    const text = config(["dev", after("production")], ["staging", after("dev")], ["production", after("staging")]);
    expect(errorsOf(text)).toEqual([
      issue(5, 0, "after", "makes a cycle of promotions: dev → production → staging → dev"),
      issue(8, 1, "after", "makes a cycle of promotions: staging → dev → production → staging"),
      issue(11, 2, "after", "makes a cycle of promotions: production → staging → dev → production"),
    ]);
  });

  it("does not call an environment downstream of a cycle part of it", () => {
    const text = config(["dev", after("staging")], ["staging", after("dev")], ["production", after("staging")]);
    expect(errorsOf(text).map((e) => e.field)).toEqual(["environments[0].promotion.after", "environments[1].promotion.after"]);
  });

  it("names the line of a soak that is not a duration", () => {
    const text = config(
      "staging",
      ["production", after("staging", "15")],
      ["canary", after("staging", "soon")],
      ["eu", after("staging", "0m")],
    );
    expect(errorsOf(text)).toEqual([
      issue(7, 1, "soak", "must be a duration such as 15m, 2h or 1h30m, not the number 15 (a number needs a unit: 15m)"),
      issue(11, 2, "soak", 'must be a duration such as 15m, 2h or 1h30m, not "soon"'),
      issue(15, 3, "soak", 'must be longer than 0, not "0m"'),
    ]);
  });
});
