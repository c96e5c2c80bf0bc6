import { LineCounter, parseDocument, visit } from "yaml";
import { z } from "zod";
import { CONFIG_PATH } from "./config-path.ts";
import { SourceError } from "./errors.ts";
import { yamlErrorMessage } from "./errors.ts";
import { lineOfPath } from "./yaml-location.ts";
import { approvalSchema } from "./approval.ts";
import { durationSchema } from "./duration.ts";
import { freezeWindowSchema } from "./freeze.ts";
import { clusterPatternSchema, isGlob, matchesCluster, type FleetSettings } from "./fleet.ts";

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** One rule of differences that are not drift. */
export const driftIgnoreSchema = z.strictObject({
  kind: z.string().min(1).optional().describe("Only objects of this kind (all when absent)."),
  name: z.string().min(1).optional().describe("Only objects of this name (all when absent)."),
  namespace: z.string().min(1).optional().describe("Only objects in this namespace (all when absent)."),
  jsonPointers: z
    .array(z.string().regex(/^\//, "must be a JSON pointer, starting with /"))
    .default([])
    .describe("Fields that are not drift, as JSON pointers (/spec/replicas)."),
  managers: z
    .array(z.string().min(1))
    .default([])
    .describe("Fields these field managers own in the live object are not drift (an HPA's kube-controller-manager)."),
});
/** One rule of differences that are not drift. */
export type DriftIgnore = z.infer<typeof driftIgnoreSchema>;

/** A path inside the repository: relative, with no `..` segment. */
const repoPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
    error: "must be a path inside the repository (relative, without '..')",
  });

const helmSchema = z.strictObject({
  releaseName: z
    .string()
    .regex(dnsLabel, "must be a DNS label ([a-z0-9-], at most 53 characters)")
    .max(53)
    .optional()
    .describe("Release name passed to `helm template`; defaults to the environment name."),
  values: z.array(repoPath).default([]).describe("Values files, relative to the environment path, applied in order."),
  set: z.record(z.string(), z.string()).default({}).describe("Values set on the command line (`--set-string key=value`)."),
  includeCRDs: z.boolean().default(true).describe("Render the chart's crds/ directory too."),
  kubeVersion: z
    .string()
    .regex(/^v?\d+\.\d+(\.\d+)?$/, "must be a Kubernetes version such as 1.33 or v1.33.2")
    .optional()
    .describe("Kubernetes version the chart is rendered for (`--kube-version`); defaults to the one helm was built with."),
  apiVersions: z
    .array(z.string().min(1))
    .default([])
    .describe("Extra API versions the chart may assume the cluster serves (`--api-versions`), such as monitoring.coreos.com/v1."),
});

const environmentSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be lowercase letters, digits and '-'")
    .max(63)
    .describe("Unique environment name, also the GitHub Deployment environment."),
  path: repoPath.default(".").describe("Directory in the repository holding the environment's manifests."),
  namespace: z
    .string()
    .regex(dnsLabel, "must be a DNS label")
    .max(63)
    .default("default")
    .describe("Default namespace for namespaced objects that set none."),
  render: z
    .enum(["auto", "plain", "kustomize", "helm"])
    .default("auto")
    .describe("auto picks kustomize for kustomization.yaml, helm for Chart.yaml, plain otherwise."),
  branch: z.string().min(1).default("main").describe("Branch whose pushes deploy this environment."),
  watch: z.array(repoPath).default([]).describe("Extra paths whose changes affect this environment (shared bases, charts)."),
  ignore: z.array(repoPath).default([]).describe("Paths under `path` that plain rendering skips (relative to the repository)."),
  strict: z
    .boolean()
    .default(true)
    .describe("A file under `path` that is not a Kubernetes object is an error; false skips it, with one note."),
  helm: helmSchema.optional(),
  autoDeploy: z.boolean().default(true).describe("Deploy on every push to the tracked branch."),
  prune: z.boolean().default(true).describe("Delete objects that left the manifests."),
  allowEmpty: z.boolean().default(false).describe("Allow a deploy that would prune every object."),
  selfHeal: z.boolean().default(false).describe("Re-apply when the live cluster drifts."),
  production: z
    .boolean()
    .optional()
    .describe("GitHub's production_environment on this environment's Deployments; true by default for an environment named production."),
  transient: z
    .boolean()
    .default(false)
    .describe("GitHub's transient_environment: the environment is torn down and rebuilt (a preview or ephemeral cluster)."),
  drift: z
    .strictObject({
      ignore: z
        .array(driftIgnoreSchema)
        .default([])
        .describe(
          "Differences that are not drift, like Argo CD's ignoreDifferences: for the selected objects, these fields, or the fields these managers own.",
        ),
    })
    .default({ ignore: [] })
    .describe("How the agent tells drift from the live cluster's own changes."),
  promotion: z
    .strictObject({
      after: z.string().min(1).describe("The environment that must run a commit first (staging)."),
      soak: durationSchema
        .default(0)
        .describe(
          "How long the upstream environment must run the commit (or a later one) healthy and without drift (15m, 2h); without it, the commit is promoted once the upstream has deployed it healthy.",
        ),
    })
    .optional()
    .describe("Apply a commit only once the upstream environment has proven it; newer merges never restart a commit's soak."),
  clusters: z
    .array(clusterPatternSchema)
    .default([])
    .describe(
      "The clusters the environment runs on, by the name their agents give (SLUICE_AGENT_CLUSTER) or a glob of it ('eu-*', '*' for every agent that serves the environment). Empty: the environment has one cluster, whose agents name none.",
    ),
  waves: z
    .array(z.array(clusterPatternSchema).min(1, "must name at least one cluster"))
    .default([])
    .describe(
      "The order a deploy reaches the clusters in, one list of names or globs per wave ([[canary-eu], ['eu-*'], ['us-*', 'ap-*']]); a cluster goes in the first wave that matches it, those no wave matches in a last wave. A failure in a wave stops the later ones. Without clusters, the waves list them.",
    ),
  bake: durationSchema
    .optional()
    .describe("How long each wave must run healthy and without drift before the next starts (10m, 1h); none by default."),
  clusterTimeout: durationSchema
    .optional()
    .describe(
      "How long a wave waits for a cluster's agent to end its deploy before the wave is held and the check run names the cluster (15m by default).",
    ),
  approval: approvalSchema.optional(),
  freeze: z
    .array(freezeWindowSchema)
    .default([])
    .describe("Times when merges are previewed but not applied; they apply when the freeze ends (newest wins)."),
});

/** The schema of `.github/sluice.yml`. */
export const configSchema = z
  .strictObject({
    version: z.literal(1).describe("Schema version; always 1."),
    environments: z.array(environmentSchema).min(1, "must list at least one environment"),
    commands: z
      .strictObject({
        permission: z
          .enum(["read", "triage", "write", "maintain", "admin"])
          .default("write")
          .describe("Least repository permission needed for /sync and /rollback."),
      })
      .prefault({}),
    previews: z
      .strictObject({
        drafts: z.boolean().default(true).describe("Preview draft pull requests too."),
        liveTimeout: z
          .enum(["failure", "neutral"])
          .default("failure")
          .describe(
            "How sluice/preview concludes when an agent asked for a live dry-run does not answer in time (SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS): failure keeps a required check from passing on the rendered diff alone; neutral lets it pass. Read from the default branch.",
          ),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.environments.forEach((env, index) => {
      const first = seen.get(env.name);
      if (first === undefined) {
        seen.set(env.name, index);
      } else {
        ctx.addIssue({
          code: "custom",
          path: ["environments", index, "name"],
          message: `duplicates environments[${first}].name "${env.name}"; names must be unique`,
        });
      }
      for (const [wave, patterns] of env.waves.entries())
        for (const [position, pattern] of patterns.entries()) {
          if (env.clusters.length === 0 || isGlob(pattern) || env.clusters.some((c) => matchesCluster(c, pattern))) continue;
          ctx.addIssue({
            code: "custom",
            path: ["environments", index, "waves", wave, position],
            message: `names cluster ${pattern}, which clusters does not list or match`,
          });
        }
      for (const message of promotionIssues(config.environments, index))
        ctx.addIssue({ code: "custom", path: ["environments", index, "promotion", "after"], message });
      if (env.render === "helm" || env.helm !== undefined) {
        if (env.render !== "helm" && env.render !== "auto") {
          ctx.addIssue({
            code: "custom",
            path: ["environments", index, "helm"],
            message: `is only used with render: helm (render is ${env.render})`,
          });
        }
      }
    });
  });

/**
 * What is wrong with an environment's `promotion.after`: an environment that does not exist, the
 * environment itself, another branch's environment, or a cycle of promotions (named in order).
 */
function promotionIssues(
  environments: readonly { name: string; branch: string; promotion?: { after: string } | undefined }[],
  index: number,
): string[] {
  const env = environments[index];
  const after = env?.promotion?.after;
  if (!env || after === undefined) return [];
  const byName = new Map(environments.map((e) => [e.name, e]));
  const upstream = byName.get(after);
  if (!upstream) return [`names environment "${after}", which is not in this configuration`];
  if (after === env.name) return ["names the environment itself"];
  if (upstream.branch !== env.branch)
    return [`names "${after}", which tracks branch ${upstream.branch}; an environment promotes from one on its own branch (${env.branch})`];
  const chain = [env.name];
  for (let next: string | undefined = after; next !== undefined; next = byName.get(next)?.promotion?.after) {
    if (next === env.name) return [`makes a cycle of promotions: ${[...chain, env.name].join(" → ")}`];
    if (chain.includes(next)) return [];
    chain.push(next);
  }
  return [];
}

/** A validated configuration with defaults filled in. */
export type Config = z.output<typeof configSchema>;
/** One environment of a configuration. */
export type Environment = Config["environments"][number];
/** How sluice/preview concludes when a live answer it waits for does not come in time. */
export type LiveTimeoutConclusion = Config["previews"]["liveTimeout"];
/** How an environment's directory is turned into objects. */
export type RenderMode = Environment["render"];

/** An invalid configuration: names the file, line and field. */
export class ConfigError extends SourceError {
  /** The dotted path of the offending field, such as `environments[0].name`. */
  readonly field: string;

  constructor(file: string, line: number, field: string, message: string) {
    super({ file, line, message: field ? `${field}: ${message}` : message });
    this.name = "ConfigError";
    this.field = field;
  }
}

/**
 * Parses and validates a configuration file.
 * @param text the file's contents
 * @param file the file's name as it should appear in errors
 * @throws ConfigError naming the file, line and field of the first problem (all problems are in `errors`)
 */
export function parseConfig(text: string, file: string = CONFIG_PATH): Config {
  const result = validateConfig(text, file);
  if (!result.ok) {
    const [first] = result.errors;
    if (first === undefined) throw new ConfigError(file, 0, "", "invalid configuration");
    throw first;
  }
  return result.config;
}

/** The outcome of validating a configuration: the config, or every error found. */
export type ConfigResult = { ok: true; config: Config } | { ok: false; errors: ConfigError[] };

/** Validates a configuration file and returns every problem, each with its file, line and field. */
export function validateConfig(text: string, file: string = CONFIG_PATH): ConfigResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map(
        (e) => new ConfigError(file, lineCounter.linePos(e.pos[0]).line, "", `invalid YAML: ${yamlErrorMessage(e.message)}`),
      ),
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    // An alias to an anchor that does not exist, or an alias bomb, is found only when the aliases are resolved.
    const message = error instanceof Error ? error.message : String(error);
    const name = /alias[^:]*: (\S+)$/.exec(message)?.[1];
    let at = 0;
    visit(doc, {
      Alias: (_, alias) => {
        if (alias.source !== name) return undefined;
        at = alias.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    return { ok: false, errors: [new ConfigError(file, lineCounter.linePos(at).line, "", `invalid YAML: ${yamlErrorMessage(message)}`)] };
  }
  if (value === null || value === undefined) {
    return { ok: false, errors: [new ConfigError(file, 1, "", "is empty; it needs at least `version: 1` and `environments`")] };
  }
  const parsed = configSchema.safeParse(value);
  if (parsed.success) return { ok: true, config: parsed.data };
  return {
    ok: false,
    errors: parsed.error.issues.map((issue) => {
      const path = issue.path;
      const line = lineOfPath(doc, lineCounter, path);
      const field = issue.code === "unrecognized_keys" ? fieldName([...path, issue.keys[0] ?? ""]) : fieldName(path);
      return new ConfigError(
        file,
        issue.code === "unrecognized_keys" ? lineOfPath(doc, lineCounter, [...path, issue.keys[0] ?? ""]) : line,
        field,
        issueMessage(issue),
      );
    }),
  };
}

function issueMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "unrecognized_keys":
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_type":
      return issue.message.startsWith("Invalid input") ? `must be ${article(issue.expected)}` : issue.message;
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/** `["environments", 0, "name"]` → `environments[0].name`. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** The configuration's JSON Schema, for editors (`# yaml-language-server: $schema=…`). */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $id: "https://sluice.dev/schema/sluice.schema.json",
    title: "Sluice configuration (.github/sluice.yml)",
    ...z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }),
  };
}

/** Where README.md keeps the configuration reference generated from the schema. */
export const REFERENCE_MARKERS = { start: "<!-- config-reference:start -->", end: "<!-- config-reference:end -->" } as const;

/**
 * The configuration reference as a Markdown table, one row per field (nested fields by path,
 * `environments[].helm.values`), from the JSON Schema's descriptions, defaults, enums and required
 * lists: the README's table is this, so it cannot drift from what Sluice accepts.
 */
export function configReference(schema: Record<string, unknown> = configJsonSchema()): string {
  const rows: string[] = [];
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const walk = (node: Record<string, unknown>, prefix: string, required: readonly unknown[]): void => {
    const properties = isRecordLike(node.properties) ? node.properties : {};
    for (const [name, raw] of Object.entries(properties)) {
      if (!isRecordLike(raw)) continue;
      const path = `${prefix}${name}`;
      const items = raw.type === "array" && isRecordLike(raw.items) && isRecordLike(raw.items.properties) ? raw.items : undefined;
      const nested = raw.type === "object" && isRecordLike(raw.properties) ? raw : undefined;
      if (typeof raw.description === "string" || (!items && !nested)) {
        const fallback = required.includes(name) ? "required" : "—";
        const value = "const" in raw ? raw.const : raw.default;
        const byDefault =
          value === undefined || (isRecordLike(value) && Object.keys(value).length > 0) ? fallback : `\`${JSON.stringify(value)}\``;
        const choices = Array.isArray(raw.enum) ? ` One of ${raw.enum.map((v) => `\`${String(v)}\``).join(", ")}.` : "";
        rows.push(
          `| \`${path}${items ? "[]" : ""}\` | ${byDefault} | ${cell(`${typeof raw.description === "string" ? raw.description : ""}${choices}`)} |`,
        );
      }
      if (items) walk(items, `${path}[].`, Array.isArray(items.required) ? items.required : []);
      if (nested) walk(nested, `${path}.`, Array.isArray(nested.required) ? nested.required : []);
    }
  };
  walk(schema, "", Array.isArray(schema.required) ? schema.required : []);
  return ["| field | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

function isRecordLike(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** How long a wave waits for a silent cluster unless the environment says otherwise. */
export const DEFAULT_CLUSTER_TIMEOUT_MS = 15 * 60_000;

/** An environment's fleet: its clusters and waves, or undefined for an environment on one unnamed cluster. */
export function fleetOf(env: Pick<Environment, "clusters" | "waves" | "bake" | "clusterTimeout">): FleetSettings | undefined {
  if (env.clusters.length === 0 && env.waves.length === 0) return undefined;
  return {
    clusters: env.clusters,
    waves: env.waves,
    bakeMs: env.bake ?? 0,
    clusterTimeoutMs: env.clusterTimeout ?? DEFAULT_CLUSTER_TIMEOUT_MS,
  };
}
