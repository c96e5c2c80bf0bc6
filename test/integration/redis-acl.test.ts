import { createHash, randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { startRedis, type RedisServer } from "../env/redis.ts";
import { testAgentSettings } from "../helpers/agent-settings.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { pullRequestPayload, pushPayload as push } from "../helpers/payloads.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import type { AgentLog } from "../../src/agent/agent-log.ts";
import { agentQueue, latestJobKey, REPORT_QUEUE } from "../../src/core/agent-protocol.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { DEPLOY_REQUEST_QUEUE } from "../../src/app/queue/queues.ts";
import { deployRecordKey, QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { liveSettingsValue } from "../helpers/live.ts";

// The ACL lines README's Operations section gives (Redis authentication, TLS and ACLs), with the
// SHA-256 of the password where README has `<sha256 of the password>`. They are what this file proves: change
// one here, change it there.
const APP_ACL =
  "user sluice-app on #<sha256 of the password> resetchannels resetkeys -@all +@read +@write +@blocking +@transaction +ping +select +hello +auth +client|setname +client|getname +client|id +client|info +echo +quit +reset +eval +evalsha +script|load +script|exists -@dangerous -function +info -randomkey ~{sluice}:* ~sluice:* ~{sluice:pr:* ~{sluice-*}:*";
const AGENT_ACL =
  "user agent-production on #<sha256 of the password> resetchannels resetkeys -@all +@read +@write +@blocking +@transaction +ping +select +hello +auth +client|setname +client|getname +client|id +client|info +echo +quit +reset +eval +evalsha +script|load +script|exists -@dangerous -function +info -scan -randomkey ~{sluice-production}:* ~{sluice}:agent-reports:[a-z]* %W~{sluice}:agent-reports:*";

/** The agent of one cluster of a fleet (README's Many clusters): its cluster's keys, and its environment's job blobs read-only. */
const FLEET_AGENT_ACL =
  "user agent-production-eu-1 on #<sha256 of the password> resetchannels resetkeys -@all +@read +@write +@blocking +@transaction +ping +select +hello +auth +client|setname +client|getname +client|id +client|info +echo +quit +reset +eval +evalsha +script|load +script|exists -@dangerous -function +info -scan -randomkey ~{sluice-production@eu-1}:* %R~{sluice-production}:blob:* ~{sluice}:agent-reports:[a-z]* %W~{sluice}:agent-reports:*";

const OWNER = "sluice-test";
const DATABASE = 22;
const DASHBOARD_TOKEN = "redis-acl-dashboard-token";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const appPassword = randomUUID();
const agentPassword = randomUUID();
const fleetPassword = randomUUID();
let server: RedisServer;
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent | undefined;
const namespaces: string[] = [];

/** The ACL file line of `template` with `password`'s SHA-256, as `ACL SETUSER` and an ACL file take it (no password in clear). */
function aclLine(template: string, password: string): string {
  return template.replace("<sha256 of the password>", createHash("sha256").update(password).digest("hex"));
}

/** `redis://user:password@host:port/db` on the test's Redis. */
function userUrl(user: string, password: string): string {
  const url = new URL(server.url);
  url.username = user;
  url.password = password;
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

/** What Redis refused so far (`ACL LOG`), as "user command-or-key", each once. */
async function refused(): Promise<string[]> {
  const entries = (await h.redis.call("ACL", "LOG", "128")) as string[][];
  const described = entries.map((entry) => {
    const field = (name: string): string => entry[entry.indexOf(name) + 1] ?? "";
    return `${field("username")} ${field("object")}`;
  });
  return [...new Set(described)].sort();
}

/** A namespace of the test's own, deleted at the end. */
function namespaceName(prefix: string): string {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  namespaces.push(name);
  return name;
}

beforeAll(async () => {
  const dir = await tempDir("sluice-redis-acl-");
  const aclFile = join(dir, "users.acl");
  await writeFile(
    aclFile,
    `${aclLine(APP_ACL, appPassword)}\n${aclLine(AGENT_ACL, agentPassword)}\n${aclLine(FLEET_AGENT_ACL, fleetPassword)}\n`,
    { mode: 0o600 },
  );
  // A Redis of this file's own, so the users exist only here. The default user stays, for the
  // harness's own checks and cleanup (FLUSHDB), which the app's user may not run.
  server = await startRedis(dir, undefined, ["--aclfile", aclFile]);
  h = await startHarness({
    redisUrl: server.url,
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: DATABASE,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    env: { REDIS_URL: userUrl("sluice-app", appPassword), SLUICE_DASHBOARD_TOKEN: DASHBOARD_TOKEN },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
});
afterAll(async () => {
  await agent?.stop();
  await h.stop();
  await server.process.stop();
  for (const name of namespaces) await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

/**
 * An agent of production connecting as `redisUrl`'s user, its inventories in `agentNamespace`,
 * started and answering; `extra` settings on top (a cluster of a fleet).
 */
async function startAclAgent(
  redisUrl: string,
  agentNamespace: string,
  extra: Record<string, string>,
  log: AgentLog,
): Promise<RunningAgent> {
  const settings = await testAgentSettings(
    { redisUrl, kubeconfigPath: inject("kubeconfigPath"), appPublicKey: appKeys.publicKey, agentPrivateKey: agentKeys.privateKey },
    {
      SLUICE_AGENT_ENVIRONMENTS: "production",
      SLUICE_AGENT_REPOSITORIES: `${OWNER}/*`,
      SLUICE_AGENT_NAMESPACES: "deploy-*",
      SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
      SLUICE_AGENT_NAMESPACE: agentNamespace,
      SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
      // Drift checks within the test's time, through the drift lease and the applied job the agent keeps in Redis.
      SLUICE_DRIFT_INTERVAL_SECONDS: "2",
      ...extra,
    },
  );
  const started = await startAgent(settings, { log, now: h.clock.read });
  await started.started;
  return started;
}

const liveValue = (namespace: string): Promise<string | undefined> => liveSettingsValue(kube, namespace);

describe("an agent and the app with the least-privilege Redis ACLs of README", { timeout: 180_000 }, () => {
  const repoId = 7301;
  const repoName = `app-${repoId}`;
  const namespace = namespaceName("deploy");
  const head = "d".repeat(40);
  const logged: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  // Two environments: production, which the agent serves, and staging, whose job stays queued for another cluster's agent.
  const config = ["production", "staging"]
    .map((environment) => `  - name: ${environment}\n    path: manifests\n    namespace: ${namespace}\n    branch: main\n`)
    .join("");
  /** The repository at a commit whose ConfigMap holds `value`. */
  const files = (value: string): Record<string, string> => ({
    ".github/sluice.yml": `version: 1\nenvironments:\n${config}`,
    "manifests/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n`,
    "manifests/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: ${value}\n`,
  });

  it("deploys a merge end to end, the agent connecting as agent-production", async () => {
    const agentNamespace = namespaceName("sluice-system");
    await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
    h.github.addRepo(OWNER, repoName, repoId);
    h.github.setPermission(OWNER, repoName, "alice", "write");
    await h.github.addCommit(OWNER, repoName, head, await checkout(undefined, files("from-main")));
    agent = await startAclAgent(userUrl("agent-production", agentPassword), agentNamespace, {}, (level, message, fields) =>
      logged.push({ level, message, fields }),
    );

    h.github.setBranch(OWNER, repoName, "main", head);
    const { status } = await h.deliver("push", push({ owner: OWNER, repo: repoName, repoId, installation: 31 }, head));

    expect(status).toBe(200);
    await expect.poll(() => liveValue(namespace), { timeout: 90_000, interval: 250 }).toBe("from-main");
    await expect
      .poll(
        () =>
          [...h.github.checkRuns.values()]
            .filter((r) => r.head_sha === head && r.name === deployCheckName("production"))
            .map((r) => r.conclusion),
        { timeout: 60_000, interval: 200 },
      )
      .toEqual(["success"]);
    const staging = agentQueue("staging");
    await expect.poll(() => h.redis.llen(`${staging.prefix}:${staging.name}:wait`), { timeout: 30_000 }).toBe(1);
    expect(logged.filter((l) => JSON.stringify(l).includes("NOPERM"))).toEqual([]);
    // Redis's own record of what it refused: only the app's eviction-policy check, which the app's user may not run (README says so).
    expect(await refused()).toEqual(["sluice-app config|get"]);
  });

  it("answers a live preview and checks drift as agent-production", async () => {
    const pullHead = "f".repeat(40);
    await h.github.addCommit(OWNER, repoName, pullHead, await checkout(undefined, files("from-pull")));

    const { status } = await h.deliver(
      "pull_request",
      pullRequestPayload({ owner: OWNER, repo: repoName, repoId, installation: 31 }, "opened", 1, head, pullHead, { author: "alice" }),
    );

    expect(status).toBe(200);
    const comment = () => h.github.comments.find((c) => c.issue === 1 && c.body.includes(PREVIEW_MARKER))?.body ?? "";
    await expect.poll(comment, { timeout: 60_000, interval: 200 }).toContain("**`production`**: 1 object would change live");
    // A drift report (nothing drifted) reaches the report queue: the agent held the drift lease and read what it applied.
    const reportNames = async (): Promise<string[]> => {
      const keys = (await h.redis.keys(`${REPORT_QUEUE.prefix}:${REPORT_QUEUE.name}:*`)).filter((k) => /:[0-9]+$/.test(k));
      return Promise.all(keys.map(async (k) => (await h.redis.hget(k, "name")) ?? ""));
    };
    await expect.poll(reportNames, { timeout: 30_000, interval: 250 }).toContain("drift");
    expect(logged.filter((l) => JSON.stringify(l).includes("NOPERM"))).toEqual([]);
    expect(await refused()).toEqual(["sluice-app config|get"]);
  });

  it("serves the queue dashboard as sluice-app, every environment's queues but no workers", async () => {
    const api = await fetch(`${h.url}/sluice/queues/api/queues?page=1&jobsPerPage=10`, {
      headers: { authorization: `Basic ${Buffer.from(`ops:${DASHBOARD_TOKEN}`).toString("base64")}` },
    });

    expect(api.status).toBe(200);
    const { queues } = (await api.json()) as { queues: { name: string }[] };
    expect(queues.map((q) => q.name)).toEqual(
      expect.arrayContaining(["deploy-requests", "agent-reports", "deploy-production", "deploy-staging"]),
    );
    // The worker list asks CLIENT LIST, which shows every connection: refused, and the dashboard goes on without it.
    expect(await refused()).toEqual(["sluice-app client|list", "sluice-app config|get"]);
  });

  it("keeps agent-production out of another environment's queue and the app's keys (NOPERM)", async () => {
    const asAgent = new Redis(userUrl("agent-production", agentPassword), { maxRetriesPerRequest: 1 });
    const staging = agentQueue("staging");
    const stagingQueue = new Queue(staging.name, { connection: asAgent, prefix: staging.prefix });
    try {
      const [deployRecord] = await h.redis.keys(deployRecordKey("*"));
      expect(deployRecord).toBeDefined();
      const [report] = (await h.redis.keys(`${REPORT_QUEUE.prefix}:${REPORT_QUEUE.name}:*`)).filter((k) => /:[0-9]+$/.test(k));
      expect(report).toBeDefined();

      await expect(asAgent.lrange(`${staging.prefix}:${staging.name}:wait`, 0, -1)).rejects.toThrow(/NOPERM/);
      await expect(stagingQueue.getJobCounts("waiting")).rejects.toThrow(/NOPERM/);
      await expect(asAgent.get(latestJobKey("staging", repoId))).rejects.toThrow(/NOPERM/);
      await expect(asAgent.hgetall(deployRecord ?? "")).rejects.toThrow(/NOPERM/);
      await expect(asAgent.lrange(`${QUEUE_PREFIX}:${DEPLOY_REQUEST_QUEUE}:wait`, 0, -1)).rejects.toThrow(/NOPERM/);
      await expect(asAgent.lpush(`${QUEUE_PREFIX}:${DEPLOY_REQUEST_QUEUE}:wait`, "1")).rejects.toThrow(/NOPERM/);
      // Reports of every environment share one queue: the agent may add to it, not read what others sent.
      await expect(asAgent.hgetall(report ?? "")).rejects.toThrow(/NOPERM/);
      await expect(asAgent.scan("0")).rejects.toThrow(/NOPERM/);
      await expect(asAgent.flushdb()).rejects.toThrow(/NOPERM/);
      await expect(asAgent.config("GET", "*")).rejects.toThrow(/NOPERM/);
      await expect(asAgent.call("FUNCTION", "FLUSH")).rejects.toThrow(/NOPERM/);
    } finally {
      await stagingQueue.close();
      asAgent.disconnect();
    }
  });
});

describe("the agent of one cluster of a fleet with README's ACL", { timeout: 180_000 }, () => {
  const repoId = 7302;
  const repoName = `fleet-${repoId}`;
  const namespace = namespaceName("deploy-fleet");
  const head = "e".repeat(40);
  // Over the inline limit: the job's objects travel as a blob under the environment's tag, which the cluster's agent reads.
  const large = "x".repeat(300 * 1024);
  const files: Record<string, string> = {
    ".github/sluice.yml": `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${namespace}\n    clusters: [eu-1]\n`,
    "manifests/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n`,
    "manifests/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: from-fleet\n  large: ${large}\n`,
  };
  let fleetAgent: RunningAgent | undefined;
  afterAll(async () => {
    await fleetAgent?.stop();
  });

  it("deploys a merge to its cluster, touching nothing outside its cluster's keys and the blob", async () => {
    await agent?.stop();
    agent = undefined;
    const agentNamespace = namespaceName("sluice-fleet");
    await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
    h.github.addRepo(OWNER, repoName, repoId);
    await h.github.addCommit(OWNER, repoName, head, await checkout(undefined, files));
    const logged: string[] = [];
    fleetAgent = await startAclAgent(
      userUrl("agent-production-eu-1", fleetPassword),
      agentNamespace,
      { SLUICE_AGENT_CLUSTER: "eu-1" },
      (level, message, fields) => logged.push(JSON.stringify({ level, message, fields })),
    );
    // Its status names its cluster, which the app learns before the merge's rollout is planned.
    await expect.poll(() => h.redis.hlen("sluice:fleet-clusters:production"), { timeout: 30_000 }).toBe(1);
    h.github.setBranch(OWNER, repoName, "main", head);
    await h.deliver("push", push({ owner: OWNER, repo: repoName, repoId, installation: 31 }, head));

    await expect.poll(() => liveValue(namespace), { timeout: 90_000, interval: 250 }).toBe("from-fleet");
    await expect
      .poll(() => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head).map((r) => r.output?.title), { timeout: 60_000 })
      .toEqual(["Deployed to 1 cluster in 1 wave"]);
    expect(await h.redis.keys("{sluice-production}:blob:*")).toHaveLength(1);
    expect(logged.filter((l) => l.includes("NOPERM"))).toEqual([]);
    expect((await refused()).filter((r) => r.startsWith("agent-production-eu-1"))).toEqual([]);
    const asAgent = new Redis(userUrl("agent-production-eu-1", fleetPassword), { maxRetriesPerRequest: 1 });
    try {
      // The environment's own queue, another cluster's, and a write to the blobs are refused.
      const [blob] = await h.redis.keys("{sluice-production}:blob:*");
      await expect(asAgent.lrange(`${agentQueue("production").prefix}:${agentQueue("production").name}:wait`, 0, -1)).rejects.toThrow(
        /NOPERM/,
      );
      await expect(asAgent.get(latestJobKey("production@eu-2", repoId))).rejects.toThrow(/NOPERM/);
      await expect(asAgent.set(blob ?? "", "forged")).rejects.toThrow(/NOPERM/);
    } finally {
      asAgent.disconnect();
    }
  });
});
