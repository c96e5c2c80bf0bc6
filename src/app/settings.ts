import { createHmac } from "node:crypto";
import { clusterNameSchema } from "../core/fleet.ts";
import { readFile } from "node:fs/promises";
import { inlineOrFile } from "../core/secrets.ts";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { SANDBOX_SETTINGS, type SandboxSetting } from "../render/process.ts";
import { readCgroupLimits, renderBudget, type FileReader, type RenderBudget } from "../render/render-budget.ts";
import { checkRedisUrl, type RedisTls } from "../redis/connection.ts";
import { readRedisTls } from "../redis/tls.ts";
import type { RedisMacSecrets } from "./state/redis-mac.ts";

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** The app's environment variables and their rules; .env.example lists every one (test/unit/app/env-example.test.ts). */
export const envSchema = z.object({
  APP_ID: z.coerce
    .number({ error: "APP_ID must be the GitHub App's numeric id" })
    .int()
    .positive({ error: "APP_ID must be the GitHub App's numeric id" }),
  PRIVATE_KEY: z.string().optional(),
  PRIVATE_KEY_PATH: z.string().optional(),
  WEBHOOK_SECRET: z.string().min(1).optional(),
  WEBHOOK_SECRET_PATH: z.string().optional(),
  REDIS_URL: z
    .string({ error: "REDIS_URL is required: the Redis the app's queues and caches live in, such as redis://redis:6379" })
    .min(1)
    .superRefine(checkRedisUrl),
  REDIS_URL_PATH: z.string().optional(),
  SLUICE_PUBLIC_URL: z.url({ error: "SLUICE_PUBLIC_URL must be the app's public URL, such as https://sluice.example.com" }).optional(),
  SLUICE_LINK_SECRET: z.string().min(16).optional(),
  SLUICE_REDIS_MAC_SECRET: z.string().optional(),
  SLUICE_REDIS_MAC_SECRET_PATH: z.string().optional(),
  SLUICE_REDIS_MAC_PREVIOUS_SECRETS: z.string().optional(),
  SLUICE_REDIS_MAC_PREVIOUS_SECRETS_PATH: z.string().optional(),
  SLUICE_REDIS_CA_PATH: z.string().optional(),
  SLUICE_REDIS_CERT_PATH: z.string().optional(),
  SLUICE_REDIS_KEY_PATH: z.string().optional(),
  GITHUB_API_URL: z.url().default("https://api.github.com"),
  GITHUB_WEB_URL: z.url().default("https://github.com"),
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  HOST: z.string().default("0.0.0.0"),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
  SLUICE_CACHE_DIR: z.string().default(join(tmpdir(), "sluice-checkouts")),
  SLUICE_CACHE_MAX_BYTES: positiveInt(2 * 1024 ** 3),
  SLUICE_CHECKOUT_MAX_BYTES: positiveInt(512 * 1024 ** 2),
  SLUICE_CHECKOUT_MAX_FILES: positiveInt(100_000),
  SLUICE_DIFF_TTL_DAYS: positiveInt(30),
  SLUICE_RENDER_TIMEOUT_SECONDS: positiveInt(120),
  SLUICE_RENDER_CACHE_ENTRIES: positiveInt(2_000),
  SLUICE_PREVIEW_CONCURRENCY: positiveInt(6),
  SLUICE_RENDER_PROCESSES: z.coerce.number().int().min(1).max(64).optional(),
  SLUICE_RENDER_MEMORY_MB: z.coerce.number().int().min(64).optional(),
  SLUICE_RENDER_TOOL_MEMORY_MB: z.coerce
    .number()
    .int()
    .min(1536, {
      error:
        "SLUICE_RENDER_TOOL_MEMORY_MB must be at least 1536: helm and kustomize reserve about 1.3 GiB of address space before they start",
    })
    .optional(),
  SLUICE_RENDER_SANDBOX: z
    .enum(SANDBOX_SETTINGS, { error: `SLUICE_RENDER_SANDBOX must be one of ${SANDBOX_SETTINGS.join(", ")}` })
    .default("auto"),
  SLUICE_JOB_TTL_SECONDS: positiveInt(900),
  SLUICE_SHUTDOWN_GRACE_SECONDS: z.coerce
    .number()
    .int()
    .min(6, { error: "SLUICE_SHUTDOWN_GRACE_SECONDS must be at least 6: the app stops 5 s before the grace period ends" })
    .default(30),
  SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS: positiveInt(20),
  SLUICE_JOB_SIGNING_KEY: z.string().optional(),
  SLUICE_JOB_SIGNING_KEY_PATH: z.string().optional(),
  SLUICE_AGENT_PUBLIC_KEYS: z.string().optional(),
  SLUICE_AGENT_PUBLIC_KEYS_PATH: z.string().optional(),
  SLUICE_DASHBOARD_TOKEN: z.string().min(16, { error: "SLUICE_DASHBOARD_TOKEN must be at least 16 characters" }).optional(),
  SLUICE_DASHBOARD_WRITE: z.enum(["true", "false"], { error: "SLUICE_DASHBOARD_WRITE must be true or false" }).default("false"),
  WEBHOOK_PROXY_URL: z.url({ error: "WEBHOOK_PROXY_URL must be a URL, such as https://smee.io/abc123" }).optional(),
  SLUICE_METRICS_TOKEN: z.string().min(16, { error: "SLUICE_METRICS_TOKEN must be at least 16 characters" }).optional(),
  SLUICE_KUSTOMIZE: z.string().optional(),
  SLUICE_KUBECTL: z.string().optional(),
  SLUICE_HELM: z.string().optional(),
});

/**
 * An agent's public key and what it may report on: the environments, and the repositories (by
 * numeric id), that its agent serves. All when undefined.
 */
export interface AgentKey {
  pem: string;
  environments?: string[];
  repositories?: number[];
  /** The clusters of a fleet its agent serves (`SLUICE_AGENT_CLUSTER`): a key bound to clusters speaks for no message without one. */
  clusters?: string[];
}

/**
 * Reads concatenated PEM public keys. The comment lines right above a key bind it:
 * `# environments: a,b` to those environments, `# repositories: 123,456` to those repositories
 * (numeric ids: a rename does not change them), `# clusters: eu-1,eu-2` to those clusters of a
 * fleet. Other comment lines are ignored.
 * @throws Error naming the key and the line when a binding cannot be read
 */
export function parseAgentKeys(text: string): AgentKey[] {
  const keys: AgentKey[] = [];
  for (const match of text.matchAll(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g)) {
    const key: AgentKey = { pem: match[0] };
    // The lines above the one the key starts on.
    const above = text.slice(0, match.index).split("\n").slice(0, -1);
    for (let i = above.length - 1; i >= 0 && /^[ \t]*#/.test(above[i] ?? ""); i--)
      bindAgentKey(key, above[i] ?? "", `key ${keys.length + 1} (line ${i + 1})`);
    keys.push(key);
  }
  return keys;
}

/** Applies one comment line above an agent key to its binding. */
function bindAgentKey(key: AgentKey, line: string, where: string): void {
  const [, name = "", value = ""] = /^[ \t]*#[ \t]*([A-Za-z-]+)[ \t]*:(.*)$/.exec(line) ?? [];
  const problem = (message: string) => new Error(`invalid configuration:\n  SLUICE_AGENT_PUBLIC_KEYS: ${where}: ${message}`);
  const values = value
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);
  switch (name.toLowerCase()) {
    case "environments":
      // An empty list has always meant no binding.
      if (values.length > 0) key.environments = values;
      return;
    case "repositories": {
      if (values.length === 0) throw problem(`"${line.trim()}" names no repository; leave the line out to allow them all`);
      const notId = values.find((v) => !/^[1-9][0-9]{0,15}$/.test(v) || !Number.isSafeInteger(Number(v)));
      if (notId !== undefined)
        throw problem(`"${line.trim()}" names "${notId}"; repositories are numeric ids (a rename does not change them), such as 123456`);
      key.repositories = values.map(Number);
      return;
    }
    case "clusters": {
      if (values.length === 0) throw problem(`"${line.trim()}" names no cluster; leave the line out to allow them all`);
      const notName = values.find((v) => !clusterNameSchema.safeParse(v).success);
      if (notName !== undefined)
        throw problem(
          `"${line.trim()}" names "${notName}"; a cluster is named as its agent's SLUICE_AGENT_CLUSTER, a DNS label such as eu-1`,
        );
      key.clusters = values;
      return;
    }
    case "cluster":
      throw problem(`"${line.trim()}" binds nothing: the line is "# clusters: …"`);
    case "environment":
      throw problem(`"${line.trim()}" binds nothing: the line is "# environments: …"`);
    case "repository":
      throw problem(`"${line.trim()}" binds nothing: the line is "# repositories: …"`);
  }
}

/** The app's settings, parsed once from the environment at start-up. */
export interface AppSettings {
  appId: number;
  privateKey: string;
  webhookSecret: string;
  redisUrl: string;
  /** For a `rediss://` REDIS_URL: the private CA and client certificate (`SLUICE_REDIS_*_PATH`). */
  redisTls: RedisTls | undefined;
  publicUrl: string;
  linkSecret: string;
  /**
   * What keys the MACs of the app's Redis records: new MACs use `current` (`SLUICE_REDIS_MAC_SECRET`,
   * else the webhook secret), and MACs made with `previous` ones still verify during a rotation.
   */
  redisMacSecrets: RedisMacSecrets;
  githubApiUrl: string;
  githubWebUrl: string;
  port: number;
  host: string;
  logLevel: AppEnv["LOG_LEVEL"];
  cacheDir: string;
  cacheMaxBytes: number;
  checkoutMaxBytes: number;
  checkoutMaxFiles: number;
  diffTtlSeconds: number;
  renderTimeoutMs: number;
  renderCacheEntries: number;
  previewConcurrency: number;
  /** Render processes at most: renders are CPU work, while a preview also waits on GitHub. */
  renderProcesses: number;
  /** Heap limit of each render process, in MiB. */
  renderMemoryMb: number;
  /**
   * Address space one helm or kustomize run may take, in MiB: Go reserves about 750 MiB of it at
   * start, and each render process runs one tool at a time.
   */
  renderToolMemoryMb: number;
  /** Whether helm and kustomize run in the namespace sandbox. */
  renderSandbox: SandboxSetting;
  /** How the render processes' memory adds up against the memory limit (see render-budget.ts). */
  renderBudget: RenderBudget;
  /**
   * How long stopping may take: 5 s less than `SLUICE_SHUTDOWN_GRACE_SECONDS`, the pod's
   * `terminationGracePeriodSeconds`, after which the kubelet kills the process.
   */
  stopTimeoutMs: number;
  /** How long a signed deploy job stays valid. */
  jobTtlMs: number;
  /** How long a preview comment waits for the agents' live dry-run before it says none answered. */
  liveTimeoutMs: number;
  /** Ed25519 private key (PEM) that signs deploy jobs; deploys are off without it. */
  jobSigningKey: string | undefined;
  /** Why deploys are off (no signing key given, or its file absent), said once at start; undefined when on. */
  deploysOff: string | undefined;
  /**
   * Ed25519 public keys (PEM) of the agents whose reports are trusted, each bound to the
   * environments and repositories named on `# environments: a,b` and `# repositories: 123,456`
   * lines right above it (any when absent).
   */
  agentPublicKeys: AgentKey[];
  /** The password of the queue dashboard at `/sluice/queues`; no dashboard when undefined. */
  dashboardToken: string | undefined;
  /** Whether the dashboard may retry, promote, clean or remove jobs (read-only otherwise). */
  dashboardWritable: boolean;
  /** Local development: receive webhooks through this proxy channel (smee.io), as Probot does. */
  webhookProxyUrl: string | undefined;
  /** When set, `/metrics` answers only requests bearing it (`Authorization: Bearer …`). */
  metricsToken: string | undefined;
  env: NodeJS.ProcessEnv;
}

const readText = (path: string): Promise<string> => readFile(path, "utf8");

/** Reads a file, or undefined when it does not exist. */
const readIfPresent: FileReader = (path) =>
  readFile(path, "utf8").catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  });

/** What the machine offers, read by default; tests give their own. */
export interface SystemFacts {
  /** Reads cgroup files (`/sys/fs/cgroup/...`, `/proc/self/cgroup`): undefined when absent. */
  readFile: FileReader;
  totalMemoryBytes: number;
  cpus: number;
}

/** The app's environment variables after parsing, defaults applied. */
export type AppEnv = z.infer<typeof envSchema>;

/**
 * Reads the settings from the environment.
 * @throws Error listing every missing or invalid variable
 */
export async function loadSettings(
  env: NodeJS.ProcessEnv,
  system: SystemFacts = { readFile: readIfPresent, totalMemoryBytes: totalmem(), cpus: availableParallelism() },
): Promise<AppSettings> {
  const e = parseEnv(await withRedisUrlFromFile(givenVariables(env)));
  const { privateKey, webhookSecret } = await loadGitHubSecrets(e);
  const redisMacSecrets = await loadRedisMacSecrets(e, webhookSecret);
  const redisTls = await readRedisTls(e, e.REDIS_URL);
  const deploy = deploySettings(e, await loadDeployKeys(e));
  const budget = await loadRenderBudget(e, system);
  return appSettings(e, { privateKey, webhookSecret, redisMacSecrets, redisTls, deploy, budget, env });
}

/** The variables that are given: an empty one (as copied from .env.example) means unset. */
export function givenVariables(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ""));
}

/**
 * The variables with REDIS_URL read from REDIS_URL_PATH when that file is there: a Redis URL with
 * a password is a secret, and the shipped Deployment mounts it from the Secret, optionally.
 */
async function withRedisUrlFromFile(given: Record<string, string | undefined>): Promise<Record<string, string | undefined>> {
  if (given.REDIS_URL_PATH === undefined) return given;
  const fromFile = (await readIfPresent(given.REDIS_URL_PATH))?.trim();
  return fromFile ? { ...given, REDIS_URL: fromFile } : given;
}

/**
 * Parses the given variables, with the rules that depend on more than one of them (the public URL
 * in production, a webhook secret inline or from a file).
 * @throws Error listing every missing or invalid variable
 */
export function parseEnv(given: Record<string, string | undefined>): AppEnv {
  const parsed = envSchema.safeParse(given);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
  // Outside production the app's own address will do for diff page links.
  if (given.SLUICE_PUBLIC_URL === undefined && given.NODE_ENV === "production")
    problems.push(
      "  SLUICE_PUBLIC_URL: SLUICE_PUBLIC_URL is required in production: the app's public URL, such as https://sluice.example.com",
    );
  if (given.WEBHOOK_SECRET === undefined && given.WEBHOOK_SECRET_PATH === undefined)
    problems.push("  WEBHOOK_SECRET: WEBHOOK_SECRET is required (or WEBHOOK_SECRET_PATH): the secret GitHub signs webhooks with");
  if (!parsed.success || problems.length > 0) throw new Error(`invalid configuration:\n${problems.join("\n")}`);
  return parsed.data;
}

/**
 * The GitHub App's private key and webhook secret, inline or from their files.
 * @throws Error naming the variables when either is empty
 */
async function loadGitHubSecrets(e: AppEnv): Promise<{ privateKey: string; webhookSecret: string }> {
  const privateKey = await inlineOrFile(e.PRIVATE_KEY, e.PRIVATE_KEY_PATH, readText);
  if (!privateKey) throw new Error("invalid configuration:\n  PRIVATE_KEY or PRIVATE_KEY_PATH: the GitHub App's private key is required");
  const webhookSecret = (await inlineOrFile(e.WEBHOOK_SECRET, e.WEBHOOK_SECRET_PATH, readText))?.trim();
  if (!webhookSecret)
    throw new Error("invalid configuration:\n  WEBHOOK_SECRET or WEBHOOK_SECRET_PATH: the secret GitHub signs webhooks with is required");
  return { privateKey, webhookSecret };
}

/** The texts of the two deploy keys as given, "" when not given. */
export interface DeployKeyTexts {
  jobSigningKey: string;
  agentPublicKeys: string;
}

/**
 * Reads the deploy keys, inline or from their files. A preview-only install has neither, and its
 * Secret (mounted with the keys optional) leaves their files out, so an absent file means the key
 * is not given.
 */
async function loadDeployKeys(e: AppEnv): Promise<DeployKeyTexts> {
  const readOptional = (path: string): Promise<string> => readIfPresent(path).then((text) => text ?? "");
  return {
    jobSigningKey: (await inlineOrFile(e.SLUICE_JOB_SIGNING_KEY, e.SLUICE_JOB_SIGNING_KEY_PATH, readOptional)) ?? "",
    agentPublicKeys: (await inlineOrFile(e.SLUICE_AGENT_PUBLIC_KEYS, e.SLUICE_AGENT_PUBLIC_KEYS_PATH, readOptional)) ?? "",
  };
}

/** The settings that turn deploys on or off. */
export type DeploySettings = Pick<AppSettings, "jobSigningKey" | "deploysOff" | "agentPublicKeys">;

/**
 * Whether deploys are on, and why not: on with a signing key, which then needs an agent key to
 * trust reports with.
 * @throws Error naming SLUICE_AGENT_PUBLIC_KEYS (and its file) when a signing key comes without one,
 *   or the agent key whose binding cannot be read
 */
export function deploySettings(e: AppEnv, keys: DeployKeyTexts): DeploySettings {
  const jobSigningKey = keys.jobSigningKey || undefined;
  if (jobSigningKey && !keys.agentPublicKeys.includes("BEGIN PUBLIC KEY"))
    throw new Error(
      `invalid configuration:\n  SLUICE_AGENT_PUBLIC_KEYS: deploys need at least one agent public key to trust reports${
        e.SLUICE_AGENT_PUBLIC_KEYS === undefined && e.SLUICE_AGENT_PUBLIC_KEYS_PATH !== undefined
          ? ` (SLUICE_AGENT_PUBLIC_KEYS_PATH ${e.SLUICE_AGENT_PUBLIC_KEYS_PATH} is absent or holds none)`
          : ""
      }`,
    );
  const deploysOff = jobSigningKey
    ? undefined
    : e.SLUICE_JOB_SIGNING_KEY === undefined && e.SLUICE_JOB_SIGNING_KEY_PATH !== undefined
      ? `SLUICE_JOB_SIGNING_KEY_PATH ${e.SLUICE_JOB_SIGNING_KEY_PATH} is absent or empty`
      : "SLUICE_JOB_SIGNING_KEY and SLUICE_JOB_SIGNING_KEY_PATH are not set";
  return { jobSigningKey, deploysOff, agentPublicKeys: parseAgentKeys(keys.agentPublicKeys) };
}

/** How the render processes share the memory and CPUs of the container (its cgroup) or else the machine. */
async function loadRenderBudget(e: AppEnv, system: SystemFacts): Promise<RenderBudget> {
  const cgroup = await readCgroupLimits(system.readFile);
  return renderBudget({
    memoryBytes: Math.min(cgroup.memoryBytes ?? Infinity, system.totalMemoryBytes),
    cpus: Math.min(cgroup.cpus ?? Infinity, system.cpus),
    given: { processes: e.SLUICE_RENDER_PROCESSES, heapMb: e.SLUICE_RENDER_MEMORY_MB, toolMemoryMb: e.SLUICE_RENDER_TOOL_MEMORY_MB },
  });
}

/** What `appSettings` takes besides the variables: what was read from files and the machine. */
export interface LoadedParts {
  privateKey: string;
  webhookSecret: string;
  redisMacSecrets: RedisMacSecrets;
  redisTls: RedisTls | undefined;
  deploy: DeploySettings;
  budget: RenderBudget;
  env: NodeJS.ProcessEnv;
}

/** The settings from the parsed variables and what was read: units converted, URLs without a trailing slash. */
export function appSettings(e: AppEnv, parts: LoadedParts): AppSettings {
  const { budget } = parts;
  return {
    appId: e.APP_ID,
    privateKey: parts.privateKey,
    webhookSecret: parts.webhookSecret,
    redisUrl: e.REDIS_URL,
    redisTls: parts.redisTls,
    publicUrl: (e.SLUICE_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ""),
    // Links stay valid across replicas and restarts without another secret to manage.
    linkSecret: e.SLUICE_LINK_SECRET ?? createHmac("sha256", parts.webhookSecret).update("sluice diff page links").digest("base64url"),
    redisMacSecrets: parts.redisMacSecrets,
    githubApiUrl: e.GITHUB_API_URL.replace(/\/+$/, ""),
    githubWebUrl: e.GITHUB_WEB_URL.replace(/\/+$/, ""),
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    cacheDir: e.SLUICE_CACHE_DIR,
    cacheMaxBytes: e.SLUICE_CACHE_MAX_BYTES,
    checkoutMaxBytes: e.SLUICE_CHECKOUT_MAX_BYTES,
    checkoutMaxFiles: e.SLUICE_CHECKOUT_MAX_FILES,
    diffTtlSeconds: e.SLUICE_DIFF_TTL_DAYS * 24 * 3600,
    renderTimeoutMs: e.SLUICE_RENDER_TIMEOUT_SECONDS * 1000,
    renderCacheEntries: e.SLUICE_RENDER_CACHE_ENTRIES,
    previewConcurrency: e.SLUICE_PREVIEW_CONCURRENCY,
    renderProcesses: budget.processes,
    renderMemoryMb: budget.heapMb,
    renderToolMemoryMb: budget.toolMemoryMb,
    renderSandbox: e.SLUICE_RENDER_SANDBOX,
    renderBudget: budget,
    stopTimeoutMs: (e.SLUICE_SHUTDOWN_GRACE_SECONDS - 5) * 1000,
    jobTtlMs: e.SLUICE_JOB_TTL_SECONDS * 1000,
    liveTimeoutMs: e.SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS * 1000,
    ...parts.deploy,
    metricsToken: e.SLUICE_METRICS_TOKEN,
    webhookProxyUrl: e.WEBHOOK_PROXY_URL,
    dashboardToken: e.SLUICE_DASHBOARD_TOKEN,
    dashboardWritable: e.SLUICE_DASHBOARD_WRITE === "true",
    env: parts.env,
  };
}

/**
 * The Redis MAC secrets: `SLUICE_REDIS_MAC_SECRET` stands apart from the webhook secret when set
 * (installs that never set it keep their MACs, derived from the webhook secret), and the secrets
 * of `SLUICE_REDIS_MAC_PREVIOUS_SECRETS`, comma- or line-separated, still verify.
 * @throws Error naming the variable when the secret is shorter than 16 characters
 */
async function loadRedisMacSecrets(e: AppEnv, webhookSecret: string): Promise<RedisMacSecrets> {
  const secret = (await inlineOrFile(e.SLUICE_REDIS_MAC_SECRET, e.SLUICE_REDIS_MAC_SECRET_PATH, readText))?.trim();
  if (secret !== undefined && secret.length < 16) {
    const given =
      e.SLUICE_REDIS_MAC_SECRET !== undefined
        ? "SLUICE_REDIS_MAC_SECRET"
        : `SLUICE_REDIS_MAC_SECRET_PATH (${e.SLUICE_REDIS_MAC_SECRET_PATH ?? ""})`;
    throw new Error(`invalid configuration:\n  ${given}: the Redis MAC secret must be at least 16 characters, got ${secret.length}`);
  }
  const previous = (await inlineOrFile(e.SLUICE_REDIS_MAC_PREVIOUS_SECRETS, e.SLUICE_REDIS_MAC_PREVIOUS_SECRETS_PATH, readText)) ?? "";
  return {
    current: secret ?? webhookSecret,
    previous: previous
      .split(/[,\n]/)
      .map((s) => s.trim())
      .filter(Boolean),
  };
}
