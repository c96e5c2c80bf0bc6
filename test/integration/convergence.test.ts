import { generateKeyPairSync, randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { pino } from "pino";
import { Probot } from "probot";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { testAgentSettings } from "../helpers/agent-settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { GitHubClient } from "../../src/app/github/client.ts";
import { deliveryKey, environmentRepositoriesKey, sequenceKey } from "../../src/app/state/redis-keys.ts";
import { latestJobKey } from "../../src/core/agent-protocol.ts";
import { MissedDeliveries } from "../../src/app/handlers/missed-deliveries.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { FakeGitHub } from "../helpers/fake-github.ts";
import { pushPayload as push } from "../helpers/payloads.ts";
import { liveSettingsValue } from "../helpers/live.ts";

const OWNER = "sluice-test";
const INSTALLATION = 31;
/** The app's job lifetime (SLUICE_JOB_TTL_SECONDS's default) and a little more. */
const PAST_JOB_LIFETIME_MS = 20 * 60 * 1000;
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
let h: AppHarness;
let kube: KubernetesObjectApi;
const agents: RunningAgent[] = [];
const namespaces: string[] = [];
let nextSha = 1;
let nextRepo = 7100;
const sha = (): string => (nextSha++).toString(16).padStart(40, "c");
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The harness's Redis, the test apiserver and this file's keys, for every agent it starts. */
const agentBase = () => ({
  redisUrl: h.redisUrl,
  kubeconfigPath: inject("kubeconfigPath"),
  appPublicKey: appKeys.publicKey,
  agentPrivateKey: agentKeys.privateKey,
});

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 20,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await h.stop();
  for (const name of namespaces) await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

/** A namespace of the test's own, deleted at the end. */
function namespaceName(prefix: string): string {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  namespaces.push(name);
  return name;
}

/** A fresh agent namespace: a cluster whose agent keeps no inventory yet. */
async function agentNamespace(): Promise<string> {
  const name = namespaceName("sluice-system");
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
  return name;
}

/** Starts an agent of `environment` keeping its inventories in `namespace`, on the app's clock. */
async function agent(environment: string, namespace: string): Promise<RunningAgent> {
  const settings = await testAgentSettings(agentBase(), {
    SLUICE_AGENT_ENVIRONMENTS: environment,
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/*`,
    SLUICE_AGENT_NAMESPACES: "deploy-*",
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: namespace,
    SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
  });
  const running = await startAgent(settings, { log: () => undefined, now: h.clock.read });
  agents.push(running);
  await running.started;
  return running;
}

/** Stops an agent (its pod gone). */
async function stopAgent(running: RunningAgent): Promise<void> {
  agents.splice(agents.indexOf(running), 1);
  await running.stop();
}

/** A repository whose environment `environment` deploys `manifests/` to a namespace of its own on pushes to main. */
function repository(environment: string): { name: string; id: number; namespace: string; config: string } {
  const id = nextRepo++;
  const namespace = namespaceName("deploy");
  h.github.addRepo(OWNER, `app-${id}`, id);
  return {
    name: `app-${id}`,
    id,
    namespace,
    config: `version: 1\nenvironments:\n  - name: ${environment}\n    path: manifests\n    namespace: ${namespace}\n    branch: main\n`,
  };
}

/** A commit of the repository's configuration, its Namespace and a ConfigMap holding `value`. */
async function commit(repo: { name: string; namespace: string; config: string }, value: string): Promise<string> {
  const id = sha();
  const files = {
    ".github/sluice.yml": repo.config,
    "manifests/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${repo.namespace}\n`,
    "manifests/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: ${value}\n`,
  };
  await h.github.addCommit(OWNER, repo.name, id, await checkout(undefined, files));
  return id;
}

/** Merges `after` onto main: the branch moves and GitHub delivers the push. */
async function merge(repo: { name: string; id: number }, after: string): Promise<void> {
  h.github.setBranch(OWNER, repo.name, "main", after);
  const { status } = await h.deliver("push", push({ owner: OWNER, repo: repo.name, repoId: repo.id, installation: INSTALLATION }, after));
  expect(status).toBe(200);
}

const deployRuns = (head: string, environment: string) =>
  [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === deployCheckName(environment));

/** Every summary the app wrote on the deploy check runs of `head`. */
function deploySummaries(head: string, environment: string): string[] {
  const ids = new Set(deployRuns(head, environment).map((r) => r.id));
  return h.github.requests
    .filter((r) => r.operationId === "checks/create" || r.operationId === "checks/update")
    .filter((r) => {
      const body = r.body as { head_sha?: string; name?: string };
      return r.operationId === "checks/create"
        ? body.head_sha === head && body.name === deployCheckName(environment)
        : ids.has(Number(r.params.check_run_id));
    })
    .map((r) => (r.body as { output?: { summary?: string } }).output?.summary ?? "");
}

const liveValue = (namespace: string): Promise<string | undefined> => liveSettingsValue(kube, namespace);

// A deploy, an agent's restart and the deploy that converges it: longer than one deploy's 60 s.
describe("a cluster converges to Git by itself", { timeout: 180_000 }, () => {
  it("recreates an environment from its branch's head when an agent comes online in an empty cluster", async () => {
    const environment = `conv-a${randomUUID().slice(0, 6)}`;
    const repo = repository(environment);
    const head = await commit(repo, "from-main");
    const first = await agent(environment, await agentNamespace());
    await merge(repo, head);
    await expect
      .poll(() => deployRuns(head, environment).map((r) => r.conclusion), { timeout: 90_000, interval: 200 })
      .toEqual(["success"]);
    await stopAgent(first);
    // The cluster is lost: a new one has neither the agent's inventories nor the repository's objects.
    await kube.delete({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: repo.namespace } });
    expect(await liveValue(repo.namespace)).toBeUndefined();

    await agent(environment, await agentNamespace());

    await expect.poll(() => liveValue(repo.namespace), { timeout: 90_000, interval: 250 }).toBe("from-main");
    await expect
      .poll(() => deployRuns(head, environment).map((r) => r.conclusion), { timeout: 60_000, interval: 200 })
      .toEqual(["success", "success"]);
    expect(deploySummaries(head, environment).filter((s) => s.includes("agent came online behind `main`"))).toHaveLength(1);
  });

  it("deploys the head agents missed while they were down longer than a job's lifetime, once", async () => {
    const environment = `conv-b${randomUUID().slice(0, 6)}`;
    const repo = repository(environment);
    const namespace = await agentNamespace();
    const before = await commit(repo, "before");
    const running = await agent(environment, namespace);
    await merge(repo, before);
    await expect
      .poll(() => deployRuns(before, environment).map((r) => r.conclusion), { timeout: 90_000, interval: 200 })
      .toEqual(["success"]);
    await stopAgent(running);
    const head = await commit(repo, "after");
    await merge(repo, head);
    await expect
      .poll(() => deployRuns(head, environment).map((r) => r.status), { timeout: 60_000, interval: 200 })
      .toEqual(["in_progress"]);

    // Two replicas come back after the merge's job has expired: one refuses that job, and both say they are behind.
    h.clock.now = h.clock.now + PAST_JOB_LIFETIME_MS;
    await Promise.all([agent(environment, namespace), agent(environment, namespace)]);

    await expect.poll(() => liveValue(repo.namespace), { timeout: 90_000, interval: 250 }).toBe("after");
    await expect
      .poll(
        () =>
          deployRuns(head, environment)
            .map((r) => r.conclusion)
            .sort(),
        { timeout: 60_000, interval: 200 },
      )
      .toEqual(["failure", "success"]);
    expect(
      deploySummaries(head, environment).filter((s) => s.includes(`agent came online at \`${before.slice(0, 7)}\`, behind \`main\``)),
    ).toHaveLength(1);
    expect(deployRuns(head, environment)).toHaveLength(2);
  });

  it("finds the repositories an agent's inventories name when Redis forgot them, and converges them", async () => {
    const environment = `conv-c${randomUUID().slice(0, 6)}`;
    const repo = repository(environment);
    h.github.setInstallation(OWNER, repo.name, INSTALLATION);
    const namespace = await agentNamespace();
    const before = await commit(repo, "before");
    const running = await agent(environment, namespace);
    await merge(repo, before);
    await expect
      .poll(() => deployRuns(before, environment).map((r) => r.conclusion), { timeout: 90_000, interval: 200 })
      .toEqual(["success"]);
    await stopAgent(running);
    // Redis lost what the app knew of the environment, and main moved on while nobody listened.
    await h.redis.del(environmentRepositoriesKey(environment), latestJobKey(environment, repo.id), sequenceKey(repo.id, environment));
    const head = await commit(repo, "after");
    h.github.setBranch(OWNER, repo.name, "main", head);

    await agent(environment, namespace);

    await expect.poll(() => liveValue(repo.namespace), { timeout: 90_000, interval: 250 }).toBe("after");
    expect(h.github.calls("apps/get-repo-installation").map((r) => [r.params.repo, r.auth])).toContainEqual([repo.name, "app"]);
  });
});

describe("webhooks missed during a GitHub outage", () => {
  /** A client authenticated as the app, as the app makes one (a JWT). */
  async function appGitHub(): Promise<GitHubClient> {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const probot = new Probot({
      appId: FakeGitHub.APP_ID,
      privateKey: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
      baseUrl: h.github.url,
      log: pino({ level: "silent" }),
    });
    return new GitHubClient(await probot.auth(), FakeGitHub.APP_ID);
  }

  it("reads its deliveries at start, authenticated as the app", async () => {
    await expect.poll(() => h.github.calls("apps/list-webhook-deliveries").map((r) => r.auth)[0], { timeout: 10_000 }).toBe("app");
  });

  it("asks GitHub once to redeliver each delivery that failed and was not handled since, oldest first", async () => {
    const now = h.clock.now;
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
    const unreachable = h.github.addHookDelivery({ guid: "guid-unreachable", event: "push", statusCode: 0, deliveredAt: at(30) });
    h.github.addHookDelivery({ guid: "guid-redelivered", event: "pull_request", statusCode: 502, deliveredAt: at(25) });
    h.github.addHookDelivery({ guid: "guid-redelivered", event: "pull_request", statusCode: 200, deliveredAt: at(24), redelivery: true });
    h.github.addHookDelivery({ guid: "guid-handled", event: "issue_comment", statusCode: 504, deliveredAt: at(20) });
    await h.redis.set(deliveryKey("guid-handled"), "handled");
    h.github.addHookDelivery({ guid: "guid-ok", event: "push", statusCode: 200, deliveredAt: at(10) });
    const erred = h.github.addHookDelivery({ guid: "guid-erred", event: "issue_comment", statusCode: 500, deliveredAt: at(5) });
    const old = h.github.addHookDelivery({ guid: "guid-old", event: "push", statusCode: 500, deliveredAt: at(5 * 24 * 60) });
    const missed = new MissedDeliveries({ redis: h.redis, appGitHub, now: h.clock.read, log: silent, maxRedeliveries: 1 });

    const first = await missed.catchUp();
    const second = await missed.catchUp();
    const third = await missed.catchUp();

    expect(first.redelivered).toEqual(["guid-unreachable"]);
    expect(second.redelivered).toEqual(["guid-erred"]);
    expect(third.redelivered).toEqual([]);
    expect(h.github.redeliveries).toEqual([unreachable.id, erred.id]);
    expect(h.github.redeliveries).not.toContain(old.id);
    expect(h.github.calls("apps/redeliver-webhook-delivery").map((r) => r.auth)).toEqual(["app", "app"]);
  });
});
