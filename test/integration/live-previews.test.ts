import { randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { agentHeartbeatKey, livePreviewQueue } from "../../src/core/agent-protocol.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { InventoryStore } from "../../src/agent/inventory-store.ts";
import { Cluster } from "../../src/agent/kube/cluster.ts";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { DriftSummaries } from "../../src/app/drift/drift-summaries.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { pullRequestPayload, pushPayload } from "../helpers/payloads.ts";

// Live previews end to end: the app and an agent on the real Redis and apiserver, GitHub faked
// (and checked against its OpenAPI description). The agent dry-runs a pull request's head against
// the live cluster, through the real admission chain, and the comment and check run show it.

const OWNER = "live-test";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const INSTALLATION = 61;
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent;
const agentNamespace = `sluice-live-${randomUUID().slice(0, 6)}`;
const suffix = randomUUID().slice(0, 6);
const cleanup: KubernetesObject[] = [];
let nextSha = 1;
let nextRepo = 8100;
let nextPull = 1;
const sha = (): string => (nextSha++).toString(16).padStart(40, "e");

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 6,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    env: { SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS: "3" },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  // The cluster's own admission policy: no `:latest` images in namespaces labelled for it.
  const policy = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: `no-latest-${suffix}` },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [{ apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments"] }],
      },
      validations: [
        {
          expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))",
          message: "images must be pinned: :latest is not allowed",
        },
      ],
    },
  };
  const binding = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: `no-latest-${suffix}` },
    spec: {
      policyName: `no-latest-${suffix}`,
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: { matchLabels: { "live-test": suffix } } },
    },
  };
  await kube.create(policy);
  await kube.create(binding);
  cleanup.push(binding, policy);
  agent = await startAgent(await agentSettings("production"), { log: () => undefined, now: h.clock.read });
});
afterAll(async () => {
  await agent.stop();
  await h.stop();
  for (const object of [...cleanup, { apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } }])
    await kube.delete(object).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

function agentSettings(environments: string) {
  return loadAgentSettings({
    REDIS_URL: h.redisUrl,
    KUBECONFIG: inject("kubeconfigPath"),
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: environments,
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/*=live-*`,
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: agentNamespace,
    SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
    SLUICE_DRIFT_INTERVAL_SECONDS: "2",
  });
}

interface Repo {
  owner: string;
  repo: string;
  repoId: number;
  installation: number;
  namespace: string;
}

function repository(): Repo {
  const repoId = nextRepo++;
  const namespace = `live-${randomUUID().slice(0, 8)}`;
  cleanup.push({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  h.github.addRepo(OWNER, `svc-${repoId}`, repoId);
  h.github.setPermission(OWNER, `svc-${repoId}`, "alice", "write");
  h.github.setPermission(OWNER, `svc-${repoId}`, "mallory", "read");
  return { owner: OWNER, repo: `svc-${repoId}`, repoId, installation: INSTALLATION, namespace };
}

const config = (repo: Repo, production = "") =>
  `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${repo.namespace}\n    branch: main\n    prune: true\n${production}  - name: staging\n    path: manifests\n    namespace: ${repo.namespace}-staging\n    branch: main\n    autoDeploy: false\n`;
const namespace = (repo: Repo) =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${repo.namespace}\n  labels:\n    live-test: "${suffix}"\n`;
const configMap = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  key: "${value}"\n`;
const secret = (password: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: ${password}\n`;
const deployment = (image: string) =>
  `# the web front end\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: { app: web }\n  template:\n    metadata:\n      labels: { app: web }\n    spec:\n      containers:\n        - name: web\n          image: ${image}\n`;

async function commit(repo: Repo, files: Record<string, string>): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, repo.repo, id, await checkout(undefined, files));
  return id;
}

async function deployed(repo: Repo, head: string): Promise<void> {
  h.github.setBranch(OWNER, repo.repo, "main", head);
  await h.deliver("push", pushPayload(repo, head));
  const run = () => [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === deployCheckName("production"));
  await expect.poll(() => run()?.conclusion, { timeout: 90_000, interval: 200 }).toBe("success");
}

async function open(repo: Repo, base: string, head: string, extra: { fork?: boolean; author?: string } = {}): Promise<number> {
  const number = nextPull++;
  await h.deliver("pull_request", pullRequestPayload(repo, "opened", number, base, head, { author: "alice", ...extra }));
  return number;
}

const commentOn = (number: number) => h.github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.body ?? "";
const previewRun = (head: string) => [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === "sluice/preview");

describe("live previews", () => {
  it("shows what merging changes in the live cluster, masks Secrets, lists prunes, and fails on what admission would refuse", async () => {
    const repo = repository();
    const base = await commit(repo, {
      ".github/sluice.yml": config(repo),
      "manifests/ns.yaml": namespace(repo),
      "manifests/settings.yaml": configMap("settings", "v1"),
      "manifests/old.yaml": configMap("old", "gone-soon"),
      "manifests/secret.yaml": secret("old-password-1"),
    });
    await deployed(repo, base);
    const head = await commit(repo, {
      ".github/sluice.yml": config(repo),
      "manifests/ns.yaml": namespace(repo),
      "manifests/settings.yaml": configMap("settings", "v2"),
      "manifests/ports.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ports\ndata:\n  http: 8080\n",
      "manifests/secret.yaml": secret("new-password-2"),
      "manifests/web.yaml": deployment("nginx:latest"),
    });
    const number = await open(repo, base, head);
    await expect.poll(() => commentOn(number), { timeout: 60_000, interval: 200 }).toContain("would change live");
    const body = commentOn(number);
    expect(body).toContain(`**\`production\`**: 2 objects would change live, 1 would be pruned, 2 would be refused`);
    expect(body).toContain(`- ❌ \`Deployment ${repo.namespace}/web\` refused by the API server:`);
    expect(body).toContain("images must be pinned: :latest is not allowed");
    // A value the kind's schema does not take is refused for good, not retried as a server error.
    expect(body).toContain(`- ❌ \`ConfigMap ${repo.namespace}/ports\` refused by the API server:`);
    expect(body).toContain(".data.http: expected string");
    expect(body).toContain(`- 🔴 \`ConfigMap ${repo.namespace}/old\` would be pruned`);
    expect(body).toContain("-  key: v1\n+  key: v2");
    expect(body).toContain(`live configure <code>Secret ${repo.namespace}/db</code>`);
    // The agent masks Secret values before anything leaves the cluster: neither the values nor their base64.
    for (const value of ["old-password-1", "new-password-2"]) {
      expect(body).not.toContain(value);
      expect(body).not.toContain(Buffer.from(value).toString("base64"));
    }
    // No agent serves staging: said plainly, and the git diff is there all the same.
    expect(body).toContain("**`staging`**: ⚠️ no agent is online for it; this compares the two commits only.");
    expect(body).toContain("+  key: v2");
    // Admission feedback before merge: the check run fails, annotated on the Deployment's file and line.
    await expect.poll(() => previewRun(head)?.conclusion, { timeout: 30_000 }).toBe("failure");
    const annotations = h.github
      .calls("checks/update")
      .flatMap(
        (c) => (c.body as { output?: { annotations?: { path: string; start_line: number; message: string }[] } }).output?.annotations ?? [],
      );
    expect(annotations).toContainEqual(
      expect.objectContaining({
        path: "manifests/web.yaml",
        start_line: 2,
        message: expect.stringContaining("images must be pinned") as unknown,
      }),
    );
    // The full diff page has the live tab, masked the same way.
    const link = /\[full diff\]\((http[^)]+)\)/.exec(commentOn(number))?.[1];
    const page = await (await fetch(link ?? "")).text();
    expect(page).toContain('<section id="live"><h2>Live cluster</h2>');
    expect(page).toContain("images must be pinned: :latest is not allowed");
    expect(page).toContain(`would be pruned: <code>ConfigMap ${repo.namespace}/old</code>`);
    for (const value of ["old-password-1", "new-password-2"]) expect(page).not.toContain(value);
    // Nothing was written to the cluster.
    const live = (await kube.read({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "settings", namespace: repo.namespace },
    })) as unknown as { data: Record<string, string> };
    expect(live.data.key).toBe("v1");
    await expect(
      kube.read({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: repo.namespace } }),
    ).rejects.toThrow();
  });

  it("sends nothing to the cluster for a fork's pull request or an author without the commands permission", async () => {
    const repo = repository();
    const base = await commit(repo, {
      ".github/sluice.yml": config(repo),
      "manifests/ns.yaml": namespace(repo),
      "manifests/a.yaml": configMap("a", "1"),
    });
    await deployed(repo, base);
    const head = await commit(repo, {
      ".github/sluice.yml": config(repo),
      "manifests/ns.yaml": namespace(repo),
      "manifests/a.yaml": configMap("a", "2"),
    });
    h.github.setPermission(OWNER, repo.repo, "mallory", "read");
    const queue = new Queue(livePreviewQueue("production").name, { connection: h.redis, prefix: livePreviewQueue("production").prefix });
    try {
      const before = await queue.count();
      const fork = await open(repo, base, head, { fork: true });
      const reader = await open(repo, base, head, { author: "mallory" });
      await expect
        .poll(() => commentOn(fork), { timeout: 60_000 })
        .toContain("pull requests from forks never send their content to a cluster");
      await expect
        .poll(() => commentOn(reader), { timeout: 60_000 })
        .toContain("mallory\\) has read permission and live previews need write");
      const jobs = await queue.getJobs(["waiting", "active", "completed", "failed", "delayed"]);
      expect(jobs.filter((j) => j.id?.includes(`-${repo.repoId}-`))).toEqual([]);
      expect(await queue.count()).toBeLessThanOrEqual(before);
    } finally {
      await queue.close();
    }
  });

  it("says when no agent answered in time, and a late answer still updates the comment", async () => {
    const repo = repository();
    const base = await commit(repo, { ".github/sluice.yml": config(repo), "manifests/a.yaml": configMap("a", "1") });
    const head = await commit(repo, { ".github/sluice.yml": config(repo), "manifests/a.yaml": configMap("a", "2") });
    h.github.setBranch(OWNER, repo.repo, "main", base);
    // Staging looks served (a heartbeat, as Redis can say anything), but no agent takes its requests.
    await h.redis.set(agentHeartbeatKey("staging"), "1", "EX", 120);
    try {
      const number = await open(repo, base, head);
      await expect
        .poll(() => commentOn(number), { timeout: 60_000, interval: 200 })
        .toContain("**`staging`**: ⚠️ no agent answered within 3 s");
      // An agent for staging comes up late, takes the waiting request, and its answer replaces the notice.
      const late = await startAgent(await agentSettings("staging"), { log: () => undefined, now: h.clock.read });
      try {
        await expect
          .poll(() => commentOn(number), { timeout: 60_000, interval: 200 })
          .toContain("**`staging`**: 0 objects would change live, 0 would be pruned, 1 would be refused");
        expect(commentOn(number)).not.toContain("no agent answered");
      } finally {
        await late.stop();
      }
    } finally {
      await h.redis.del(agentHeartbeatKey("staging"));
    }
  });
});

/** Changes a live ConfigMap's data the way a person or a controller would: an update under another field manager. */
async function editLive(repo: Repo, name: string, data: Record<string, string>, fieldManager: string): Promise<void> {
  const live = (await kube.read({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: repo.namespace },
  })) as unknown as KubernetesObject & { data: Record<string, string> };
  await kube.replace({ ...live, data: { ...live.data, ...data } } as KubernetesObject, undefined, undefined, fieldManager);
}

const driftRun = (head: string) =>
  [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === "sluice/drift (production)");

/** A repository whose production environment heals drift, deployed with one ConfigMap. */
async function healingRepository(): Promise<{ repo: Repo; base: string }> {
  const repo = repository();
  const files = {
    ".github/sluice.yml": config(repo, "    selfHeal: true\n"),
    "manifests/ns.yaml": namespace(repo),
    "manifests/settings.yaml": configMap("settings", "v1"),
  };
  const base = await commit(repo, files);
  await deployed(repo, base);
  return { repo, base };
}

describe("drift", () => {
  it("reports what someone changed by hand, not what the cluster's controllers own, on sluice/drift and on open pull requests", async () => {
    const repo = repository();
    const files = {
      ".github/sluice.yml": config(repo),
      "manifests/ns.yaml": namespace(repo),
      "manifests/settings.yaml": configMap("settings", "v1"),
    };
    const base = await commit(repo, files);
    await deployed(repo, base);
    await expect.poll(() => driftRun(base)?.output?.title, { timeout: 30_000, interval: 200 }).toBe("In sync");
    const head = await commit(repo, { ...files, "manifests/other.yaml": configMap("other", "1") });
    const number = await open(repo, base, head);
    await expect.poll(() => commentOn(number), { timeout: 60_000 }).toContain("would change live");
    // A controller's field is not drift; a person's edit of a field Sluice applied is.
    await editLive(repo, "settings", { extra: "from-a-controller" }, "kube-controller-manager");
    await editLive(repo, "settings", { key: "by-hand" }, "kubectl-edit");
    await expect.poll(() => driftRun(base)?.output?.title, { timeout: 30_000, interval: 200 }).toBe("1 object drifted");
    const run = driftRun(base);
    expect(run?.conclusion).toBe("neutral");
    expect(run?.output?.summary).toContain(`| \`ConfigMap ${repo.namespace}/settings\` | changed |`);
    expect(run?.output?.text).toContain("-  key: v1\n+  key: by-hand");
    expect(run?.output?.text).not.toContain("from-a-controller");
    await expect
      .poll(() => commentOn(number), { timeout: 30_000 })
      .toContain(
        `- ⚠️ drifted from the last deploy (\`${base.slice(0, 7)}\`), changed in the cluster by hand: \`ConfigMap ${repo.namespace}/settings\`.`,
      );
    // A pull request that does not touch the drifted object still shows that merging puts it back:
    // an object someone else changed is always dry-run, never taken as unchanged.
    const again = await open(repo, base, head);
    await expect.poll(() => commentOn(again), { timeout: 60_000 }).toContain("-  key: by-hand\n+  key: v1");
  });

  it("heals drift when the environment asks for it, and says so on sluice/drift", async () => {
    const { repo, base } = await healingRepository();
    await expect.poll(() => driftRun(base)?.output?.title, { timeout: 30_000, interval: 200 }).toBe("In sync");
    await editLive(repo, "settings", { key: "by-hand" }, "kubectl-edit");
    await expect
      .poll(() => driftRun(base)?.output?.summary ?? "", { timeout: 30_000, interval: 200 })
      .toContain(`applied \`ConfigMap ${repo.namespace}/settings\` again`);
    const live = (await kube.read({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "settings", namespace: repo.namespace },
    })) as unknown as { data: Record<string, string> };
    expect(live.data.key).toBe("v1");
    // The heal is in the environment's history, in the cluster.
    const cluster = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 50 });
    try {
      const inventory = await new InventoryStore(cluster, agentNamespace).read(repo.repoId, "production");
      expect(inventory?.heals[0]).toMatchObject({
        jobId: `merge-${repo.repoId}-production-${base}`,
        objects: [expect.objectContaining({ kind: "ConfigMap", name: "settings" })],
      });
    } finally {
      cluster.close();
    }
  });

  it("stops healing an object that something keeps changing back, and says so", async () => {
    const { repo, base } = await healingRepository();
    const value = async () =>
      (
        (await kube.read({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "settings", namespace: repo.namespace },
        })) as unknown as { data: Record<string, string> }
      ).data.key;
    // Three times healed...
    for (let round = 1; round <= 3; round++) {
      await editLive(repo, "settings", { key: `fight-${round}` }, "kubectl-edit");
      await expect.poll(value, { timeout: 30_000, interval: 200 }).toBe("v1");
    }
    // ...the fourth change stays, and the check run says why.
    await editLive(repo, "settings", { key: "fight-4" }, "kubectl-edit");
    await expect
      .poll(() => driftRun(base)?.output?.summary ?? "", { timeout: 30_000, interval: 200 })
      .toContain(`self-heal stopped healing \`ConfigMap ${repo.namespace}/settings\`: something keeps changing it back`);
    expect(await value()).toBe("fight-4");
  });
});

describe("the drift-summary store", () => {
  it("gives back the summary a drift report saved, and nothing for an environment never reported or sealed with another secret", async () => {
    // Arrange: one store on the app's Redis database, and one whose MAC secret differs.
    const store = new DriftSummaries(h.redis, new RedisMac("drift-summaries-test-secret"));
    const other = new DriftSummaries(h.redis, new RedisMac("another-secret"));
    const repositoryId = nextRepo++;
    const summary = { sha: sha(), objects: ["ConfigMap drift/settings"], healing: false };
    // Act
    await store.save(repositoryId, "staging", { sha: summary.sha, checkRunId: 7, fingerprint: "f", summary });
    // Assert
    expect(await store.summary(repositoryId, "staging")).toEqual(summary);
    expect(await store.summary(repositoryId, "production")).toBeUndefined();
    expect(await other.summary(repositoryId, "staging")).toBeUndefined();
  });
});
