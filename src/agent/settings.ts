import type { KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { inlineOrFile } from "../core/secrets.ts";
import { privateKeyFromPem, publicKeysFromPem } from "../core/signing.ts";
import { z } from "zod";
import { parseRepositoryRules, type RepositoryRule } from "../core/policy.ts";
import { errorMessage } from "../core/errors.ts";
import { checkRedisUrl, type RedisTls } from "../redis/connection.ts";
import { clusterNameSchema } from "../core/fleet.ts";
import { readRedisTls } from "../redis/tls.ts";

const list = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value) =>
      value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );

/** The agent's environment variables and their rules; .env.example lists every one (test/unit/app/env-example.test.ts). */
export const envSchema = z.object({
  // No default: an agent runs in a cluster, where a Redis on localhost would be a mistake that only shows as a hang.
  REDIS_URL: z
    .string({ error: "REDIS_URL is required: redis://host:port of the Redis the app uses (from the sluice-agent Secret)" })
    .superRefine(checkRedisUrl),
  SLUICE_REDIS_CA_PATH: z.string().optional(),
  SLUICE_REDIS_CERT_PATH: z.string().optional(),
  SLUICE_REDIS_KEY_PATH: z.string().optional(),
  KUBECONFIG: z.string().optional(),
  SLUICE_APP_PUBLIC_KEY: z.string().optional(),
  SLUICE_APP_PUBLIC_KEY_PATH: z.string().optional(),
  SLUICE_AGENT_SIGNING_KEY: z.string().optional(),
  SLUICE_AGENT_SIGNING_KEY_PATH: z.string().optional(),
  SLUICE_AGENT_CLUSTER: clusterNameSchema.optional(),
  SLUICE_AGENT_ENVIRONMENTS: list("").refine((envs) => envs.length > 0, {
    error: "SLUICE_AGENT_ENVIRONMENTS must name at least one environment",
  }),
  SLUICE_AGENT_REPOSITORIES: z.string({ error: "SLUICE_AGENT_REPOSITORIES must name at least one owner/name (globs allowed)" }).min(1),
  SLUICE_AGENT_NAMESPACES: list(""),
  SLUICE_AGENT_CLUSTER_KINDS: list(""),
  SLUICE_AGENT_ALLOW_ADOPTION: z.enum(["true", "false"]).default("false"),
  SLUICE_AGENT_ADOPT_UNMANAGED: z.enum(["true", "false"]).default("false"),
  SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS: z.enum(["true", "false"]).default("false"),
  SLUICE_AGENT_MAX_JOB_AGE_SECONDS: z.coerce.number().int().positive().default(900),
  SLUICE_AGENT_NAMESPACE: z.string().default("sluice-system"),
  SLUICE_FIELD_MANAGER: z.string().min(1).max(128).default("sluice"),
  SLUICE_AGENT_CONCURRENCY: z.coerce.number().int().positive().default(16),
  SLUICE_AGENT_QPS: z.coerce.number().positive().default(500),
  SLUICE_HEALTH_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(300),
  SLUICE_DRIFT_INTERVAL_SECONDS: z.coerce.number().int().nonnegative().default(180),
  SLUICE_DRIFT_WATCH: z.enum(["true", "false"]).default("true"),
  SLUICE_AGENT_LOCK_SECONDS: z.coerce.number().int().min(1).max(600).default(30),
  SLUICE_AGENT_PROBE_PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
  SLUICE_AGENT_PROBE_HOST: z.string().default("0.0.0.0"),
  SLUICE_METRICS_TOKEN: z.string().min(16, { error: "SLUICE_METRICS_TOKEN must be at least 16 characters" }).optional(),
  SLUICE_AGENT_STOP_TIMEOUT_SECONDS: z.coerce.number().int().min(1).default(540),
});

/** The agent's settings: from its own environment (a ConfigMap and a Secret), never from a repository. */
export interface AgentSettings {
  redisUrl: string;
  /** For a `rediss://` REDIS_URL: the private CA and client certificate (`SLUICE_REDIS_*_PATH`). */
  redisTls: RedisTls | undefined;
  kubeconfig: string | undefined;
  /** The app's public keys: jobs and preview requests signed by any of them verify (several while a rotation overlaps). */
  appKeys: KeyObject[];
  /** The agent's own key, which signs its reports. */
  signingKey: KeyObject;
  environments: string[];
  /**
   * The cluster it serves its environments on, for an environment that runs on several (a fleet):
   * it takes only that cluster's jobs, from that cluster's queues. Unset: the environments' one cluster.
   */
  cluster: string | undefined;
  /** Which repositories it serves, and the namespaces each may write to. */
  rules: RepositoryRule[];
  /** Cluster-scoped kinds it may apply, `Kind` (core group) or `Kind.group`. */
  clusterKinds: string[];
  /** Apply over objects another repository or environment owns. */
  allowAdoption: boolean;
  /** Apply over live objects without Sluice's labels, adopting them (released, not deleted, when they leave Git). */
  adoptUnmanaged: boolean;
  /** Let a repository set, change or remove a Namespace's `pod-security.kubernetes.io/*` labels. */
  allowPodSecurityLabels: boolean;
  /** A job signed longer ago than this is refused, whatever its own expiry says. */
  maxJobAgeMs: number;
  /** The agent's own namespace, where inventories live. */
  namespace: string;
  fieldManager: string;
  concurrency: number;
  qps: number;
  healthTimeoutMs: number;
  /** How often each applied repository environment is compared with the live cluster (jittered); 0 turns drift checks off. */
  driftIntervalMs: number;
  /**
   * Watch the kinds each environment deploys and check it within seconds of a hand edit or a
   * deletion, the poll above staying as the safety net (needs the `watch` verb); off with drift checks.
   */
  driftWatch: boolean;
  /**
   * How long a deploy job stays locked to an agent without a renewal (renewed at half that while
   * it runs): after a crash, another agent takes the job over within about twice this.
   */
  lockMs: number;
  /** Where `/healthz`, `/readyz` and `/metrics` are served (port 0: any free port); nothing else is. */
  probePort: number;
  probeHost: string;
  /** When set, `/metrics` (which names repositories and environments) answers only `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /**
   * How long a stop may take: the job in progress finishes within it, or is left to another
   * replica (its lock lapses) and the connections are dropped. Shorter than the pod's grace period.
   */
  stopTimeoutMs: number;
}

/**
 * A key given inline as `name` or as a file in `name_PATH`, parsed by `parse`; every failure names
 * the variable it came from, so a pod that cannot start says which setting to fix.
 */
async function key<T>(inline: string | undefined, path: string | undefined, name: string, parse: (pem: string) => T): Promise<T> {
  const from = inline !== undefined ? name : `${name}_PATH`;
  let pem: string | undefined;
  try {
    pem = await inlineOrFile(inline, path, (file) => readFile(file, "utf8"));
  } catch (error) {
    throw new Error(`invalid configuration:\n  ${from}: cannot read ${JSON.stringify(path)}: ${errorMessage(error)}`, { cause: error });
  }
  if (pem === undefined) throw new Error(`invalid configuration:\n  ${name} or ${name}_PATH is required`);
  try {
    return parse(pem);
  } catch (error) {
    const where = from === name ? "" : ` (${JSON.stringify(path)})`;
    throw new Error(`invalid configuration:\n  ${from}${where}: ${errorMessage(error)}`, { cause: error });
  }
}

/** Reads the agent's settings from its environment. @throws Error listing every problem */
export async function loadAgentSettings(env: NodeJS.ProcessEnv): Promise<AgentSettings> {
  // An empty variable (as copied from .env.example) means unset.
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== "")));
  if (!parsed.success)
    throw new Error(`invalid configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}`);
  const e = parsed.data;
  let rules: RepositoryRule[];
  try {
    rules = parseRepositoryRules(e.SLUICE_AGENT_REPOSITORIES, e.SLUICE_AGENT_NAMESPACES);
  } catch (error) {
    throw new Error(`invalid configuration:\n  SLUICE_AGENT_REPOSITORIES: ${errorMessage(error)}`, { cause: error });
  }
  return {
    redisUrl: e.REDIS_URL,
    redisTls: await readRedisTls(e, e.REDIS_URL),
    kubeconfig: e.KUBECONFIG,
    appKeys: await key(e.SLUICE_APP_PUBLIC_KEY, e.SLUICE_APP_PUBLIC_KEY_PATH, "SLUICE_APP_PUBLIC_KEY", publicKeysFromPem),
    signingKey: await key(e.SLUICE_AGENT_SIGNING_KEY, e.SLUICE_AGENT_SIGNING_KEY_PATH, "SLUICE_AGENT_SIGNING_KEY", privateKeyFromPem),
    environments: e.SLUICE_AGENT_ENVIRONMENTS,
    cluster: e.SLUICE_AGENT_CLUSTER,
    rules,
    clusterKinds: e.SLUICE_AGENT_CLUSTER_KINDS,
    allowAdoption: e.SLUICE_AGENT_ALLOW_ADOPTION === "true",
    adoptUnmanaged: e.SLUICE_AGENT_ADOPT_UNMANAGED === "true",
    allowPodSecurityLabels: e.SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS === "true",
    maxJobAgeMs: e.SLUICE_AGENT_MAX_JOB_AGE_SECONDS * 1000,
    namespace: e.SLUICE_AGENT_NAMESPACE,
    fieldManager: e.SLUICE_FIELD_MANAGER,
    concurrency: e.SLUICE_AGENT_CONCURRENCY,
    qps: e.SLUICE_AGENT_QPS,
    healthTimeoutMs: e.SLUICE_HEALTH_TIMEOUT_SECONDS * 1000,
    driftIntervalMs: e.SLUICE_DRIFT_INTERVAL_SECONDS * 1000,
    driftWatch: e.SLUICE_DRIFT_WATCH === "true",
    lockMs: e.SLUICE_AGENT_LOCK_SECONDS * 1000,
    probePort: e.SLUICE_AGENT_PROBE_PORT,
    probeHost: e.SLUICE_AGENT_PROBE_HOST,
    metricsToken: e.SLUICE_METRICS_TOKEN,
    stopTimeoutMs: e.SLUICE_AGENT_STOP_TIMEOUT_SECONDS * 1000,
  };
}
