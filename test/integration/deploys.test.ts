import { randomUUID } from "node:crypto";
import { ApiException, KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { agentQueue, objectsDigest, REPORT_QUEUE, type AgentJob, type AgentReport } from "../../src/core/agent-protocol.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys, privateKeyFromPem, seal } from "../../src/core/signing.ts";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { pushPayload as push } from "../helpers/payloads.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";

const OWNER = "sluice-test";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
let h: AppHarness;
let kube: KubernetesObjectApi;
const agents: RunningAgent[] = [];
const agentNamespace = `sluice-system-${randomUUID().slice(0, 6)}`;
const createdNamespaces: string[] = [];
let nextSha = 1;
let nextRepo = 5000;
const sha = (): string => (nextSha++).toString(16).padStart(40, "d");

async function agent(environments: string, healthTimeoutSeconds = 30): Promise<RunningAgent> {
  const settings = await loadAgentSettings({
    REDIS_URL: h.redisUrl,
    KUBECONFIG: inject("kubeconfigPath"),
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: environments,
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/*`,
    SLUICE_AGENT_NAMESPACES: "deploy-*",
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: agentNamespace,
    SLUICE_HEALTH_TIMEOUT_SECONDS: String(healthTimeoutSeconds),
  });
  const running = await startAgent(settings, { log: () => undefined, now: h.clock.read });
  agents.push(running);
  return running;
}

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 2,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    env: { SLUICE_DASHBOARD_TOKEN: DASHBOARD_TOKEN },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  await agent("production");
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await h.stop();
  for (const name of [agentNamespace, ...createdNamespaces])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

/** A repository whose `production` environment deploys `manifests/` to a fresh namespace on pushes to main. */
function repository(environment = "production", branch = "main"): { name: string; id: number; namespace: string; config: string } {
  const id = nextRepo++;
  const namespace = `deploy-${randomUUID().slice(0, 8)}`;
  createdNamespaces.push(namespace);
  h.github.addRepo(OWNER, `app-${id}`, id);
  return {
    name: `app-${id}`,
    id,
    namespace,
    config: `version: 1\nenvironments:\n  - name: ${environment}\n    path: manifests\n    namespace: ${namespace}\n    branch: ${branch}\n`,
  };
}

async function commit(repo: { name: string }, files: Record<string, string>): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, repo.name, id, await checkout(undefined, files));
  return id;
}

/** A push as GitHub delivers it, after the branch moved to `after`. */
function pushPayload(repo: { name: string; id: number }, after: string, ref = "refs/heads/main"): Record<string, unknown> {
  h.github.setBranch(OWNER, repo.name, ref.replace("refs/heads/", ""), after);
  return push({ owner: OWNER, repo: repo.name, repoId: repo.id, installation: 31 }, after, ref);
}

const namespaceYaml = (ns: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`;
const configMapYaml = (name: string, extra = "") =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}data:\n  key: value\n`;
const deploymentYaml = (replicas: number) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels: { app: web }\n  template:\n    metadata:\n      labels: { app: web }\n    spec:\n      containers:\n        - name: web\n          image: registry.invalid/web:1.0\n`;

const deployRuns = (head: string, environment = "production") =>
  [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === deployCheckName(environment));
async function finished(head: string, environment = "production") {
  await expect.poll(() => deployRuns(head, environment).map((r) => r.status), { timeout: 90_000, interval: 200 }).toEqual(["completed"]);
  return deployRuns(head, environment)[0];
}

async function exists(apiVersion: string, kind: string, name: string, namespace?: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await kube.read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } })) as unknown as Record<
      string,
      unknown
    >;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

const DASHBOARD_TOKEN = "dashboard-token-for-tests";

describe("deploys", () => {
  it("applies a merge and reports success on the check run, the Deployment and the pull request", async () => {
    const repo = repository();
    const head = await commit(repo, {
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/cm.yaml": configMapYaml("settings"),
      "manifests/web.yaml": deploymentYaml(0),
    });
    h.github.setPull(OWNER, repo.name, {
      number: 7,
      base: { sha: sha(), ref: "main" },
      head: { sha: head, ref: "feature" },
      state: "closed",
      draft: false,
      merged: true,
    });
    expect((await h.deliver("push", pushPayload(repo, head))).status).toBe(200);
    const run = await finished(head);
    expect(run?.conclusion).toBe("success");
    expect(run?.output?.text).toContain("| `Deployment deploy-");
    expect(run?.output?.summary).toMatch(/3 created/);
    const deployment = (await exists("apps/v1", "Deployment", "web", repo.namespace)) as {
      metadata: { labels: Record<string, string>; managedFields: { manager: string }[] };
    };
    expect(deployment.metadata.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "sluice",
      "sluice.dev/repository-id": String(repo.id),
      "sluice.dev/environment": "production",
    });
    expect((deployment.metadata as { annotations?: Record<string, string> }).annotations?.["sluice.dev/repository"]).toBe(
      `${OWNER}/app-${repo.id}`,
    );
    expect(deployment.metadata.managedFields.map((f) => f.manager)).toContain("sluice");
    const created = h.github.deploymentsCreated.find((d) => d.ref === head);
    expect(created).toMatchObject({ environment: "production", auto_merge: false, required_contexts: [] });
    // In progress from its first status (an "in progress" still waiting for its turn is replaced by the success).
    await expect
      .poll(() => h.github.deploymentStatuses.filter((s) => s.deploymentId === created?.id).map((s) => s.state), { timeout: 10_000 })
      .toEqual(expect.arrayContaining(["success"]));
    expect(["in_progress,success", "success"]).toContain(
      h.github.deploymentStatuses
        .filter((s) => s.deploymentId === created?.id)
        .map((s) => s.state)
        .join(),
    );
    expect(h.github.deploymentStatuses.at(-1)?.log_url).toBe(`https://github.example/${OWNER}/${repo.name}/runs/${run?.id ?? 0}`);
    await expect
      .poll(() => h.github.comments.filter((c) => c.issue === 7).map((c) => c.body), { timeout: 10_000 })
      .toEqual([expect.stringMatching(new RegExp(`^🚀 Deployed \`${head.slice(0, 7)}\` to \\*\\*production\\*\\* in \\d+ s`))]);

    // A redelivered push (same delivery) and a second delivery of the same commit change nothing.
    const before = h.github.calls("checks/create").length;
    await h.deliver("push", pushPayload(repo, head));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(h.github.calls("checks/create").length).toBe(before);
    expect(deployRuns(head)).toHaveLength(1);
  });

  it("queues the job before writing to GitHub, and applies reports only once their check run exists", async () => {
    const repo = repository();
    const head = await commit(repo, {
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/cm.yaml": configMapYaml("early"),
    });
    // GitHub is slow to create the check run: the agent applies meanwhile, and its reports wait.
    const release = h.github.pause("checks/create");
    try {
      expect((await h.deliver("push", pushPayload(repo, head))).status).toBe(200);
      await expect.poll(() => exists("v1", "ConfigMap", "early", repo.namespace), { timeout: 30_000, interval: 200 }).toBeDefined();
      expect(deployRuns(head)).toEqual([]);
    } finally {
      release();
    }
    expect((await finished(head))?.conclusion).toBe("success");
    expect(deployRuns(head)).toHaveLength(1);
    const created = h.github.deploymentsCreated.find((d) => d.ref === head);
    await expect
      .poll(() => h.github.deploymentStatuses.filter((s) => s.deploymentId === created?.id).map((s) => s.state), { timeout: 10_000 })
      .toEqual(expect.arrayContaining(["success"]));
    expect(["in_progress,success", "success"]).toContain(
      h.github.deploymentStatuses
        .filter((s) => s.deploymentId === created?.id)
        .map((s) => s.state)
        .join(),
    );
    // The check run's updates came in the agent's order, none of them before it was created (the
    // reports that waited meanwhile replace one another: what goes out is the newest).
    const updates = h.github.calls("checks/update").filter((c) => c.params.check_run_id === String(deployRuns(head)[0]?.id));
    const statuses = updates.map((c) => (c.body as { status?: string }).status);
    expect(statuses.at(-1)).toBe("completed");
    expect(statuses.slice(0, -1).filter((status) => status !== "in_progress")).toEqual([]);
  });

  it("applies each report once and never lets an older one overwrite a newer", async () => {
    // No agent serves `ordering`: the job waits, and the reports are the test's own, signed with the agent's key.
    const repo = repository("ordering");
    const head = await commit(repo, { ".github/sluice.yml": repo.config, "manifests/cm.yaml": configMapYaml("a") });
    expect((await h.deliver("push", pushPayload(repo, head))).status).toBe(200);
    await expect.poll(() => deployRuns(head, "ordering").map((r) => r.status), { timeout: 30_000 }).toEqual(["in_progress"]);
    const run = deployRuns(head, "ordering")[0];
    const jobId = run?.external_id ?? "";
    const reports = new Queue(REPORT_QUEUE.name, { connection: h.redis, prefix: REPORT_QUEUE.prefix });
    const start = Date.parse("2026-01-01T00:00:00Z");
    const send = async (phase: AgentReport["phase"], seconds: number, applied?: number): Promise<void> => {
      const report: AgentReport = {
        version: 1,
        jobId,
        repository: { owner: OWNER, name: repo.name, id: repo.id },
        installationId: 31,
        environment: "ordering",
        sha: head,
        phase,
        message: `${phase} ${applied ?? ""}`,
        ...(applied === undefined ? {} : { applied, total: 10 }),
        at: new Date(start + seconds * 1000).toISOString(),
      };
      const added = await reports.add("report", seal("report", report, privateKeyFromPem(agentKeys.privateKey)));
      await expect.poll(async () => reports.getJobState(added.id ?? ""), { timeout: 30_000 }).toBe("completed");
    };
    const messages = () =>
      h.github
        .calls("checks/update")
        .filter((c) => c.params.check_run_id === String(run?.id))
        .map((c) => (c.body as { output?: { title?: string } }).output?.title);
    try {
      await send("progress", 2, 5);
      // A report that does not end the deploy is applied at once; its write follows in its turn.
      await expect.poll(() => messages().length, { timeout: 10_000 }).toBe(1);
      const afterProgress = messages().length;
      // Delivered late, and twice: the start, and the same progress again.
      await send("started", 1, 0);
      await send("progress", 2, 5);
      expect(messages()).toHaveLength(afterProgress);
      await send("succeeded", 3, 10);
      await send("succeeded", 3, 10);
      await send("progress", 4, 10);
      expect(messages()).toHaveLength(afterProgress + 1);
      expect(deployRuns(head, "ordering")[0]).toMatchObject({ status: "completed", conclusion: "success" });
    } finally {
      await reports.close();
    }
  });

  it("writes nothing when the preflight dry-run fails", async () => {
    const repo = repository();
    await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: repo.namespace } });
    const head = await commit(repo, {
      ".github/sluice.yml": repo.config,
      "manifests/cm.yaml": configMapYaml("fine"),
      "manifests/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n    - port: 99999\n",
    });
    await h.deliver("push", pushPayload(repo, head));
    const run = await finished(head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.summary).toContain("nothing was written");
    expect(run?.output?.summary).toMatch(/Service deploy-[a-z0-9]+\/broken: dry-run failed: .*99999/);
    expect(await exists("v1", "ConfigMap", "fine", repo.namespace)).toBeUndefined();
  });

  it("refuses objects outside the agent's policy and writes nothing", async () => {
    const repo = repository();
    const head = await commit(repo, {
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/escape.yaml": configMapYaml("escape").replace("  name: escape\n", "  name: escape\n  namespace: kube-system\n"),
    });
    await h.deliver("push", pushPayload(repo, head));
    const run = await finished(head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.summary).toContain("refused by the agent's policy; nothing was written");
    expect(run?.output?.summary).toContain(
      "ConfigMap kube-system/escape: namespace kube-system is not allowed for this repository \\(allowed: deploy-\\*\\)",
    );
    expect(await exists("v1", "Namespace", repo.namespace)).toBeUndefined();
  });

  it("prunes what left the manifests, except objects annotated sluice.dev/prune: disabled", async () => {
    const repo = repository();
    const files = {
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/keep.yaml": configMapYaml("keep"),
    };
    const first = await commit(repo, {
      ...files,
      "manifests/gone.yaml": configMapYaml("gone"),
      "manifests/held.yaml": configMapYaml("held", "  annotations:\n    sluice.dev/prune: disabled\n"),
    });
    await h.deliver("push", pushPayload(repo, first));
    expect((await finished(first))?.conclusion).toBe("success");
    const second = await commit(repo, files);
    await h.deliver("push", pushPayload(repo, second));
    const run = await finished(second);
    expect(run?.conclusion).toBe("success");
    expect(run?.output?.text).toMatch(/`ConfigMap deploy-[a-z0-9]+\/gone` \| 🔴 pruned/);
    expect(run?.output?.text).toContain("sluice.dev/prune: disabled; not pruned");
    await expect.poll(() => exists("v1", "ConfigMap", "gone", repo.namespace), { timeout: 10_000 }).toBeUndefined();
    expect(await exists("v1", "ConfigMap", "held", repo.namespace)).toBeDefined();
    expect(await exists("v1", "ConfigMap", "keep", repo.namespace)).toBeDefined();
  });

  it("fails with each unhealthy object named when health waiting times out", async () => {
    await agent("canary", 4);
    const repo = repository("canary");
    const head = await commit(repo, {
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/web.yaml": deploymentYaml(1),
    });
    await h.deliver("push", pushPayload(repo, head));
    const run = await finished(head, "canary");
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.summary).toMatch(
      /health check timed out after 4 s; not healthy:\n- Deployment deploy-[a-z0-9]+\/web: 0 of 1 replicas (available|updated)/,
    );
  });

  it("supersedes a queued deploy with a newer commit and links the newer check run", async () => {
    const repo = repository("qa");
    const files = (n: string) => ({
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/cm.yaml": configMapYaml(`v${n}`),
    });
    const older = await commit(repo, files("1"));
    const newer = await commit(repo, files("2"));
    await h.deliver("push", pushPayload(repo, older));
    await expect.poll(() => deployRuns(older, "qa").map((r) => r.status), { timeout: 30_000 }).toEqual(["in_progress"]);
    await h.deliver("push", pushPayload(repo, newer));
    await expect.poll(() => deployRuns(newer, "qa").map((r) => r.status), { timeout: 30_000 }).toEqual(["in_progress"]);
    await expect
      .poll(() => h.github.deploymentsCreated.filter((d) => d.ref === newer || d.ref === older).length, { timeout: 30_000 })
      .toBe(2);
    await agent("qa");
    const superseded = await finished(older, "qa");
    expect(superseded?.conclusion).toBe("cancelled");
    expect(superseded?.output?.summary).toContain(
      `Superseded by [\`${newer.slice(0, 7)}\`](https://github.example/${OWNER}/${repo.name}/runs/${deployRuns(newer, "qa")[0]?.id ?? 0})`,
    );
    expect((await finished(newer, "qa"))?.conclusion).toBe("success");
    expect(await exists("v1", "ConfigMap", "v1", repo.namespace)).toBeUndefined();
    expect(await exists("v1", "ConfigMap", "v2", repo.namespace)).toBeDefined();
  });

  it("carries large object sets as a content-addressed blob", async () => {
    const repo = repository();
    const many = Array.from({ length: 150 }, (_, i) =>
      configMapYaml(`cm-${i}`).replace("  key: value\n", `  key: ${"v".repeat(2_000)}\n`),
    ).join("---\n");
    const head = await commit(repo, {
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/many.yaml": many,
    });
    await h.deliver("push", pushPayload(repo, head));
    const run = await finished(head);
    expect(run?.conclusion).toBe("success");
    expect(run?.output?.summary).toMatch(/151 created/);
    const q = agentQueue("production");
    const queue = new Queue(q.name, { connection: h.redis, prefix: q.prefix });
    try {
      const job = await queue.getJob(`merge-${repo.id}-production-${head}`);
      const envelope = job?.data as { body: string };
      expect(JSON.parse(envelope.body)).toMatchObject({
        objects: { blob: expect.stringMatching(/^\{sluice-production\}:blob:[0-9a-f]{64}$/) as string },
      });
    } finally {
      await queue.close();
    }
  });

  it("reports an immutable field change clearly, and recreates the object when annotated", async () => {
    const repo = repository();
    // A Deployment's selector cannot change once set.
    const job = (selector: string, annotation = "") =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: migrate\n${annotation}spec:\n  replicas: 0\n  selector:\n    matchLabels: { step: ${selector} }\n  template:\n    metadata:\n      labels: { step: ${selector} }\n    spec:\n      containers:\n        - name: m\n          image: registry.invalid/migrate:1\n`;
    const files = {
      ".github/sluice.yml": repo.config.replace("    branch: main\n", "    branch: main\n"),
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
    };
    const first = await commit(repo, { ...files, "manifests/job.yaml": job("one") });
    await h.deliver("push", pushPayload(repo, first));
    expect((await finished(first))?.conclusion).toBe("success");
    const changed = await commit(repo, { ...files, "manifests/job.yaml": job("two") });
    await h.deliver("push", pushPayload(repo, changed));
    const refused = await finished(changed);
    expect(refused?.conclusion).toBe("failure");
    expect(refused?.output?.summary).toMatch(
      /Deployment deploy-[a-z0-9]+\/migrate: dry-run failed: .*immutable.*annotate it with sluice.dev\/force: enabled/s,
    );
    const forced = await commit(repo, { ...files, "manifests/job.yaml": job("two", "  annotations:\n    sluice.dev/force: enabled\n") });
    await h.deliver("push", pushPayload(repo, forced));
    const recreated = await finished(forced);
    expect(recreated?.conclusion).toBe("success");
    expect(recreated?.output?.text).toMatch(/`Deployment deploy-[a-z0-9]+\/migrate` \| 🟢 created/);
    const live = (await exists("apps/v1", "Deployment", "migrate", repo.namespace)) as {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    expect(live.spec.template.metadata.labels.step).toBe("two");
  });

  it("rejects forged and tampered jobs without touching the cluster", async () => {
    const namespace = `deploy-${randomUUID().slice(0, 8)}`;
    createdNamespaces.push(namespace);
    const objects = [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }];
    const job: AgentJob = {
      version: 1,
      id: `merge-1-production-${"e".repeat(40)}`,
      repository: { owner: OWNER, name: "forged", id: 1 },
      installationId: 31,
      environment: "production",
      sha: "e".repeat(40),
      reason: "merge",
      requestedBy: "mallory",
      createdAt: new Date().toISOString(),
      settings: { namespace, prune: true, allowEmpty: false, selfHeal: false, driftIgnore: [] },
      sequence: h.clock.now,
      hold: "keep",
      signedAt: new Date(h.clock.now).toISOString(),
      expiresAt: new Date(h.clock.now + 600_000).toISOString(),
      digest: objectsDigest(objects),
      objects: { inline: objects },
    };
    const q = agentQueue("production");
    const queue = new Queue(q.name, { connection: h.redis, prefix: q.prefix });
    try {
      const forged = seal("job", job, privateKeyFromPem(generateSigningKeys().privateKey));
      const genuine = seal("job", job, privateKeyFromPem(appKeys.privateKey));
      const tampered = { ...genuine, body: genuine.body.replace(namespace, "deploy-tampered") };
      const badDigest = seal("job", { ...job, digest: "0".repeat(64) }, privateKeyFromPem(appKeys.privateKey));
      const added = await Promise.all(
        [forged, tampered, badDigest].map((data, i) => queue.add("deploy", data, { jobId: `attack-${i}-${randomUUID()}`, attempts: 3 })),
      );
      for (const bullJob of added) {
        await expect.poll(async () => await queue.getJobState(bullJob.id ?? ""), { timeout: 30_000 }).toBe("failed");
      }
      const reasons = await Promise.all(added.map(async (j) => (await queue.getJob(j.id ?? ""))?.failedReason));
      expect(reasons[0]).toContain("signature does not verify");
      expect(reasons[1]).toContain("signature does not verify");
      expect(reasons[2]).toContain("does not match the signed digest");
      // None of them was retried, and nothing was written.
      expect(await Promise.all(added.map(async (j) => (await queue.getJob(j.id ?? ""))?.attemptsMade))).toEqual([1, 1, 1]);
      expect(await exists("v1", "Namespace", namespace)).toBeUndefined();
      expect(await exists("v1", "Namespace", "deploy-tampered")).toBeUndefined();
    } finally {
      await queue.close();
    }
  });

  it("shows the queues on a read-only dashboard behind its token, without the objects a job carries", async () => {
    const repo = repository();
    const head = await commit(repo, {
      ".github/sluice.yml": repo.config,
      "manifests/ns.yaml": namespaceYaml(repo.namespace),
      "manifests/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: dashboard-secret-value\n",
    });
    expect((await h.deliver("push", pushPayload(repo, head))).status).toBe(200);
    expect((await finished(head))?.conclusion).toBe("success");
    const dashboard = `${h.url}/sluice/queues`;
    const as = (password: string) => ({ authorization: `Basic ${Buffer.from(`ops:${password}`).toString("base64")}` });
    expect((await fetch(dashboard)).status).toBe(401);
    expect((await fetch(dashboard, { headers: as("not-the-dashboard-token") })).status).toBe(401);
    const page = await fetch(dashboard, { headers: as(DASHBOARD_TOKEN) });
    expect([page.status, page.headers.get("content-type")]).toEqual([200, expect.stringContaining("text/html")]);
    const api = await fetch(`${dashboard}/api/queues?activeQueue=deploy-production&status=completed&page=1&jobsPerPage=50`, {
      headers: as(DASHBOARD_TOKEN),
    });
    const text = await api.text();
    const listed = (JSON.parse(text) as { queues: { name: string; readOnlyMode: boolean }[] }).queues;
    expect(listed.map((q) => q.name)).toEqual(
      expect.arrayContaining(["preview-render", "deploy-requests", "agent-reports", "deploy-production"]),
    );
    expect(listed.every((q) => q.readOnlyMode)).toBe(true);
    expect(text).toContain("objects, not shown");
    expect(text).not.toContain("dashboard-secret-value");
    expect(text).not.toContain(Buffer.from("dashboard-secret-value").toString("base64"));
    // Read-only: nothing can be retried, cleaned or removed from here.
    const clean = await fetch(`${dashboard}/api/queues/deploy-production/clean/completed`, { method: "PUT", headers: as(DASHBOARD_TOKEN) });
    expect(clean.status).toBe(405);
  });
});
