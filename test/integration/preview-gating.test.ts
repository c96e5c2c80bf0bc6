import { randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { agentHeartbeatKey } from "../../src/core/agent-protocol.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { testAgentSettings } from "../helpers/agent-settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { examplePayload, startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { FakeGitHub } from "../helpers/fake-github.ts";
import { commentPayload, pullRequestPayload } from "../helpers/payloads.ts";

// sluice/preview is a gating check: branch protection, GitHub's auto-merge or a reviewer who merges
// on green take its first conclusion as final. These tests record every check-run write the app
// sends to (fake) GitHub for one head, with the real agent answering from the real apiserver,
// whose admission policy refuses `:latest` images, and hold the app to one rule: a check never
// goes from passing to failing.

const OWNER = "gate-test";
const INSTALLATION = 73;
const PREVIEW = "sluice/preview";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const suffix = randomUUID().slice(0, 6);
const agentNamespace = `sluice-gate-${suffix}`;
const policyName = `gate-no-latest-${suffix}`;
const cleanup: KubernetesObject[] = [];
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent;
let nextSha = 1;
let nextRepo = 8700;
let nextPull = 1;
let nextComment = 1;
const sha = (): string => (nextSha++).toString(16).padStart(40, "a");

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
    database: 9,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    // Long enough that a loaded machine's agent still answers within it where an answer is
    // expected; the tests of a wait that ends simply wait it out.
    env: { SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS: "15" },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  const namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } };
  await kube.create(namespace);
  cleanup.push(namespace);
  // The cluster's admission policy, as in the issue's measurement: no `:latest` images in the namespaces labelled for it.
  const policy = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: policyName },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [{ apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments"] }],
      },
      validations: [
        { expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))", message: "images must be pinned" },
      ],
    },
  };
  const binding = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: policyName },
    spec: { policyName, validationActions: ["Deny"], matchResources: { namespaceSelector: { matchLabels: { "gate-test": suffix } } } },
  };
  await kube.create(policy);
  await kube.create(binding);
  cleanup.push(binding, policy);
  agent = await startAgent(await agentSettings("production"), { log: () => undefined, now: h.clock.read });
});
afterAll(async () => {
  await agent.stop();
  await h.stop();
  for (const object of cleanup) await kube.delete(object).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

function agentSettings(environments: string) {
  return testAgentSettings(agentBase(), {
    SLUICE_AGENT_ENVIRONMENTS: environments,
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/*=gate-*`,
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: agentNamespace,
  });
}

interface Repo {
  owner: string;
  repo: string;
  repoId: number;
  installation: number;
  namespace: string;
}

/** A repository whose production namespace exists, labelled for the admission policy; alice may write, mallory only read. */
async function repository(): Promise<Repo> {
  const repoId = nextRepo++;
  const namespace = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: `gate-${randomUUID().slice(0, 8)}`, labels: { "gate-test": suffix } },
  };
  await kube.create(namespace);
  cleanup.unshift(namespace);
  h.github.addRepo(OWNER, `svc-${repoId}`, repoId);
  h.github.setPermission(OWNER, `svc-${repoId}`, "alice", "write");
  h.github.setPermission(OWNER, `svc-${repoId}`, "mallory", "read");
  return { owner: OWNER, repo: `svc-${repoId}`, repoId, installation: INSTALLATION, namespace: namespace.metadata.name };
}

const productionConfig = (repo: Repo) =>
  `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${repo.namespace}\n    branch: main\n`;
/** Staging: no agent serves it but its heartbeat, so its live answer comes after the wait, or never. */
const stagingConfig = (repo: Repo, previews = "") =>
  `version: 1\nenvironments:\n  - name: staging\n    path: manifests\n    namespace: ${repo.namespace}-staging\n    branch: main\n${previews}`;
const configMap = (value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: "${value}"\n`;
const deployment = (image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: { app: web }\n  template:\n    metadata:\n      labels: { app: web }\n    spec:\n      containers:\n        - name: web\n          image: ${image}\n`;

async function commit(repo: Repo, files: Record<string, string>): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, repo.repo, id, await checkout(undefined, files));
  return id;
}

/** The base (the default branch's head) and a head whose Deployment the cluster's admission policy refuses. */
async function refusedChange(repo: Repo, tag = "1"): Promise<{ base: string; head: string }> {
  const base = await commit(repo, { ".github/sluice.yml": productionConfig(repo), "manifests/settings.yaml": configMap("v1") });
  h.github.setBranch(OWNER, repo.repo, "main", base);
  const head = await commit(repo, {
    ".github/sluice.yml": productionConfig(repo),
    "manifests/settings.yaml": configMap(`v2-${tag}`),
    "manifests/web.yaml": deployment("nginx:latest"),
  });
  return { base, head };
}

/** Opens a pull request from alice, as the webhook and `pulls/get` both show it. */
async function open(repo: Repo, base: string, head: string): Promise<number> {
  const number = nextPull++;
  setPull(repo, number, base, head);
  await h.deliver("pull_request", pullRequestPayload(repo, "opened", number, base, head, { author: "alice" }));
  return number;
}

function setPull(repo: Repo, number: number, base: string, head: string): void {
  // GitHub names the author in `pulls/get` too; live previews go by the author's permission.
  const pull = {
    number,
    base: { sha: base, ref: "main" },
    head: { sha: head, ref: `feature-${number}` },
    state: "open" as const,
    draft: false,
    merged: false,
    user: { login: "alice" },
  };
  h.github.setPull(OWNER, repo.repo, pull);
}

/** A `check_run.rerequested` payload: `sender` pressed Re-run on one of this app's check runs. */
function rerunPayload(repo: Repo, runId: number, sender: string): Record<string, unknown> {
  const run = h.github.checkRuns.get(runId);
  if (!run) throw new Error(`the fake GitHub has no check run ${runId}`);
  const payload = examplePayload("check_run", "rerequested");
  const repository = payload.repository as Record<string, unknown>;
  Object.assign(repository, {
    id: repo.repoId,
    name: repo.repo,
    full_name: `${OWNER}/${repo.repo}`,
    owner: { ...(repository.owner as object), login: OWNER },
  });
  payload.installation = { id: INSTALLATION };
  const checkRun = payload.check_run as Record<string, unknown>;
  Object.assign(checkRun, {
    id: run.id,
    name: run.name,
    head_sha: run.head_sha,
    external_id: run.external_id ?? "",
    status: run.status,
    conclusion: run.conclusion ?? null,
    output: {
      ...(checkRun.output as object),
      title: run.output?.title ?? null,
      summary: run.output?.summary ?? null,
      text: run.output?.text ?? null,
    },
    app: { ...(checkRun.app as object), id: FakeGitHub.APP_ID },
    // GitHub lists no pull requests for a fork's head; Sluice finds its pull request without them.
    pull_requests: [],
  });
  payload.sender = { ...(payload.sender as object), login: sender, type: "User" };
  return payload;
}

/** One check-run write the app sent GitHub: the run it is about, and the state it set. */
interface CheckWrite {
  run: number;
  name: string;
  created: boolean;
  /** The conclusion when it completed the run, else the status it set (undefined when it set neither). */
  state: string | undefined;
}

/** Every check-run create and update the app sent for `head`, in the order GitHub received them. */
function checkWrites(head: string): CheckWrite[] {
  const runs = [...h.github.checkRuns.values()];
  const writes: CheckWrite[] = [];
  for (const request of h.github.requests) {
    if (request.operationId !== "checks/create" && request.operationId !== "checks/update") continue;
    const body = request.body as { name?: string; head_sha?: string; external_id?: string; status?: string; conclusion?: string };
    const state = body.conclusion ?? body.status;
    if (request.operationId === "checks/create") {
      if (body.head_sha !== head) continue;
      const run = runs.find((r) => r.head_sha === head && r.name === body.name && r.external_id === body.external_id);
      if (!run) throw new Error(`no check run matches the create of ${body.name ?? ""} with external id ${body.external_id ?? ""}`);
      writes.push({ run: run.id, name: run.name, created: true, state });
    } else {
      const run = h.github.checkRuns.get(Number(request.params.check_run_id));
      if (run?.head_sha === head) writes.push({ run: run.id, name: run.name, created: false, state });
    }
  }
  return writes;
}

const PASSING = new Set(["success", "neutral", "skipped"]);

/**
 * What a required check named `name` showed on `head` after each write, as branch protection reads
 * it (the newest check run of that name), with repeats folded.
 */
function gateStates(head: string, name: string): string[] {
  const newest: { run?: number } = {};
  const state = new Map<number, string>();
  const shown: string[] = [];
  for (const write of checkWrites(head).filter((w) => w.name === name)) {
    if (write.created) newest.run = write.run;
    if (write.state !== undefined) state.set(write.run, write.state);
    const now = newest.run === undefined ? undefined : state.get(newest.run);
    if (now !== undefined && shown.at(-1) !== now) shown.push(now);
  }
  return shown;
}

/** The first place where `states` goes from a passing conclusion to failure, or undefined. */
function passThenFail(states: readonly string[]): string | undefined {
  const passed = states.findIndex((s) => PASSING.has(s));
  const failed = states.findIndex((s, i) => i > passed && s === "failure");
  return passed >= 0 && failed >= 0 ? `${states[passed]} → failure: ${states.join(" → ")}` : undefined;
}

/** No check run of `head`, and no check name as branch protection reads it, ever went from passing to failing. */
function expectNeverPassThenFail(head: string): void {
  const writes = checkWrites(head);
  for (const run of new Set(writes.map((w) => w.run))) {
    const states = writes.filter((w) => w.run === run && w.state !== undefined).map((w) => w.state ?? "");
    expect(passThenFail(states), `check run ${run} on ${head.slice(0, 7)}`).toBeUndefined();
  }
  for (const name of new Set(writes.map((w) => w.name)))
    expect(passThenFail(gateStates(head, name)), `${name} on ${head.slice(0, 7)}`).toBeUndefined();
}

const previewRuns = (head: string) => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === PREVIEW);
const commentOn = (number: number) => h.github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.body ?? "";

/** Waits until the newest preview check run of `head` is completed with `conclusion` and the comment shows the refusal. */
async function refusedOn(number: number, head: string, runs = 1): Promise<void> {
  await expect.poll(() => previewRuns(head).length, { timeout: 60_000, interval: 200 }).toBe(runs);
  await expect.poll(() => previewRuns(head).at(-1)?.conclusion, { timeout: 90_000, interval: 200 }).toBe("failure");
  await expect.poll(() => commentOn(number), { timeout: 30_000, interval: 200 }).toContain("refused by the API server");
}

describe("sluice/preview, a gating check, never passes before the live cluster has answered", { timeout: 240_000 }, () => {
  it("on opened and on synchronize: in progress until the agent's refusal is in, then failure; never success first", async () => {
    const repo = await repository();
    const { base, head } = await refusedChange(repo);
    const number = await open(repo, base, head);
    await refusedOn(number, head);
    expectNeverPassThenFail(head);
    expect(gateStates(head, PREVIEW)).toEqual(["in_progress", "failure"]);
    expect(previewRuns(head).at(-1)?.annotations).toContainEqual(
      expect.objectContaining({ path: "manifests/web.yaml", message: expect.stringContaining("images must be pinned") as unknown }),
    );

    // A push to the pull request: a new head, previewed the same way.
    const next = await commit(repo, {
      ".github/sluice.yml": productionConfig(repo),
      "manifests/settings.yaml": configMap("v3"),
      "manifests/web.yaml": deployment("nginx:latest"),
    });
    setPull(repo, number, base, next);
    await h.deliver("pull_request", pullRequestPayload(repo, "synchronize", number, base, next, { author: "alice" }));
    await refusedOn(number, next);
    await expect.poll(() => commentOn(number), { timeout: 30_000, interval: 200 }).toContain(`\`${next.slice(0, 7)}\``);
    expectNeverPassThenFail(next);
    expect(gateStates(next, PREVIEW)).toEqual(["in_progress", "failure"]);
    expectNeverPassThenFail(head);
  });

  it("on /diff: the new check run of the same head is in progress until the refusal is in", async () => {
    const repo = await repository();
    const { base, head } = await refusedChange(repo, "diff");
    const number = await open(repo, base, head);
    await refusedOn(number, head);
    await h.deliver("issue_comment", commentPayload(repo, number, nextComment++, "/diff", "alice"));
    await refusedOn(number, head, 2);
    expectNeverPassThenFail(head);
    expect(gateStates(head, PREVIEW)).toEqual(["in_progress", "failure", "in_progress", "failure"]);
  });

  it("on Re-run: a new preview of that head for someone with the commands permission, in progress until the refusal is in", async () => {
    const repo = await repository();
    const { base, head } = await refusedChange(repo, "rerun");
    const number = await open(repo, base, head);
    await refusedOn(number, head);
    const first = previewRuns(head)[0];
    if (!first) throw new Error("no preview check run");

    // The part of a large preview the comment had no room for lives in the check run's text; a note must keep it.
    const output = h.github.checkRuns.get(first.id)?.output;
    if (!output) throw new Error("the preview check run has no output");
    output.text = "…the objects the comment had no room for";
    // A summary near GitHub's limit in bytes (two bytes a character) leaves a note no room to go over it.
    const summary = `${output.summary ?? ""}\n\n`;
    output.summary = `${summary}${"é".repeat(Math.floor((65_400 - Buffer.byteLength(summary)) / 2))}`;
    // Someone with read permission: GitHub would not send it, and Sluice does not take it either; the check run says why.
    await h.deliver("check_run", rerunPayload(repo, first.id, "mallory"));
    await expect
      .poll(() => h.github.checkRuns.get(first.id)?.output?.summary ?? "", { timeout: 30_000, interval: 200 })
      .toContain("**Re-run** pressed by @mallory: refused: re-running the preview needs **write** permission and @mallory has **read**");
    expect(previewRuns(head)).toHaveLength(1);
    expect(h.github.checkRuns.get(first.id)?.conclusion).toBe("failure");
    expect(h.github.checkRuns.get(first.id)?.output?.text).toBe("…the objects the comment had no room for");
    expect(Buffer.byteLength(h.github.checkRuns.get(first.id)?.output?.summary ?? "")).toBeLessThanOrEqual(65_535);

    await h.deliver("check_run", rerunPayload(repo, first.id, "alice"));
    await refusedOn(number, head, 2);
    expectNeverPassThenFail(head);
    expect(gateStates(head, PREVIEW)).toEqual(["in_progress", "failure", "in_progress", "failure"]);
    // Re-run says nothing in the conversation: the new check run is the answer.
    expect(h.github.comments.filter((c) => c.issue === number && !c.body.includes(PREVIEW_MARKER))).toEqual([]);
  });
});

describe("a live answer that does not come in time", { timeout: 240_000 }, () => {
  // Staging looks served (a heartbeat, as Redis can say anything), but no agent takes its requests
  // yet (a late agent that stops takes its heartbeat with it).
  beforeEach(async () => {
    await h.redis.set(agentHeartbeatKey("staging"), "1", "EX", 600);
  });
  afterAll(async () => {
    await h.redis.del(agentHeartbeatKey("staging"));
  });

  it("fails the check when the wait ends, by default: the rendered diff alone does not pass a gating check", async () => {
    const repo = await repository();
    const base = await commit(repo, { ".github/sluice.yml": stagingConfig(repo), "manifests/settings.yaml": configMap("v1") });
    h.github.setBranch(OWNER, repo.repo, "main", base);
    const head = await commit(repo, { ".github/sluice.yml": stagingConfig(repo), "manifests/settings.yaml": configMap("v2") });
    const number = await open(repo, base, head);
    await expect
      .poll(() => commentOn(number), { timeout: 60_000, interval: 200 })
      .toContain("**`staging`**: ⚠️ no agent answered within 15 s");
    await expect.poll(() => previewRuns(head).at(-1)?.conclusion, { timeout: 30_000, interval: 200 }).toBe("failure");
    expect(previewRuns(head).at(-1)?.output?.title).toBe("No live answer in time");
    expect(previewRuns(head).at(-1)?.output?.summary).toContain("`previews.liveTimeout: failure`");
    expect(gateStates(head, PREVIEW)).toEqual(["in_progress", "failure"]);
  });

  it("with previews.liveTimeout: neutral, passes when the wait ends and a late refusal never turns it into a failure", async () => {
    const repo = await repository();
    const config = stagingConfig(repo, "previews:\n  liveTimeout: neutral\n");
    const base = await commit(repo, { ".github/sluice.yml": config, "manifests/settings.yaml": configMap("v1") });
    h.github.setBranch(OWNER, repo.repo, "main", base);
    const head = await commit(repo, { ".github/sluice.yml": config, "manifests/settings.yaml": configMap("v2") });
    const number = await open(repo, base, head);
    await expect.poll(() => previewRuns(head).at(-1)?.conclusion, { timeout: 60_000, interval: 200 }).toBe("neutral");
    expect(commentOn(number)).toContain("**`staging`**: ⚠️ no agent answered within 15 s");
    // An agent for staging comes up late and answers: staging's namespace does not exist, so the API server refuses.
    const late = await startAgent(await agentSettings("staging"), { log: () => undefined, now: h.clock.read });
    try {
      await expect
        .poll(() => commentOn(number), { timeout: 60_000, interval: 200 })
        .toContain("**`staging`**: 0 objects would change live, 0 would be pruned, 1 would be refused");
      await expect
        .poll(() => previewRuns(head).at(-1)?.output?.summary ?? "", { timeout: 30_000, interval: 200 })
        .toContain("A live answer came after this check completed as neutral");
    } finally {
      await late.stop();
    }
    expect(previewRuns(head).at(-1)?.conclusion).toBe("neutral");
    expectNeverPassThenFail(head);
    expect(gateStates(head, PREVIEW)).toEqual(["in_progress", "neutral"]);
  });

  it("completes a check run left waiting when a newer push is published, so none stays in progress", async () => {
    const repo = await repository();
    const base = await commit(repo, { ".github/sluice.yml": stagingConfig(repo), "manifests/settings.yaml": configMap("v1") });
    h.github.setBranch(OWNER, repo.repo, "main", base);
    const first = await commit(repo, { ".github/sluice.yml": stagingConfig(repo), "manifests/settings.yaml": configMap("v2") });
    const number = await open(repo, base, first);
    // The first head's preview is published and waits for staging's answer, which does not come.
    await expect.poll(() => checkWrites(first).filter((w) => !w.created).length, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
    expect(checkWrites(first).find((w) => !w.created)?.state).toBe("in_progress");
    const second = await commit(repo, { ".github/sluice.yml": stagingConfig(repo), "manifests/settings.yaml": configMap("v3") });
    setPull(repo, number, base, second);
    await h.deliver("pull_request", pullRequestPayload(repo, "synchronize", number, base, second, { author: "alice" }));
    await expect.poll(() => previewRuns(second).at(-1)?.conclusion, { timeout: 60_000, interval: 200 }).toBe("failure");
    // The first head's run ended: superseded while it waited, or failed when its own wait ended first.
    expect(previewRuns(first).at(-1)?.status).toBe("completed");
    expect(["skipped", "failure"]).toContain(previewRuns(first).at(-1)?.conclusion);
    expectNeverPassThenFail(first);
    expectNeverPassThenFail(second);
  });
});

describe("what a commenter, a retargeted pull request or an agent that is down cannot do to the gate", { timeout: 240_000 }, () => {
  it("takes /diff only from someone with the commands permission: a new preview restarts the gate", async () => {
    const repo = await repository();
    const { base, head } = await refusedChange(repo, "diff-permission");
    const number = await open(repo, base, head);
    await refusedOn(number, head);
    await h.deliver("issue_comment", commentPayload(repo, number, nextComment++, "/diff", "mallory"));
    await expect
      .poll(() => h.github.comments.filter((c) => c.issue === number && c.body.includes("@mallory")).map((c) => c.body), {
        timeout: 30_000,
        interval: 200,
      })
      .toEqual([expect.stringContaining("`/diff` needs **write** permission on this repository and you have **read**")]);
    // No second check run: the gate mallory cannot restart still shows the first one's answer.
    expect(previewRuns(head)).toHaveLength(1);
    expect(gateStates(head, PREVIEW)).toEqual(["in_progress", "failure"]);
  });

  it("previews a pull request again when it is moved to another base", async () => {
    const repo = await repository();
    const { base, head } = await refusedChange(repo, "retarget");
    const number = await open(repo, base, head);
    await refusedOn(number, head);
    const other = await commit(repo, { ".github/sluice.yml": productionConfig(repo), "manifests/settings.yaml": configMap("v0") });
    setPull(repo, number, other, head);
    const edited = pullRequestPayload(repo, "opened", number, other, head, { author: "alice" });
    edited.action = "edited";
    edited.changes = { base: { ref: { from: "main" }, sha: { from: base } } };
    await h.deliver("pull_request", edited);
    await refusedOn(number, head, 2);
    expect(h.github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.body).toContain(other.slice(0, 7));
    // An edit of the title alone previews nothing.
    const retitled = pullRequestPayload(repo, "opened", number, other, head, { author: "alice" });
    retitled.action = "edited";
    retitled.changes = { title: { from: "old title" } };
    await h.deliver("pull_request", retitled);
    expect(previewRuns(head)).toHaveLength(2);
  });

  it("fails the check, as a wait that ended would, when the environment's agent is not online", async () => {
    const repo = await repository();
    const base = await commit(repo, { ".github/sluice.yml": stagingConfig(repo), "manifests/settings.yaml": configMap("v1") });
    h.github.setBranch(OWNER, repo.repo, "main", base);
    const head = await commit(repo, { ".github/sluice.yml": stagingConfig(repo), "manifests/settings.yaml": configMap("v2") });
    // No agent serves staging, and no heartbeat says one does.
    await h.redis.del(agentHeartbeatKey("staging"));
    const number = await open(repo, base, head);
    await expect.poll(() => previewRuns(head).at(-1)?.conclusion, { timeout: 60_000, interval: 200 }).toBe("failure");
    expect(previewRuns(head).at(-1)?.output?.title).toBe("No live answer in time");
    expect(commentOn(number)).toContain("**`staging`**: ⚠️ no agent is online for it");
    expect(gateStates(head, PREVIEW)).toEqual(["in_progress", "failure"]);
  });
});
