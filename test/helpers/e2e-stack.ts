import { generateKeyPairSync } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { expect, inject } from "vitest";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { connectRedis, parseRedisUrl, servers, type RedisClient } from "../../src/redis/connection.ts";
import { freePort } from "../env/ports.ts";
import { deliverWebhook, WEBHOOK_SECRET } from "./app-harness.ts";
import { removeCheckouts, tempDir } from "./checkouts.ts";
import { FakeGitHub } from "./fake-github.ts";
import { startSluice, type SluiceProcess } from "./processes.ts";

/** `sluice app` and `sluice agent` as processes of their own, on the real Redis and apiserver, with GitHub faked. */
export interface Stack {
  github: FakeGitHub;
  /** A client of the stack's Redis database. */
  redis: RedisClient;
  kube: KubernetesObjectApi;
  /** The app process; `startApp` replaces it. */
  app: SluiceProcess;
  /** Starts another app process on the same port and settings (after the last one was stopped or killed). */
  startApp: () => Promise<SluiceProcess>;
  /** The agent process; `startAgent` replaces it. */
  agent: SluiceProcess | undefined;
  appUrl: string;
  /** Where the running agent serves its probes and metrics. */
  agentProbeUrl: () => string;
  /** Starts the agent (again), with its settings and `extra`. */
  startAgent: (extra?: Record<string, string>) => Promise<SluiceProcess>;
  /** Delivers a signed webhook to the app and expects it taken. */
  deliver: (event: string, payload: unknown) => Promise<void>;
  /**
   * Starts one more app replica on the same Redis and GitHub (a port and checkout cache of its
   * own, as another pod would have); `stop` ends it.
   */
  startAppReplica: () => Promise<{ app: SluiceProcess; url: string }>;
  /** Starts one more agent with the same settings; `stop` ends it. */
  startAgentReplica: () => Promise<SluiceProcess>;
  /** Both processes' output, for a failing test's report. */
  output: () => string;
  stop: () => Promise<void>;
}

export interface StackOptions {
  owner: string;
  repo: string;
  repoId: number;
  /** The Redis database the stack uses (its own, as test files run in parallel). */
  database: number;
  /**
   * A Redis of the test's own instead of the shared one (its database is still `database`), or a
   * Redis Cluster (`redis-cluster://`, which has only database 0).
   */
  redisUrl?: string;
  /** Environments the agent serves, and the namespaces (globs) it may write to. */
  environments: string[];
  namespaces: string;
  /** The agent's own namespace, created here and deleted by `stop` along with `namespaces`. */
  agentNamespace: string;
  /** Namespaces to delete at the end. */
  cleanup: string[];
  app?: Record<string, string>;
  agent?: Record<string, string>;
  /** Start no agent (an app alone: previews without the live cluster). */
  withoutAgent?: boolean;
  /** Run the built command line (`bin/sluice.js`), as the image does, for figures about what ships. */
  built?: boolean;
}

/** Starts the fake GitHub, then the app, then the agent; `stop` ends them and removes what they made. */
export async function startStack(options: StackOptions): Promise<Stack> {
  if (options.built) await expectFreshBuild();
  const run = { built: options.built ?? false };
  const appKeys = generateSigningKeys();
  const agentKeys = generateSigningKeys();
  const github = await new FakeGitHub().start();
  github.addRepo(options.owner, options.repo, options.repoId);
  const redisUrl = stackRedisUrl(options.redisUrl ?? inject("redisUrl"), options.database);
  const redis = connectRedis(redisUrl);
  // Tests that restart Redis expect this client to reconnect, not to report every refusal meanwhile.
  redis.on("error", () => undefined);
  await flush(redis);
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  const kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: options.agentNamespace } });
  const port = await freePort();
  const appUrl = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const appEnv = {
    APP_ID: String(FakeGitHub.APP_ID),
    PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    WEBHOOK_SECRET,
    REDIS_URL: redisUrl,
    SLUICE_PUBLIC_URL: appUrl,
    GITHUB_API_URL: github.url,
    GITHUB_WEB_URL: "https://github.example",
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    SLUICE_CACHE_DIR: await tempDir("sluice-e2e-cache-"),
    SLUICE_KUSTOMIZE: inject("kustomize"),
    SLUICE_HELM: inject("helm"),
    SLUICE_JOB_SIGNING_KEY: appKeys.privateKey,
    SLUICE_AGENT_PUBLIC_KEYS: agentKeys.publicKey,
    ...options.app,
  };
  const app = await startSluice("app", appEnv, /sluice app: listening/, run);
  const agentEnv = {
    REDIS_URL: redisUrl,
    KUBECONFIG: inject("kubeconfigPath"),
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: options.environments.join(","),
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_AGENT_REPOSITORIES: `${options.owner}/*`,
    SLUICE_AGENT_NAMESPACES: options.namespaces,
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: options.agentNamespace,
    SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
    ...options.agent,
  };
  const replicas: SluiceProcess[] = [];
  const stack: Stack = {
    github,
    redis,
    kube,
    app,
    agent: undefined,
    startApp: async () => {
      stack.app = await startSluice("app", appEnv, /sluice app: listening/, run);
      return stack.app;
    },
    appUrl,
    agentProbeUrl: () => {
      const port = /"probes":"[^"]*:(\d+)"/.exec(stack.agent?.output() ?? "")?.[1];
      if (!port) throw new Error("the agent has not said where its probes are");
      return `http://127.0.0.1:${port}`;
    },
    startAgent: async (extra = {}) => {
      stack.agent = await startSluice("agent", { ...agentEnv, ...extra }, /sluice agent: serving/, run);
      return stack.agent;
    },
    deliver: async (event, payload) => {
      const { status } = await deliverWebhook(appUrl, event, payload);
      expect(status).toBe(200);
    },
    startAppReplica: async () => {
      const replicaPort = await freePort();
      const url = `http://127.0.0.1:${replicaPort}`;
      const env = { ...appEnv, PORT: String(replicaPort), SLUICE_CACHE_DIR: await tempDir("sluice-e2e-cache-") };
      const replica = await startSluice("app", env, /sluice app: listening/, run);
      replicas.push(replica);
      return { app: replica, url };
    },
    startAgentReplica: async () => {
      const replica = await startSluice("agent", agentEnv, /sluice agent: serving/, run);
      replicas.push(replica);
      return replica;
    },
    output: () =>
      [
        `app:\n${stack.app.output()}`,
        `agent:\n${stack.agent?.output() ?? ""}`,
        ...replicas.map((r, i) => `replica ${i + 1}:\n${r.output()}`),
      ].join("\n"),
    stop: async () => {
      await Promise.all(replicas.map((r) => r.stop()));
      await stack.agent?.stop();
      await stack.app.stop();
      await github.stop();
      await flush(redis);
      await redis.quit();
      for (const name of [options.agentNamespace, ...options.cleanup])
        await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
      await removeCheckouts();
    },
  };
  try {
    if (!options.withoutAgent) await stack.startAgent();
  } catch (error) {
    await app.stop();
    throw error;
  }
  return stack;
}

/** The stack's Redis: the database of its own on one server; a cluster as it is. */
function stackRedisUrl(base: string, database: number): string {
  if (parseRedisUrl(base).kind === "cluster") return base;
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Empties the stack's database, or every master of a cluster. */
async function flush(redis: RedisClient): Promise<void> {
  await Promise.all(servers(redis).map((server) => server.flushdb()));
}

/** Refuses to run a build older than the source it comes from: a test of it would test yesterday's code. */
export async function expectFreshBuild(): Promise<void> {
  const newest = async (dir: string): Promise<number> => {
    let latest = 0;
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }))
      if (entry.isFile()) latest = Math.max(latest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
    return latest;
  };
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const [source, built] = await Promise.all([newest(join(root, "src")), newest(join(root, "dist")).catch(() => 0)]);
  if (built < source) throw new Error("dist/ is older than src/: run `npm run build` first");
}
