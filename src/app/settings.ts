import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const envSchema = z.object({
  APP_ID: z.coerce.number({ error: "APP_ID must be the GitHub App's numeric id" }).int().positive({ error: "APP_ID must be the GitHub App's numeric id" }),
  PRIVATE_KEY: z.string().optional(),
  PRIVATE_KEY_PATH: z.string().optional(),
  WEBHOOK_SECRET: z.string({ error: "WEBHOOK_SECRET is required: the secret GitHub signs webhooks with" }).min(1),
  REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  SLUICE_PUBLIC_URL: z.url({ error: "SLUICE_PUBLIC_URL must be the app's public URL, such as https://sluice.example.com" }),
  SLUICE_LINK_SECRET: z.string().min(16).optional(),
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
  SLUICE_PREVIEW_CONCURRENCY: positiveInt(2),
  SLUICE_JOB_SIGNING_KEY: z.string().optional(),
  SLUICE_JOB_SIGNING_KEY_PATH: z.string().optional(),
  SLUICE_AGENT_PUBLIC_KEYS: z.string().optional(),
  SLUICE_AGENT_PUBLIC_KEYS_PATH: z.string().optional(),
  SLUICE_KUSTOMIZE: z.string().optional(),
  SLUICE_KUBECTL: z.string().optional(),
  SLUICE_HELM: z.string().optional(),
});

/** The app's settings, parsed once from the environment at start-up. */
export interface AppSettings {
  appId: number;
  privateKey: string;
  webhookSecret: string;
  redisUrl: string;
  publicUrl: string;
  linkSecret: string;
  githubApiUrl: string;
  githubWebUrl: string;
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>["LOG_LEVEL"];
  cacheDir: string;
  cacheMaxBytes: number;
  checkoutMaxBytes: number;
  checkoutMaxFiles: number;
  diffTtlSeconds: number;
  renderTimeoutMs: number;
  renderCacheEntries: number;
  previewConcurrency: number;
  /** Ed25519 private key (PEM) that signs deploy jobs; deploys are off without it. */
  jobSigningKey: string | undefined;
  /** Ed25519 public keys (PEM, concatenated) of the agents whose reports are trusted. */
  agentPublicKeys: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * Reads the settings from the environment.
 * @throws Error listing every missing or invalid variable
 */
export async function loadSettings(env: NodeJS.ProcessEnv): Promise<AppSettings> {
  // An empty variable (as copied from .env.example) means unset.
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== "")));
  if (!parsed.success) {
    throw new Error(`invalid configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}`);
  }
  const e = parsed.data;
  const privateKey = e.PRIVATE_KEY?.replace(/\\n/g, "\n") ?? (e.PRIVATE_KEY_PATH ? await readFile(e.PRIVATE_KEY_PATH, "utf8") : undefined);
  if (!privateKey) throw new Error("invalid configuration:\n  PRIVATE_KEY or PRIVATE_KEY_PATH: the GitHub App's private key is required");
  const jobSigningKey = e.SLUICE_JOB_SIGNING_KEY?.replace(/\\n/g, "\n") ?? (e.SLUICE_JOB_SIGNING_KEY_PATH ? await readFile(e.SLUICE_JOB_SIGNING_KEY_PATH, "utf8") : undefined);
  const agentKeys = e.SLUICE_AGENT_PUBLIC_KEYS?.replace(/\\n/g, "\n") ?? (e.SLUICE_AGENT_PUBLIC_KEYS_PATH ? await readFile(e.SLUICE_AGENT_PUBLIC_KEYS_PATH, "utf8") : "");
  if (jobSigningKey && !agentKeys.includes("BEGIN PUBLIC KEY")) throw new Error("invalid configuration:\n  SLUICE_AGENT_PUBLIC_KEYS: deploys need at least one agent public key to trust reports");
  return {
    appId: e.APP_ID,
    privateKey,
    webhookSecret: e.WEBHOOK_SECRET,
    redisUrl: e.REDIS_URL,
    publicUrl: e.SLUICE_PUBLIC_URL.replace(/\/+$/, ""),
    // Links stay valid across replicas and restarts without another secret to manage.
    linkSecret: e.SLUICE_LINK_SECRET ?? createHmac("sha256", e.WEBHOOK_SECRET).update("sluice diff page links").digest("base64url"),
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
    jobSigningKey,
    agentPublicKeys: agentKeys.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [],
    env,
  };
}
