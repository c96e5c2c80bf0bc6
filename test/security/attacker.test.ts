import { randomUUID } from "node:crypto";
import { symlink } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { ApiException, KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { DEPLOY_REQUEST_QUEUE, PREVIEW_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { agentQueue, latestJobKey, REPORT_QUEUE, type AgentReport } from "../../src/core/agent-protocol.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys, privateKeyFromPem, seal, type Envelope } from "../../src/core/signing.ts";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { startHarness, WEBHOOK_SECRET, type AppHarness } from "../helpers/app-harness.ts";
import { DeployRecords } from "../../src/app/deploy/deploy-records.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { commentPayload, pullRequestPayload, pushPayload, type PayloadTarget } from "../helpers/payloads.ts";

// Plays the attacker against the whole system: the app over HTTP with signed webhooks, the agent
// on the real apiserver, both on the real Redis, which the attacker may also write to.

const OWNER = "acme";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const rogueKeys = generateSigningKeys();
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent;
const agentNamespace = `sluice-sec-${randomUUID().slice(0, 6)}`;
const namespaces: string[] = [agentNamespace];
let nextSha = 1;
let nextRepo = 7000;
const sha = (): string => (nextSha++).toString(16).padStart(40, "c");

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function tried(attempt: string, outcome: string): void {
  process.stdout.write(`  [attacker] tried: ${attempt}\n  [attacker] result: ${outcome}\n`);
}

beforeAll(async () => {
  // The second key may only report on staging: a production report signed with it is dropped.
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 4,
    deployKeys: {
      jobSigningKey: appKeys.privateKey,
      agentPublicKeys: `# environments: production\n${agentKeys.publicKey}# environments: staging\n${rogueKeys.publicKey}`,
    },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  const settings = await loadAgentSettings({
    REDIS_URL: h.redisUrl,
    KUBECONFIG: inject("kubeconfigPath"),
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: "production",
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    // Each team's repositories write to their own namespaces only.
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/team-a-*=team-a-*, ${OWNER}/team-b-*=team-b-*`,
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: agentNamespace,
    SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
  });
  agent = await startAgent(settings, { log: () => undefined, now: h.clock.read });
});
afterAll(async () => {
  await agent.stop();
  await h.stop();
  for (const name of namespaces) await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

interface Repo extends PayloadTarget {
  namespace: string;
}

function repository(team: "a" | "b", name = `team-${team}-${randomUUID().slice(0, 6)}`): Repo {
  const repoId = nextRepo++;
  const namespace = `team-${team}-${randomUUID().slice(0, 8)}`;
  namespaces.push(namespace);
  h.github.addRepo(OWNER, name, repoId);
  return { owner: OWNER, repo: name, repoId, installation: 41, namespace };
}

const config = (repo: Repo, extra = "") =>
  `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${repo.namespace}\n    branch: main\n${extra}`;
const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;
/** A repository's files: the configuration, its namespace, and `manifests` (path → text). */
const withNamespace = (repo: Repo, manifests: Record<string, string> = {}): Record<string, string> => ({
  ".github/sluice.yml": config(repo),
  "manifests/ns.yaml": ns(repo.namespace),
  ...manifests,
});
const cm = (name: string, value: string, namespace?: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${namespace ? `  namespace: ${namespace}\n` : ""}data:\n  value: "${value}"\n`;

async function commit(repo: Repo, files: Record<string, string>): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, repo.repo, id, await checkout(undefined, files));
  return id;
}

/** Merges: main moves to `head`, and GitHub delivers the push. */
async function merge(repo: Repo, head: string): Promise<void> {
  h.github.setBranch(OWNER, repo.repo, "main", head);
  expect((await h.deliver("push", pushPayload(repo, head))).status).toBe(200);
}

const deployRuns = (head: string) =>
  [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === deployCheckName("production"));
async function deployed(head: string) {
  await expect.poll(() => deployRuns(head).map((r) => r.status), { timeout: 90_000, interval: 200 }).toEqual(["completed"]);
  return deployRuns(head)[0];
}

async function live(kind: string, name: string, namespace?: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await kube.read({
      apiVersion: kind === "ConfigMap" || kind === "Namespace" ? "v1" : "rbac.authorization.k8s.io/v1",
      kind,
      metadata: { name, ...(namespace ? { namespace } : {}) },
    })) as unknown as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 1_500));

describe("a pull request, even from a fork, reads nothing but its own files", () => {
  it("refuses a head whose chart leaks /etc/passwd through chained symlinks", async () => {
    const repo = repository("a");
    const base = await commit(repo, { ".github/sluice.yml": config(repo), "manifests/cm.yaml": cm("a", "1") });
    const dir = await checkout(undefined, {
      ".github/sluice.yml": config(repo),
      "manifests/Chart.yaml": "apiVersion: v2\nname: leak\nversion: 1.0.0\n",
      "manifests/templates/cm.yaml":
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: leak }\ndata:\n  passwd: {{ .Files.Get "leak" | quote }}\n',
      "a/b/c/.keep": "",
    });
    await symlink("../../..", join(dir, "a/b/c/s"));
    await symlink("../a/b/c/s/../../../../../../../../../etc/passwd", join(dir, "manifests/leak"));
    const head = sha();
    await h.github.addCommit(OWNER, repo.repo, head, dir);
    await h.deliver("pull_request", pullRequestPayload(repo, "opened", 1, base, head, { fork: true }));
    await expect
      .poll(() => [...h.github.checkRuns.values()].find((r) => r.head_sha === head)?.status, { timeout: 60_000 })
      .toBe("completed");
    const run = [...h.github.checkRuns.values()].find((r) => r.head_sha === head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.title).toBe("The commit cannot be checked out safely");
    expect(run?.output?.summary).toContain("manifests/leak");
    const comment = h.github.comments.find((c) => c.issue === 1 && c.body.includes(PREVIEW_MARKER));
    expect(comment?.body).toContain("cannot be checked out safely");
    expect(JSON.stringify([...h.github.comments, ...h.github.checkRuns.values()])).not.toContain("root:x:0:0");
    tried(
      "a fork pull request whose chart reads /etc/passwd through a chained symlink",
      "the preview fails naming manifests/leak; no file content reaches GitHub",
    );
  });

  it("refuses a head whose chart reaches /etc/passwd through a link named with a backslash", async () => {
    const repo = repository("a");
    const base = await commit(repo, { ".github/sluice.yml": config(repo), "manifests/cm.yaml": cm("a", "1") });
    const deep = "a/b/c/d/e/f/g/h/l";
    const dir = await checkout(undefined, {
      ".github/sluice.yml": config(repo),
      "manifests/Chart.yaml": "apiVersion: v2\nname: leak\nversion: 1.0.0\n",
      "manifests/templates/cm.yaml":
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: leak }\ndata:\n  passwd: {{ .Files.Get "p" | quote }}\n',
      [`${deep}/.keep`]: "",
    });
    // On Linux `s\t` is one name: a link to the checkout's root. Split on the backslash it looks
    // like a missing `s`, and ten `..` after it look like a climb back to the root, not above it.
    await symlink("../../../../../../../../..", join(dir, `${deep}/s\\t`));
    await symlink(`../${deep}/s\\t/${"../".repeat(10)}etc/passwd`, join(dir, "manifests/p"));
    const head = sha();
    await h.github.addCommit(OWNER, repo.repo, head, dir);
    await h.deliver("pull_request", pullRequestPayload(repo, "opened", 2, base, head, { fork: true }));
    await expect
      .poll(() => [...h.github.checkRuns.values()].find((r) => r.head_sha === head)?.status, { timeout: 60_000 })
      .toBe("completed");
    const run = [...h.github.checkRuns.values()].find((r) => r.head_sha === head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.title).toBe("The commit cannot be checked out safely");
    // The summary is Markdown, where the backslash itself is escaped.
    expect(run?.output?.summary).toContain(`${deep}/s\\\\t" has a backslash in its name`);
    expect(JSON.stringify([...h.github.comments, ...h.github.checkRuns.values()])).not.toContain("root:x:0:0");
    tried(
      "a fork pull request whose chart reads /etc/passwd through a link named s\\t that a split on backslashes misreads",
      "the preview fails naming the link and its backslash; no file content reaches GitHub",
    );
  });

  it("cannot take over the preview comment by pasting its marker", async () => {
    const repo = repository("a");
    const base = await commit(repo, { ".github/sluice.yml": config(repo), "manifests/cm.yaml": cm("a", "1") });
    const head = await commit(repo, { ".github/sluice.yml": config(repo), "manifests/cm.yaml": cm("a", "2") });
    const planted = h.github.addUserComment(2, "mallory", `Looks fine ${PREVIEW_MARKER}`);
    await h.deliver("pull_request", pullRequestPayload(repo, "opened", 2, base, head, { fork: true }));
    await expect.poll(() => h.github.comments.filter((c) => c.issue === 2 && c.user === "sluice[bot]").length, { timeout: 60_000 }).toBe(1);
    expect(planted.body).toBe(`Looks fine ${PREVIEW_MARKER}`);
    tried(
      "a comment of mine carrying Sluice's hidden marker, so the app would edit it",
      "the app wrote its own comment and left mine alone",
    );
  });
});

describe("nothing deploys that the default branch did not review", () => {
  it("ignores a push to a branch whose own configuration names itself", async () => {
    const repo = repository("a");
    const reviewed = await commit(repo, { ".github/sluice.yml": config(repo), "manifests/ns.yaml": ns(repo.namespace) });
    h.github.setBranch(OWNER, repo.repo, "main", reviewed);
    const sneaky = await commit(repo, {
      ".github/sluice.yml": config(repo).replace("branch: main", "branch: sneaky"),
      "manifests/ns.yaml": ns(repo.namespace),
      "manifests/cm.yaml": cm("backdoor", "1"),
    });
    h.github.setBranch(OWNER, repo.repo, "sneaky", sneaky);
    await h.deliver("push", pushPayload(repo, sneaky, "refs/heads/sneaky"));
    await settle();
    expect(deployRuns(sneaky)).toEqual([]);
    expect(await live("ConfigMap", "backdoor", repo.namespace)).toBeUndefined();
    tried("a push of branch sneaky whose .github/sluice.yml says branch: sneaky", "nothing queued, nothing deployed");
  });

  it("takes command permissions from the default branch, not the pull request's base", async () => {
    const repo = repository("a");
    const strict = await commit(repo, {
      ".github/sluice.yml": config(repo, "commands:\n  permission: admin\n"),
      "manifests/cm.yaml": cm("a", "1"),
    });
    const lax = await commit(repo, {
      ".github/sluice.yml": config(repo, "commands:\n  permission: read\n"),
      "manifests/cm.yaml": cm("a", "1"),
    });
    h.github.setBranch(OWNER, repo.repo, "main", strict);
    h.github.setPull(OWNER, repo.repo, {
      number: 3,
      base: { sha: lax, ref: "main" },
      head: { sha: lax, ref: "feature" },
      state: "open",
      draft: false,
      merged: false,
    });
    h.github.setPermission(OWNER, repo.repo, "mallory", "write");
    await h.deliver("issue_comment", commentPayload(repo, 3, 9_001, "/sync", "mallory"));
    await expect
      .poll(() => h.github.comments.filter((c) => c.issue === 3 && c.user === "sluice[bot]").map((c) => c.body), { timeout: 10_000 })
      .toEqual([expect.stringContaining("needs **admin** permission")]);
    tried("/sync from a writer on a pull request whose base says permission: read", "refused: the default branch says admin");
  });

  it("makes every /sync a request of its own", async () => {
    const repo = repository("a");
    const head = await commit(repo, withNamespace(repo, { "manifests/cm.yaml": cm("a", "1") }));
    h.github.setBranch(OWNER, repo.repo, "main", head);
    h.github.setPull(OWNER, repo.repo, {
      number: 4,
      base: { sha: head, ref: "main" },
      head: { sha: head, ref: "feature" },
      state: "open",
      draft: false,
      merged: false,
    });
    h.github.setPermission(OWNER, repo.repo, "writer", "write");
    await h.deliver("issue_comment", commentPayload(repo, 4, 9_101, "/sync", "writer"));
    await expect.poll(() => deployRuns(head).length, { timeout: 60_000 }).toBe(1);
    await deployed(head);
    await h.deliver("issue_comment", commentPayload(repo, 4, 9_102, "/sync", "writer"));
    await expect.poll(() => deployRuns(head).length, { timeout: 60_000 }).toBe(2);
    const replies = h.github.comments.filter((c) => c.issue === 4 && c.user === "sluice[bot]").map((c) => c.body);
    expect(replies.filter((r) => r.includes("`production`: queued"))).toHaveLength(2);
  });
});

describe("whoever writes to Redis cannot deploy, replay or forge", () => {
  it("refuses deploy requests the app did not queue", async () => {
    const repo = repository("a");
    const target = await commit(repo, withNamespace(repo, { "manifests/cm.yaml": cm("forged", "1") }));
    const request = {
      version: 1,
      repository: { owner: OWNER, name: repo.repo, id: repo.repoId },
      installationId: 41,
      environment: "production",
      sha: target,
      reason: "sync",
      requestedBy: "mallory",
      createdAt: new Date(h.clock.now).toISOString(),
      trigger: "comment-1",
      sequence: h.clock.now + 1,
    };
    const queue = new Queue(DEPLOY_REQUEST_QUEUE, { connection: h.redis, prefix: QUEUE_PREFIX });
    try {
      const jobs = await Promise.all(
        [request, { request, mac: "A".repeat(43) }].map((data, i) =>
          queue.add("deploy", data, { jobId: `forged-${i}-${randomUUID()}`, attempts: 3 }),
        ),
      );
      for (const job of jobs) await expect.poll(async () => queue.getJobState(job.id ?? ""), { timeout: 20_000 }).toBe("failed");
      const reasons = await Promise.all(jobs.map(async (j) => (await queue.getJob(j.id ?? ""))?.failedReason));
      expect(reasons).toEqual([expect.stringContaining("no MAC"), expect.stringContaining("its MAC does not verify")]);
      expect(deployRuns(target)).toEqual([]);
      tried(
        "a deploy request written straight into the deploy-requests queue, without and with a made-up MAC",
        "both refused unread; nothing rendered or signed",
      );
    } finally {
      await queue.close();
    }
    // Nor can it make the app render and comment on a commit of its choosing.
    const previews = new Queue(PREVIEW_QUEUE, { connection: h.redis, prefix: QUEUE_PREFIX });
    try {
      const job = {
        repository: { owner: OWNER, name: repo.repo, id: repo.repoId },
        installationId: 41,
        pullRequest: 77,
        baseSha: target,
        headSha: target,
        baseRef: "main",
        draft: false,
        seq: 1,
        checkRunId: 1,
      };
      const added = await previews.add("preview", job, { jobId: `forged-preview-${randomUUID()}` });
      await expect.poll(async () => previews.getJobState(added.id ?? ""), { timeout: 20_000 }).toBe("failed");
      expect((await previews.getJob(added.id ?? ""))?.failedReason).toContain("no MAC");
      expect(h.github.comments.filter((c) => c.issue === 77)).toEqual([]);
    } finally {
      await previews.close();
    }
  });

  it("never applies a replayed or expired job, even with the newest-job marker forged", async () => {
    const repo = repository("a");
    const files = (value: string) => withNamespace(repo, { "manifests/cm.yaml": cm("settings", value) });
    const first = await commit(repo, files("one"));
    await merge(repo, first);
    expect((await deployed(first))?.conclusion).toBe("success");
    const second = await commit(repo, files("two"));
    await merge(repo, second);
    expect((await deployed(second))?.conclusion).toBe("success");
    const q = agentQueue("production");
    const queue = new Queue(q.name, { connection: h.redis, prefix: q.prefix });
    try {
      const completed = await queue.getJobs(["completed"]);
      const old = completed.find((j) => (j.id ?? "").includes(first));
      const newest = completed.find((j) => (j.id ?? "").includes(second));
      expect(old && newest).toBeTruthy();
      const oldEnvelope = old?.data as Envelope;
      const oldId = (JSON.parse(oldEnvelope.body) as { id: string }).id;
      // The attacker also points the newest-job marker at the old job, so it is not merely superseded.
      await h.redis.set(latestJobKey("production", repo.repoId), oldId);
      const replay = await queue.add("deploy", oldEnvelope, { jobId: `replay-${randomUUID()}`, attempts: 1 });
      await expect.poll(async () => queue.getJobState(replay.id ?? ""), { timeout: 30_000 }).toBe("failed");
      expect((await queue.getJob(replay.id ?? ""))?.failedReason).toMatch(
        /not newer than the last accepted job .* a replayed or out-of-order job is never applied/,
      );
      expect(((await live("ConfigMap", "settings", repo.namespace)) as { data: { value: string } }).data.value).toBe("two");
      // The old deploy's check run keeps its outcome: reports about a finished deploy change nothing.
      expect(deployRuns(first)[0]?.conclusion).toBe("success");
      // A fresh-enough job that has outlived its expiry is refused too.
      const newestId = (JSON.parse((newest?.data as Envelope).body) as { id: string }).id;
      await h.redis.set(latestJobKey("production", repo.repoId), newestId);
      h.clock.now += 16 * 60 * 1000;
      try {
        const stale = await queue.add("deploy", newest?.data as Envelope, { jobId: `stale-${randomUUID()}`, attempts: 1 });
        await expect.poll(async () => queue.getJobState(stale.id ?? ""), { timeout: 30_000 }).toBe("failed");
        expect((await queue.getJob(stale.id ?? ""))?.failedReason).toMatch(/expired at .*a stale job is never applied/);
      } finally {
        h.clock.now -= 16 * 60 * 1000;
      }
      tried(
        "re-adding last deploy's signed job (and forging the newest-job marker), then a signed job past its expiry",
        "both refused by the agent from its own record in the cluster; the live ConfigMap still says two",
      );
    } finally {
      await queue.close();
    }
  });

  it("drops a report signed by an agent key that is not bound to the environment", async () => {
    const repo = repository("a");
    const head = await commit(repo, withNamespace(repo, { "manifests/cm.yaml": cm("a", "1") }));
    await merge(repo, head);
    const run = await deployed(head);
    expect(run?.conclusion).toBe("success");
    const jobId = `merge-${repo.repoId}-production-${head}`;
    const report: AgentReport = {
      version: 1,
      jobId,
      repository: { owner: OWNER, name: repo.repo, id: repo.repoId },
      installationId: 41,
      environment: "production",
      sha: head,
      phase: "failed",
      message: "forged failure",
      at: new Date(h.clock.now).toISOString(),
    };
    // Mark the deploy open again (with the app's own record key, which a Redis writer does not
    // have), so only the key binding stands in the way.
    const records = new DeployRecords(h.redis, new RedisMac(WEBHOOK_SECRET), quiet);
    const record = await records.load(jobId);
    if (!record) throw new Error("the deploy has no record");
    await records.save(jobId, { ...record, completed: false });
    const reports = new Queue(REPORT_QUEUE.name, { connection: h.redis, prefix: REPORT_QUEUE.prefix });
    try {
      const added = await reports.add("report", seal("report", report, privateKeyFromPem(rogueKeys.privateKey)));
      await expect.poll(async () => reports.getJobState(added.id ?? ""), { timeout: 10_000 }).toBe("completed");
      expect(deployRuns(head)[0]?.conclusion).toBe("success");
      tried("a production report signed with the staging agent's key", "dropped; the check run still says success");
    } finally {
      await reports.close();
    }
  });
});

describe("Redis is not trusted with what a report changes on GitHub", () => {
  it("ignores a deploy record rewritten to point an agent's replayed report at another repository's check run", async () => {
    const victim = repository("b");
    const broken = await commit(victim, {
      ".github/sluice.yml": config(victim),
      "manifests/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
    });
    await merge(victim, broken);
    const victimRun = await deployed(broken);
    expect(victimRun?.conclusion).toBe("failure");
    const repo = repository("a");
    const head = await commit(repo, withNamespace(repo, { "manifests/cm.yaml": cm("a", "1") }));
    await merge(repo, head);
    expect((await deployed(head))?.conclusion).toBe("success");
    const jobId = `merge-${repo.repoId}-production-${head}`;
    const reports = new Queue(REPORT_QUEUE.name, { connection: h.redis, prefix: REPORT_QUEUE.prefix });
    try {
      // The agent's own signed "succeeded" report, still in the queue's history.
      const succeeded = async () =>
        (await reports.getCompleted(0, 1_000))
          .map((j) => j.data as Envelope)
          .find((e) => {
            const body = JSON.parse(e.body) as AgentReport;
            return body.jobId === jobId && body.phase === "succeeded";
          });
      await expect.poll(succeeded, { timeout: 10_000 }).toBeDefined();
      const signed = await succeeded();
      // The record, rewritten as a Redis writer could: open again, and about the victim's check run.
      const forged = {
        checkRunId: victimRun?.id,
        deploymentId: 0,
        repository: { owner: OWNER, name: victim.repo, id: victim.repoId },
        installationId: 41,
        environment: "production",
        sha: broken,
        reason: "merge",
        completed: false,
      };
      await h.redis.set(`sluice:deploy:${jobId}`, JSON.stringify(forged));
      const replay = await reports.add("report", signed);
      await expect.poll(async () => reports.getJobState(replay.id ?? ""), { timeout: 10_000 }).toBe("completed");
      expect(h.github.checkRuns.get(victimRun?.id ?? 0)?.conclusion).toBe("failure");
      tried(
        "rewriting a deploy record in Redis so a replayed success report lands on another repository's failed check run",
        "the record does not verify and the report is dropped; the victim's check run still says failure",
      );
    } finally {
      await reports.close();
    }
  });
});

describe("the agent decides scope and ownership from the cluster, not the manifest", () => {
  it("refuses a ClusterRoleBinding that claims a namespace, and kinds nobody serves", async () => {
    const repo = repository("a");
    const binding = `apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn-${repo.repoId}\n  namespace: ${repo.namespace}\nroleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }\nsubjects: [{ kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io }]\n`;
    const widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";
    const head = await commit(repo, withNamespace(repo, { "manifests/crb.yaml": binding, "manifests/widget.yaml": widget }));
    await merge(repo, head);
    const run = await deployed(head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.summary).toContain("cluster-scoped kind ClusterRoleBinding.rbac.authorization.k8s.io is not allowed");
    expect(run?.output?.summary).toContain("Widget w \\(example.com/v1\\): the API server does not serve this kind");
    expect(await live("ClusterRoleBinding", `pwn-${repo.repoId}`)).toBeUndefined();
    expect(await live("Namespace", repo.namespace)).toBeUndefined();
    tried(
      "a ClusterRoleBinding to cluster-admin with metadata.namespace set to my own namespace",
      "refused as a cluster-scoped kind; nothing was written",
    );
  });

  it("keeps each repository in its own namespaces and off objects another repository owns", async () => {
    const teamB = repository("b");
    const owned = await commit(teamB, withNamespace(teamB, { "manifests/cm.yaml": cm("shared", "b") }));
    await merge(teamB, owned);
    expect((await deployed(owned))?.conclusion).toBe("success");

    const teamA = repository("a");
    const across = await commit(teamA, withNamespace(teamA, { "manifests/cm.yaml": cm("shared", "a", teamB.namespace) }));
    await merge(teamA, across);
    const refused = await deployed(across);
    expect(refused?.conclusion).toBe("failure");
    expect(refused?.output?.summary).toContain(`namespace ${teamB.namespace} is not allowed for this repository`);

    const otherB = repository("b");
    const takeover = await commit(otherB, {
      ".github/sluice.yml": config(otherB).replace(`namespace: ${otherB.namespace}`, `namespace: ${teamB.namespace}`),
      "manifests/cm.yaml": cm("shared", "hijacked"),
    });
    await merge(otherB, takeover);
    const blocked = await deployed(takeover);
    expect(blocked?.conclusion).toBe("failure");
    expect(blocked?.output?.summary).toContain(`owned by ${OWNER}/${teamB.repo} \\(id ${teamB.repoId}\\)`);
    expect(((await live("ConfigMap", "shared", teamB.namespace)) as { data: { value: string } }).data.value).toBe("b");
    tried(
      "writing into another team's namespace, then overwriting another repository's ConfigMap in a namespace my team may use",
      "both refused; the ConfigMap is unchanged",
    );
  });

  it("keeps ownership through a rename, by repository id", async () => {
    const repo = repository("a");
    const first = await commit(repo, withNamespace(repo, { "manifests/cm.yaml": cm("kept", "1"), "manifests/old.yaml": cm("old", "1") }));
    await merge(repo, first);
    expect((await deployed(first))?.conclusion).toBe("success");
    // GitHub renames the repository; its id stays.
    const renamed = { ...repo, repo: `${repo.repo}-renamed` };
    h.github.addRepo(OWNER, renamed.repo, repo.repoId);
    const second = sha();
    await h.github.addCommit(
      OWNER,
      renamed.repo,
      second,
      await checkout(undefined, withNamespace(repo, { "manifests/cm.yaml": cm("kept", "2") })),
    );
    await merge(renamed, second);
    expect((await deployed(second))?.conclusion).toBe("success");
    expect(await live("ConfigMap", "old", repo.namespace)).toBeUndefined();
    expect(
      ((await live("ConfigMap", "kept", repo.namespace)) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[
        "sluice.dev/repository"
      ],
    ).toBe(`${OWNER}/${renamed.repo}`);
  });
});

describe("the webhook endpoint", () => {
  /**
   * POSTs `size` bytes to the webhook path and returns the status the app answered: with the size
   * declared, only the headers are sent (the app must answer from them alone); otherwise the body
   * streams in chunks until the app answers.
   */
  function post(size: number, declared: boolean): Promise<number> {
    return new Promise((resolve, reject) => {
      let status: number | undefined;
      const req = request(`${h.url}/api/github/webhooks`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-github-event": "push", ...(declared ? { "content-length": String(size) } : {}) },
      });
      req.on("response", (res) => {
        status = res.statusCode ?? 0;
        res.resume();
        resolve(status);
      });
      // Once the app has answered it drops the connection; a write failing after that is expected.
      req.on("error", (error) => {
        if (status === undefined) reject(error);
      });
      if (declared) {
        req.flushHeaders();
        return;
      }
      const chunk = Buffer.alloc(1024 * 1024, "x");
      let sent = 0;
      const write = (): void => {
        while (sent < size && status === undefined && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once("drain", write);
            return;
          }
        }
        if (status === undefined && !req.destroyed) req.end();
      };
      write();
    });
  }

  it("refuses bodies over GitHub's 25 MB before reading them, and keeps serving", async () => {
    expect(await post(26 * 1024 * 1024, true)).toBe(413);
    expect(await post(26 * 1024 * 1024, false)).toBe(413);
    const repo = repository("a");
    const head = await commit(repo, { "manifests/cm.yaml": cm("a", "1") });
    expect((await h.deliver("pull_request", pullRequestPayload(repo, "opened", 5, head, head))).status).toBe(200);
    tried("a 26 MB webhook body", "413 before any signature check; the next delivery was served");
  });
});
