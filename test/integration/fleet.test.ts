import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ApiException, CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys, privateKeyFromPem, seal } from "../../src/core/signing.ts";
import { REPORT_QUEUE, type AgentReport, type AgentStatus } from "../../src/core/agent-protocol.ts";
import { EnvironmentStates } from "../../src/app/deploy/environment-states.ts";
import { DriftSummaries } from "../../src/app/drift/drift-summaries.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import type { RunningAgent } from "../../src/agent/start.ts";
import { ROLLOUT_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { startTestEnv, type TestEnv } from "../env/start.ts";
import { WEBHOOK_SECRET, type AppHarness } from "../helpers/app-harness.ts";
import { botReplies, reachPromotionChecks, startPromotionAgent, startPromotionHarness } from "../helpers/promotion-agent.ts";
import { commentPayload, pullRequestPayload, pushPayload } from "../helpers/payloads.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import type { FakeCheckRun } from "../helpers/fake-github.ts";

// One environment on three clusters, each a real apiserver with its own etcd and its own agent
// (SLUICE_AGENT_CLUSTER), GitHub faked: a merge reaches the canary, bakes, then the other two; a
// refusal by the canary's admission policy stops the next wave; an agent that is down holds its
// wave. The app's clock is the harness's: a bake's end and a wave's timeout are reached by moving
// the clock and running the rollout check the app queued for that moment.

const OWNER = "sluice-fleet";
const REPO = "shop";
const REPO_ID = 9400;
const target = { owner: OWNER, repo: REPO, repoId: REPO_ID, installation: 61 };
const CLUSTERS = ["canary", "eu-1", "eu-2"] as const;
type ClusterName = (typeof CLUSTERS)[number];
const suffix = randomUUID().slice(0, 6);
const NS = `deploy-fleet-${suffix}`;
const AGENT_NS = `sluice-fleet-${suffix}`;
const BAKE_MS = 10 * 60_000;
const TIMEOUT_MS = 5 * 60_000;
const appKeys = generateSigningKeys();
const agentKeys = Object.fromEntries(CLUSTERS.map((c) => [c, generateSigningKeys()])) as Record<
  ClusterName,
  ReturnType<typeof generateSigningKeys>
>;
const config = `version: 1
environments:
  - name: production
    path: envs/production
    namespace: ${NS}
    waves: [[canary], ["eu-*"]]
    bake: 10m
    clusterTimeout: 5m
`;

let h: AppHarness;
let extra: TestEnv[] = [];
const kubeconfigs = {} as Record<ClusterName, string>;
const kube = {} as Record<ClusterName, KubernetesObjectApi>;
const agents = {} as Partial<Record<ClusterName, RunningAgent>>;
let rollouts: Queue;
let nextSha = 1;
const sha = (): string => (nextSha++).toString(16).padStart(40, "f");
/** The commits the tests merged, by version. */
const shas: Record<string, string> = {};

function files(version: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...extra,
    ".github/sluice.yml": config,
    "envs/production/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS}\n  labels:\n    sluice-test/fleet: "${suffix}"\n`,
    "envs/production/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`,
  };
}

/** Merges pull request `number` as a new commit of `version` and pushes main there. */
async function merge(number: number, version: string, extra: Record<string, string> = {}): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, REPO, id, await checkout(undefined, files(version, extra)));
  h.github.setBranch(OWNER, REPO, "main", id);
  h.github.setMergedPull(OWNER, REPO, { number, merge: id, branch: "main", author: "carol" });
  await h.deliver("push", pushPayload(target, id, "refs/heads/main"));
  return id;
}

const runs = (commit: string): FakeCheckRun[] =>
  [...h.github.checkRuns.values()].filter((r) => r.head_sha === commit && r.name === deployCheckName("production"));
const titleOf = (commit: string): string | undefined => runs(commit).at(-1)?.output?.title ?? undefined;
const says = (commit: string, expected: RegExp) => expect.poll(() => titleOf(commit), { timeout: 60_000, interval: 200 }).toMatch(expected);

/** Runs kubectl against a cluster. */
async function kubectl(cluster: ClusterName, args: string[]): Promise<void> {
  await promisify(execFile)("kubectl", ["--kubeconfig", kubeconfigs[cluster], ...args]);
}

async function liveVersion(cluster: ClusterName): Promise<string | undefined> {
  try {
    const live = (await kube[cluster].read({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: NS } })) as {
      data?: Record<string, string>;
    };
    return live.data?.version;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

const versions = (): Promise<(string | undefined)[]> => Promise.all(CLUSTERS.map((c) => liveVersion(c)));

/** The moment of the newest rollout check the app queued for later. */
async function lastCheck(): Promise<number> {
  const due = (await rollouts.getDelayed()).map((j) => Number(/-(\d+)$/.exec(j.id ?? "")?.[1] ?? 0));
  return Math.max(0, ...due);
}

async function startAgent(cluster: ClusterName): Promise<void> {
  agents[cluster] = await startPromotionAgent(h, {
    kubeconfigPath: kubeconfigs[cluster],
    appPublicKey: appKeys.publicKey,
    agentPrivateKey: agentKeys[cluster].privateKey,
    environments: ["production"],
    owner: OWNER,
    namespace: AGENT_NS,
    cluster,
    driftSeconds: 2,
  });
}

/** Two more clusters: an etcd and an apiserver each, beside the test environment's own. */
async function startClusters(): Promise<void> {
  // Their own directories and free ports, and the test environment's Redis.
  const own = new Set(["KUBECONFIG", "SLUICE_TEST_ENV_DIR", "SLUICE_ETCD_PORT", "SLUICE_APISERVER_PORT"]);
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !own.has(name))),
    REDIS_URL: inject("redisUrl"),
  };
  extra = await Promise.all([1, 2].map(() => startTestEnv({ env, log: () => undefined, controllers: false })));
  kubeconfigs.canary = inject("kubeconfigPath");
  kubeconfigs["eu-1"] = extra[0]?.kubeconfigPath ?? "";
  kubeconfigs["eu-2"] = extra[1]?.kubeconfigPath ?? "";
  for (const cluster of CLUSTERS) {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigs[cluster]);
    kube[cluster] = KubernetesObjectApi.makeApiClient(kc);
    await kube[cluster].create({ apiVersion: "v1", kind: "Namespace", metadata: { name: AGENT_NS } });
  }
}

/** The canary's admission policy: no ConfigMap of this test's namespace may say version "bad". */
async function refuseBadOnCanary(): Promise<void> {
  const name = `fleet-no-bad-${suffix}`;
  await kube.canary.create({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        namespaceSelector: { matchLabels: { "sluice-test/fleet": suffix } },
        resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["configmaps"] }],
      },
      validations: [
        {
          expression: "!has(object.data) || !('version' in object.data) || object.data.version != 'bad'",
          message: "version bad is refused here",
        },
      ],
    },
  });
  await kube.canary.create({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name },
    spec: { policyName: name, validationActions: ["Deny"] },
  });
  // The apiserver loads a policy a moment after it is made: until a dry run is refused, it is not in force.
  await expect
    .poll(
      async () =>
        kube.canary
          .create(
            { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe", namespace: NS }, data: { version: "bad" } },
            undefined,
            "All",
          )
          .then(() => "allowed")
          .catch((error: unknown) => (error instanceof ApiException ? String(error.code) : "error")),
      { timeout: 30_000, interval: 250 },
    )
    .toBe("422");
}

beforeAll(async () => {
  await startClusters();
  const publicKeys = CLUSTERS.map((c) => `# environments: production\n# clusters: ${c}\n${agentKeys[c].publicKey}`).join("\n");
  h = await startPromotionHarness({
    database: 22,
    repository: { owner: OWNER, repo: REPO, repoId: REPO_ID },
    config,
    keys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: publicKeys },
    firstCommit: sha(),
  });
  for (const cluster of CLUSTERS) await startAgent(cluster);
  rollouts = new Queue(ROLLOUT_QUEUE, { connection: { url: h.redisUrl }, prefix: QUEUE_PREFIX });
}, 180_000);

afterAll(async () => {
  await rollouts.close();
  for (const agent of Object.values(agents)) await agent.stop();
  await h.stop();
  const name = `fleet-no-bad-${suffix}`;
  await kube.canary
    .delete({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicyBinding", metadata: { name } })
    .catch(() => undefined);
  await kube.canary
    .delete({ apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy", metadata: { name } })
    .catch(() => undefined);
  await kube.canary
    .delete({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "widgets.fleet.sluice.test" } })
    .catch(() => undefined);
  await rm(join(tmpdir(), `fleet-widgets-${suffix}.json`), { force: true });
  for (const namespace of [NS, AGENT_NS])
    await kube.canary.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }).catch(() => undefined);
  for (const env of extra) await env.stop();
  await removeCheckouts();
}, 120_000);

afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

describe("a fleet of three clusters", { timeout: 240_000 }, () => {
  it("rolls a merge out to the canary, bakes it, then to the other two, on one check run and one Deployment", async () => {
    // Each agent announces its cluster when it starts: the environment's `eu-*` matches both eu clusters then.
    await expect.poll(() => h.redis.hlen("sluice:fleet-clusters:production"), { timeout: 30_000 }).toBe(3);
    const v1 = await merge(1, "v1");
    shas.v1 = v1;
    await says(v1, /^Baking wave 1 of 2 until \d\d:\d\d UTC: 1 of 3 clusters deployed$/);
    expect(await versions()).toEqual(["v1", undefined, undefined]);
    // The bake is not over until its time: the check for its end is queued for it.
    const bakeEnd = await lastCheck();
    expect(bakeEnd - h.clock.now).toBeGreaterThan(BAKE_MS - 60_000);
    await reachPromotionChecks(h, rollouts, bakeEnd);
    await says(v1, /^Deployed to 3 clusters in 2 waves$/);
    expect(await versions()).toEqual(["v1", "v1", "v1"]);
    const run = runs(v1);
    expect(run).toHaveLength(1);
    expect(run[0]?.conclusion).toBe("success");
    expect(run[0]?.output?.summary).toMatch(/\| 1 \| `canary` \| ✅ deployed \|/);
    expect(run[0]?.output?.summary).toMatch(/\| 2 \| `eu-2` \| ✅ deployed \|/);
    // One Deployment for the environment, its clusters by wave in the payload; its statuses end in success, never failure.
    const deployments = h.github.deploymentsCreated.filter((d) => d.ref === v1);
    expect(deployments).toHaveLength(1);
    expect(deployments[0]?.payload).toMatchObject({ waves: [["canary"], ["eu-1", "eu-2"]] });
    const states = () => h.github.deploymentStatuses.filter((s) => s.deploymentId === deployments[0]?.id).map((s) => s.state);
    // The check run is written first; the Deployment's status takes its turn in the write pacing after it.
    await expect.poll(() => states().at(-1), { timeout: 30_000 }).toBe("success");
    expect(states()).not.toContain("failure");
    // The merged pull request hears of the end once, for every cluster.
    await expect
      .poll(() => h.github.comments.filter((c) => c.issue === 1).map((c) => c.body), { timeout: 30_000 })
      .toEqual([expect.stringMatching(/^🚀 Deployed `f{6}[0-9a-f]` to \*\*production\*\* on 3 clusters in 2 waves\. \[Details\]/)]);
  });

  it("reports the fleet's drift on one check run with a row per drifted cluster, and names the clusters in sync", async () => {
    const v1 = shas.v1 ?? "";
    const driftRuns = () => [...h.github.checkRuns.values()].filter((r) => r.head_sha === v1 && r.name.startsWith("sluice/drift"));
    const title = () => driftRuns().at(-1)?.output?.title;
    await expect.poll(title, { timeout: 60_000, interval: 200 }).toBe("In sync on 3 clusters");
    // Someone edits eu-1's ConfigMap by hand.
    const edit = async (version: string) => {
      const live = await kube["eu-1"].read<KubernetesObject>({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "web", namespace: NS },
      });
      await kube["eu-1"].replace({ ...live, data: { version } } as KubernetesObject, undefined, undefined, "kubectl-edit");
    };
    await edit("by-hand");
    await expect.poll(title, { timeout: 60_000, interval: 200 }).toBe("Drifted on 1 of 3 clusters");
    const run = driftRuns().at(-1);
    expect(run?.conclusion).toBe("neutral");
    expect(run?.output?.summary).toContain(`| \`eu-1\` | 1: \`ConfigMap ${NS}/web\` | off |`);
    expect(run?.output?.summary).toContain("In sync: `canary`, `eu-2`.");
    expect(run?.output?.text).toContain("#### `eu-1`");
    // One check run for the environment's deploy, written again as its clusters report: none per cluster.
    expect(driftRuns().map((r) => r.name)).toEqual(["sluice/drift (production)"]);
    // A Redis writer copies the sealed record of the check run into the hash as a cluster named `check`: it is no cluster's row.
    const key = `sluice:fleet-drift:${REPO_ID}:production:${v1}`;
    const sealed = (await h.redis.getBuffer(`${key}:check`)) ?? Buffer.alloc(0);
    expect(sealed.length).toBeGreaterThan(43);
    await h.redis.hset(key, "check", sealed);
    // And deletes that record: the check run is found on GitHub by its external id, not made again.
    await h.redis.del(`${key}:check`);
    await edit("v1");
    await expect.poll(title, { timeout: 60_000, interval: 200 }).toBe("In sync on 3 clusters");
    expect(driftRuns()).toHaveLength(1);
  });

  it("stops the later waves when the canary's admission policy refuses the commit, and says so", async () => {
    await refuseBadOnCanary();
    const bad = await merge(2, "bad");
    await says(bad, /^Stopped at wave 1 of 2: canary failed$/);
    const run = runs(bad).at(-1);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.summary).toContain("The later waves were not started (2 clusters: eu-1, eu-2): canary did not deploy.");
    expect(run?.output?.summary).toContain("version bad is refused here");
    await expect
      .poll(() => h.github.comments.filter((c) => c.issue === 2).map((c) => c.body), { timeout: 30_000 })
      .toEqual([
        expect.stringMatching(
          /^❌ Deploying `\w{7}` to \*\*production\*\* stopped at wave 1 of 2: canary failed; the later waves were not started\./,
        ),
      ]);
    // No check is left to start the next wave, and the other clusters keep what they ran.
    await reachPromotionChecks(h, rollouts, h.clock.now + BAKE_MS + TIMEOUT_MS);
    expect(await versions()).toEqual(["v1", "v1", "v1"]);
    expect(titleOf(bad)).toBe("Stopped at wave 1 of 2: canary failed");
  });

  it("previews a pull request on each cluster of the fleet, and groups the clusters that answer alike", async () => {
    h.github.setPermission(OWNER, REPO, "Codertocat", "write");
    // Branched from v1, which every cluster runs (the merge of "bad" stopped at the canary).
    const base = shas.v1 ?? "";
    const head = sha();
    await h.github.addCommit(OWNER, REPO, head, await checkout(undefined, files("bad")));
    await h.deliver("pull_request", pullRequestPayload(target, "opened", 40, base, head));
    // Each cluster's agent dry-runs the head against its own cluster: the canary's admission policy refuses it, the other two would take it.
    const comment = () => h.github.comments.find((c) => c.issue === 40)?.body ?? "";
    await expect
      .poll(comment, { timeout: 60_000 })
      .toContain("**`production`** on 2 of 3 clusters, `eu-1`, `eu-2`: 1 object would change live");
    expect(comment()).toContain(
      "**`production`** on 1 of 3 clusters, `canary`: 0 objects would change live, 0 would be pruned, 1 would be refused",
    );
    expect(comment()).toContain("version bad is refused here");
    // The two clusters' one diff is shown once, and says where.
    expect(comment().match(/live configure <code>ConfigMap [\w-]+\/web<\/code> in `production` on `eu-1` and 1 more/g)).toHaveLength(1);
    const check = () => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head).at(-1);
    await expect.poll(() => check()?.conclusion, { timeout: 30_000 }).toBe("failure");
    expect(check()?.annotations.map((a) => a.message)).toContainEqual(
      expect.stringMatching(
        /^ConfigMap [\w-]+\/web would be refused by the API server in the live cluster \(clusters canary\): .*version bad is refused here/,
      ),
    );
  });

  it("holds a wave whose cluster's agent is down, names the cluster and since when, and goes on when it answers", async () => {
    await agents["eu-2"]?.stop();
    delete agents["eu-2"];
    const v3 = await merge(3, "v3");
    await says(v3, /^Baking wave 1 of 2/);
    await reachPromotionChecks(h, rollouts, await lastCheck());
    await expect.poll(() => liveVersion("eu-1"), { timeout: 60_000 }).toBe("v3");
    await says(v3, /^Deploying wave 2 of 2: 2 of 3 clusters deployed$/);
    // eu-2's agent never takes the job: at the wave's timeout the wave is held, and the check run says by whom.
    const timeout = await lastCheck();
    await reachPromotionChecks(h, rollouts, timeout);
    await says(v3, /^Wave 2 of 2 held: eu-2 not answering since \d\d:\d\d UTC$/);
    expect(runs(v3).at(-1)?.status).toBe("in_progress");
    expect(runs(v3).at(-1)?.output?.summary).toMatch(/\| 2 \| `eu-2` \| 🔇 no answer since \d\d:\d\d UTC \|/);
    expect(await liveVersion("eu-2")).toBe("v1");
    // It stays down longer than a job lives (15 min): the waiting job is signed again meanwhile, so the one it finds is valid.
    await reachPromotionChecks(h, rollouts, h.clock.now + 16 * 60_000);
    // The agent comes back, takes the job queued for it, and the rollout ends.
    await startAgent("eu-2");
    await says(v3, /^Deployed to 3 clusters in 2 waves$/);
    expect(await versions()).toEqual(["v3", "v3", "v3"]);
  });

  it("rolls back every cluster at once with /rollback, holds the next merge on all of them, and /sync releases them in waves", async () => {
    h.github.setPermission(OWNER, REPO, "carol", "maintain");
    await h.deliver("issue_comment", commentPayload(target, 3, 80_001, "/rollback", "carol"));
    await expect.poll(() => botReplies(h, 3).length, { timeout: 30_000 }).toBe(1);
    expect(botReplies(h, 3)[0]).toMatch(/production/);
    // The canary's history stands for the environment's: v1 was live before v3 (the refused commit never was).
    await expect.poll(versions, { timeout: 60_000, interval: 250 }).toEqual(["v1", "v1", "v1"]);
    // The rollback's own check run, on the commit it went back to: every cluster in one wave.
    await says(shas.v1 ?? "", /^Deployed to 3 clusters in 1 wave$/);
    // A merge while held applies nowhere, and says so on one check run.
    const v5 = await merge(5, "v5");
    await says(v5, /^Held by \/rollback on canary$/);
    expect(runs(v5).at(-1)?.conclusion).toBe("skipped");
    expect(await versions()).toEqual(["v1", "v1", "v1"]);
    // /sync releases the hold and deploys the branch's head through the waves again.
    await h.deliver("issue_comment", commentPayload(target, 5, 80_002, "/sync production", "carol"));
    await says(v5, /^Baking wave 1 of 2/);
    expect(await liveVersion("canary")).toBe("v5");
    await reachPromotionChecks(h, rollouts, await lastCheck());
    await expect.poll(versions, { timeout: 60_000, interval: 250 }).toEqual(["v5", "v5", "v5"]);
  });

  it("deploys one cluster alone with /sync production --cluster, and says so of a cluster the environment does not run on", async () => {
    // A hand deletes eu-2's ConfigMap: that cluster alone is deployed again.
    await kube["eu-2"].delete({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: NS } });
    expect(await versions()).toEqual(["v5", "v5", undefined]);
    const head = h.github.branch(OWNER, REPO, "main") ?? "";
    const driftRuns = () => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name.startsWith("sluice/drift"));
    await expect.poll(() => driftRuns().at(-1)?.output?.title, { timeout: 60_000, interval: 200 }).toBe("Drifted on 1 of 3 clusters");
    const before = runs(head).length;
    await h.deliver("issue_comment", commentPayload(target, 5, 80_003, "/sync production --cluster eu-2", "carol"));
    await expect.poll(() => liveVersion("eu-2"), { timeout: 60_000 }).toBe("v5");
    await expect.poll(() => runs(head).length, { timeout: 30_000 }).toBe(before + 1);
    await says(head, /^Deployed to 1 cluster in 1 wave$/);
    const summary = runs(head).at(-1)?.output?.summary ?? "";
    expect(summary).toMatch(/\| 1 \| `eu-2` \| ✅ deployed \|/);
    expect(summary).not.toContain("`canary`");
    await expect.poll(() => botReplies(h, 5).at(-1), { timeout: 30_000 }).toContain("`production@eu-2`");
    // The cluster deployed alone stays a row of its commit's one drift check run.
    await expect.poll(() => driftRuns().at(-1)?.output?.title, { timeout: 60_000, interval: 200 }).toBe("In sync on 3 clusters");
    expect(driftRuns()).toHaveLength(1);
    await h.deliver("issue_comment", commentPayload(target, 5, 80_004, "/sync production --cluster us-9", "carol"));
    await expect
      .poll(() => botReplies(h, 5).at(-1), { timeout: 30_000 })
      .toContain("`production`: nothing queued: its `clusters` and `waves` do not name or match `us-9`.");
  });

  it("keeps out of /rollback's history what one cluster's agent names that the app never deployed, and dates it no later than now", async () => {
    const states = new EnvironmentStates(h.redis, new RedisMac(WEBHOOK_SECRET));
    const before = await states.load(REPO_ID, "production");
    const live = before.history?.revisions[0];
    expect(live).toBeDefined();
    const head = h.github.branch(OWNER, REPO, "main") ?? "";
    const jobId = runs(head).find((r) => r.output?.title === "Deployed to 3 clusters in 2 waves")?.external_id ?? "";
    expect(jobId).not.toBe("");
    // The canary's key, stolen: a report about a real deploy whose history names a commit of the attacker's choosing, dated far ahead.
    const forged = "0badc0de".repeat(5);
    const report: AgentReport = {
      version: 1,
      jobId,
      repository: { owner: OWNER, name: REPO, id: REPO_ID },
      installationId: target.installation,
      environment: "production",
      cluster: "canary",
      sha: head,
      phase: "succeeded",
      message: "deployed",
      history: {
        revisions: [
          ...(live ? [live] : []),
          {
            sha: forged,
            jobId: `merge-${REPO_ID}-production-${forged}`,
            digest: "0".repeat(64),
            appliedAt: "2026-01-01T00:00:00.000Z",
            reason: "merge",
          },
        ],
      },
      at: "2099-01-01T00:00:00.000Z",
    };
    const reports = new Queue(REPORT_QUEUE.name, { connection: { url: h.redisUrl }, prefix: REPORT_QUEUE.prefix });
    try {
      await reports.add("report", seal("report", report, privateKeyFromPem(agentKeys.canary.privateKey)));
      await expect.poll(async () => (await states.load(REPO_ID, "production")).historyAt, { timeout: 30_000 }).not.toBe(before.historyAt);
    } finally {
      await reports.close();
    }
    const after = await states.load(REPO_ID, "production");
    expect(after.history?.revisions.map((r) => r.sha)).not.toContain(forged);
    expect(after.history?.revisions[0]?.sha).toBe(live?.sha);
    expect(Date.parse(after.historyAt ?? "")).toBeLessThanOrEqual(h.clock.now);
  });

  it("dates a cluster's announcement by its status, so a status replayed from Redis keeps a retired cluster known no longer", async () => {
    const old = h.clock.now - 8 * 24 * 3600 * 1000;
    const status: AgentStatus = {
      version: 1,
      environment: "production",
      cluster: "canary",
      event: "running",
      repositories: [],
      at: new Date(old).toISOString(),
    };
    const reports = new Queue(REPORT_QUEUE.name, { connection: { url: h.redisUrl }, prefix: REPORT_QUEUE.prefix });
    try {
      await reports.add("status", seal("status", status, privateKeyFromPem(agentKeys.canary.privateKey)));
      await expect
        .poll(async () => (await h.redis.hget("sluice:fleet-clusters:production", "canary"))?.split(" ")[0], { timeout: 30_000 })
        .toBe(String(old));
    } finally {
      await reports.close();
    }
  });

  it("converges a cluster that comes back empty to the environment's newest rollout, by itself and alone", async () => {
    await agents["eu-2"]?.stop();
    delete agents["eu-2"];
    // eu-2 is rebuilt: its objects and its agent's record are gone.
    await kube["eu-2"].delete({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: NS } });
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigs["eu-2"]);
    const core = kc.makeApiClient(CoreV1Api);
    await core.deleteCollectionNamespacedConfigMap({ namespace: AGENT_NS });
    const head = h.github.branch(OWNER, REPO, "main") ?? "";
    const before = runs(head).length;
    // Its agent starts, and its status says it runs nothing: the app deploys it what the whole fleet runs, not waiting for a merge.
    await startAgent("eu-2");
    await expect.poll(() => liveVersion("eu-2"), { timeout: 60_000 }).toBe("v5");
    // Its own check run (the status a test replayed for the canary converged the canary meanwhile, which changed nothing there).
    const own = () =>
      runs(head)
        .slice(before)
        .find((r) => r.output?.summary?.includes("`eu-2`"));
    await expect.poll(() => own()?.output?.title, { timeout: 30_000 }).toBe("Deployed to 1 cluster in 1 wave");
    expect(own()?.output?.summary).toMatch(/\| 1 \| `eu-2` \| ✅ deployed \|/);
  });

  it("rolls one cluster back with /rollback production --cluster, holds it alone, and /sync --cluster releases it", async () => {
    const v1 = shas.v1 ?? "";
    await h.deliver("issue_comment", commentPayload(target, 5, 80_005, `/rollback production --cluster eu-1 to ${v1}`, "carol"));
    await expect.poll(() => liveVersion("eu-1"), { timeout: 60_000 }).toBe("v1");
    expect(await versions()).toEqual(["v5", "v1", "v5"]);
    await expect.poll(() => botReplies(h, 5).at(-1), { timeout: 30_000 }).toContain("`production@eu-1`");
    expect(botReplies(h, 5).at(-1)).toContain("`eu-1` alone is held");
    // No revert pull request (the one there is, the whole environment's rollback opened): the branch, and the other clusters, keep what they run.
    expect(h.github.pullsCreated).toHaveLength(1);
    // The next merge reaches the canary and eu-2; eu-1's agent keeps its hold, and the rollout says so.
    const v6 = await merge(6, "v6");
    await says(v6, /^Baking wave 1 of 2/);
    await reachPromotionChecks(h, rollouts, await lastCheck());
    await says(v6, /^Held by \/rollback on eu-1$/);
    await expect.poll(versions, { timeout: 60_000, interval: 250 }).toEqual(["v6", "v1", "v6"]);
    // /sync of that cluster releases it.
    await h.deliver("issue_comment", commentPayload(target, 6, 80_006, "/sync production --cluster eu-1", "carol"));
    await expect.poll(() => liveVersion("eu-1"), { timeout: 60_000 }).toBe("v6");
  });

  it("stops the rollout when a wave's objects are not healthy at the end of its bake", async () => {
    // A kind whose health is its conditions, on every cluster; objects of it are healthy until their status says otherwise.
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "widgets.fleet.sluice.test" },
      spec: {
        group: "fleet.sluice.test",
        scope: "Namespaced",
        names: { plural: "widgets", singular: "widget", kind: "Widget" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: "object",
                properties: {
                  spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                  status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                },
              },
            },
          },
        ],
      },
    };
    // Made with kubectl: the client's typed model would drop the schema's `x-kubernetes-` fields.
    const crdFile = join(tmpdir(), `fleet-widgets-${suffix}.json`);
    await writeFile(crdFile, JSON.stringify(crd));
    for (const cluster of CLUSTERS) await kubectl(cluster, ["create", "-f", crdFile]);
    const widget = { apiVersion: "fleet.sluice.test/v1", kind: "Widget", metadata: { name: "w", namespace: NS } };
    for (const cluster of CLUSTERS)
      await expect
        .poll(
          () =>
            kube[cluster]
              .create(widget, undefined, "All")
              .then(() => "served")
              .catch((error: unknown) => (error instanceof ApiException ? String(error.code) : "error")),
          { timeout: 30_000, interval: 250 },
        )
        .toBe("served");
    const before = await versions();
    const v7 = await merge(7, "v7", {
      "envs/production/widget.yaml": "apiVersion: fleet.sluice.test/v1\nkind: Widget\nmetadata:\n  name: w\n",
    });
    await says(v7, /^Baking wave 1 of 2/);
    // During the bake the canary's widget fails: its status (a controller's word) says it is stalled.
    const status = { status: { conditions: [{ type: "Stalled", status: "True", reason: "Broken", message: "the widget broke" }] } };
    await kubectl("canary", [
      "patch",
      "widgets.fleet.sluice.test",
      "w",
      "--namespace",
      NS,
      "--subresource=status",
      "--type=merge",
      "--patch",
      JSON.stringify(status),
    ]);
    // The canary's agent says so in its next drift check.
    const summaries = new DriftSummaries(h.redis, new RedisMac(WEBHOOK_SECRET));
    await expect
      .poll(async () => (await summaries.summary(REPO_ID, "production@canary"))?.unhealthy, { timeout: 30_000, interval: 250 })
      .toEqual([`Widget ${NS}/w (failed: the widget broke)`]);
    await reachPromotionChecks(h, rollouts, await lastCheck());
    await says(v7, /^Stopped after wave 1 of 2: canary not healthy at the end of the bake$/);
    expect(await versions()).toEqual(["v7", before[1], before[2]]);
  });
});
