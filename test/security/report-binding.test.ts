import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { deployRecordKey } from "../../src/app/state/redis-keys.ts";
import { EnvironmentStates } from "../../src/app/deploy/environment-states.ts";
import { PublishedPreviews } from "../../src/app/preview/published-previews.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import {
  agentHeartbeatKey,
  livePreviewQueue,
  REPORT_QUEUE,
  type AgentReport,
  type DriftReport,
  type History,
  type LivePreviewRequest,
  type LiveReport,
} from "../../src/core/agent-protocol.ts";
import { deployCheckName, driftCheckName } from "../../src/core/check-names.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys, privateKeyFromPem, seal, type Envelope } from "../../src/core/signing.ts";
import { startHarness, WEBHOOK_SECRET, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { pullRequestPayload, pushPayload, type PayloadTarget } from "../helpers/payloads.ts";

// Plays the holder of one agent's key against the app: each message below is signed with a key the
// app trusts, and each names a deploy or a request that is not that key's, or not what the app
// sealed for it (another environment, repository, commit or installation). The app runs as
// `sluice app` does, over HTTP, on the real Redis; GitHub is faked; no agent runs, so every deploy
// stays queued and every live preview pending until a message below changes them.

const OWNER = "acme";
const INSTALLATION = 71;
/** The one repository the team agent's key is bound to. */
const TEAM_REPO = 9400;
const appKeys = generateSigningKeys();
const productionKeys = generateSigningKeys();
const stagingKeys = generateSigningKeys();
const teamKeys = generateSigningKeys();
let h: AppHarness;
let reports: Queue;
let states: EnvironmentStates;
let published: PublishedPreviews;
let nextSha = 1;
let nextRepo = 9401;
let nextPull = 1;
const sha = (): string => (nextSha++).toString(16).padStart(40, "b");

function tried(attempt: string, outcome: string): void {
  process.stdout.write(`  [agent key holder] tried: ${attempt}\n  [agent key holder] result: ${outcome}\n`);
}

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 11,
    deployKeys: {
      jobSigningKey: appKeys.privateKey,
      // The first two as key files have always bound them; the third is bound to one repository too.
      agentPublicKeys: [
        `# environments: production\n${productionKeys.publicKey}`,
        `# environments: staging\n${stagingKeys.publicKey}`,
        `# environments: production\n# repositories: ${String(TEAM_REPO)}\n${teamKeys.publicKey}`,
      ].join(""),
    },
    // The wait for live answers never ends during a test: only the messages below change a preview.
    env: { SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS: "3600" },
  });
  reports = new Queue(REPORT_QUEUE.name, { connection: h.redis, prefix: REPORT_QUEUE.prefix });
  const mac = new RedisMac(WEBHOOK_SECRET);
  states = new EnvironmentStates(h.redis, mac);
  published = new PublishedPreviews(h.redis, mac);
  // Agents of both environments seem to be online, so the app asks them for live previews.
  for (const environment of ["production", "staging"]) await h.redis.set(agentHeartbeatKey(environment), "1", "EX", 3600);
});
afterAll(async () => {
  await reports.close();
  await h.stop();
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

type Repo = PayloadTarget;

function repository(repoId = nextRepo++): Repo {
  const name = `svc-${String(repoId)}-${randomUUID().slice(0, 4)}`;
  h.github.addRepo(OWNER, name, repoId);
  h.github.setPermission(OWNER, name, "alice", "write");
  return { owner: OWNER, repo: name, repoId, installation: INSTALLATION };
}

const config = (repo: Repo) =>
  `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ns-${String(repo.repoId)}\n    branch: main\n` +
  `  - name: staging\n    path: manifests\n    namespace: ns-${String(repo.repoId)}-staging\n    branch: main\n    autoDeploy: false\n`;
const configMap = (value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: "${value}"\n`;

async function commit(repo: Repo, value: string): Promise<string> {
  const id = sha();
  await h.github.addCommit(
    OWNER,
    repo.repo,
    id,
    await checkout(undefined, { ".github/sluice.yml": config(repo), "manifests/cm.yaml": configMap(value) }),
  );
  return id;
}

/** Signs a message with an agent's key, queues it as an agent does, and waits until the app has consumed it. */
async function send(
  kind: "report" | "live" | "drift" | "status",
  body: AgentReport | LiveReport | DriftReport | Record<string, unknown>,
  keys: { privateKey: string },
): Promise<void> {
  const added = await reports.add(kind, seal(kind, body, privateKeyFromPem(keys.privateKey)));
  await expect.poll(async () => reports.getJobState(added.id ?? ""), { timeout: 30_000, interval: 100 }).toBe("completed");
}

/** The app's count of dropped agent messages of a kind, for a reason, from its `/metrics`. */
async function dropped(kind: string, reason: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`sluice_agent_messages_rejected_total{kind="${kind}",reason="${reason}"} `));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/** Counts the app's dropped messages of `kind` for `reason` from now on; `expectOneMore` checks that exactly one more was dropped. */
async function counting(kind: string, reason: string): Promise<{ expectOneMore: () => Promise<void> }> {
  const before = await dropped(kind, reason);
  return {
    expectOneMore: async () => {
      expect(await dropped(kind, reason)).toBe(before + 1);
    },
  };
}

interface Deploy {
  repo: Repo;
  head: string;
  jobId: string;
}

const deployRun = (d: Deploy) =>
  [...h.github.checkRuns.values()].find((r) => r.head_sha === d.head && r.name === deployCheckName("production"));
const deploymentOf = (d: Deploy) => h.github.deploymentsCreated.find((x) => x.ref === d.head && x.environment === "production");
const deploymentStates = (d: Deploy) =>
  h.github.deploymentStatuses.filter((s) => s.deploymentId === deploymentOf(d)?.id).map((s) => s.state);

/** A merge to main: the app queues the production deploy, with its check run and Deployment, for an agent that never comes. */
async function queuedDeploy(repo = repository()): Promise<Deploy> {
  const head = await commit(repo, "1");
  h.github.setBranch(OWNER, repo.repo, "main", head);
  expect((await h.deliver("push", pushPayload(repo, head))).status).toBe(200);
  const d = { repo, head, jobId: "" };
  await expect.poll(() => deployRun(d)?.status, { timeout: 60_000, interval: 200 }).toBe("in_progress");
  await expect.poll(() => deploymentStates(d), { timeout: 60_000, interval: 200 }).toEqual(["in_progress"]);
  return { ...d, jobId: deployRun(d)?.external_id ?? "" };
}

/** The report the production agent would send for `d`. */
function report(d: Deploy, history: History): AgentReport {
  return {
    version: 1,
    jobId: d.jobId,
    repository: { owner: OWNER, name: d.repo.repo, id: d.repo.repoId },
    installationId: INSTALLATION,
    environment: "production",
    sha: d.head,
    phase: "succeeded",
    message: "deployed 1 objects",
    history,
    at: new Date(h.clock.now).toISOString(),
  };
}

/** A history with one revision: what `/rollback` would choose from. */
function historyOf(revisionSha: string, jobId: string): History {
  return {
    revisions: [{ sha: revisionSha, jobId, digest: "0".repeat(64), appliedAt: new Date(h.clock.now).toISOString(), reason: "merge" }],
  };
}

/** The deploy's check run still queued, its Deployment still only queued, and no history stored for the repository. */
async function expectUntouched(d: Deploy): Promise<void> {
  expect(deployRun(d)?.status).toBe("in_progress");
  expect(deployRun(d)?.conclusion).toBeUndefined();
  expect(deploymentStates(d)).toEqual(["in_progress"]);
  for (const environment of ["production", "staging"]) expect((await states.load(d.repo.repoId, environment)).history).toBeUndefined();
}

/** The production agent's own report is applied: the deploy was open to reports all along, and only the forgery was refused. */
async function expectGenuineApplied(d: Deploy, keys = productionKeys): Promise<void> {
  const history = historyOf(d.head, d.jobId);
  await send("report", report(d, history), keys);
  expect(deployRun(d)).toMatchObject({ status: "completed", conclusion: "success" });
  expect(deploymentStates(d)).toEqual(["in_progress", "success"]);
  expect((await states.load(d.repo.repoId, "production")).history).toEqual(history);
}

describe("a deploy report is applied only to the deploy the app sealed it for", () => {
  it("drops a report signed with the staging agent's key that carries a production deploy's job id", async () => {
    const d = await queuedDeploy();
    const forged = { ...report(d, historyOf(sha(), "forged")), environment: "staging" };
    const counted = await counting("report", "mismatch");
    await send("report", forged, stagingKeys);
    await expectUntouched(d);
    await counted.expectOneMore();
    tried(
      "a `succeeded` report with a forged history, signed with the staging agent's key, environment staging, a production job id",
      "dropped; the production check run and Deployment stay queued and no history is stored",
    );
    await expectGenuineApplied(d);
  });

  it("drops a report whose repository id is another repository's", async () => {
    const d = await queuedDeploy();
    const other = repository();
    const forged = { ...report(d, historyOf(sha(), "forged")), repository: { owner: OWNER, name: d.repo.repo, id: other.repoId } };
    const counted = await counting("report", "mismatch");
    await send("report", forged, productionKeys);
    await expectUntouched(d);
    await counted.expectOneMore();
    tried(`a report for ${d.jobId} naming repository id ${String(other.repoId)}`, "dropped; the deploy is untouched");
    await expectGenuineApplied(d);
  });

  it("drops a report about another commit than the deploy's", async () => {
    const d = await queuedDeploy();
    const forged = { ...report(d, historyOf(sha(), "forged")), sha: sha() };
    const counted = await counting("report", "mismatch");
    await send("report", forged, productionKeys);
    await expectUntouched(d);
    await counted.expectOneMore();
    tried(`a report for ${d.jobId} about commit ${forged.sha}`, "dropped; the deploy is untouched");
    await expectGenuineApplied(d);
  });

  it("drops a report that names another installation than the deploy's", async () => {
    const d = await queuedDeploy();
    const forged = { ...report(d, historyOf(sha(), "forged")), installationId: INSTALLATION + 1 };
    const counted = await counting("report", "mismatch");
    await send("report", forged, productionKeys);
    await expectUntouched(d);
    await counted.expectOneMore();
    tried(`a report for ${d.jobId} naming installation ${String(INSTALLATION + 1)}`, "dropped; the deploy is untouched");
    await expectGenuineApplied(d);
  });

  it("drops a report signed with a key bound to another repository, and applies one signed with the repository's own key", async () => {
    const d = await queuedDeploy();
    const counted = await counting("report", "repository");
    await send("report", report(d, historyOf(sha(), "forged")), teamKeys);
    await expectUntouched(d);
    await counted.expectOneMore();
    tried(`a report for ${d.jobId}, signed with the key bound to repository ${String(TEAM_REPO)}`, "dropped; the deploy is untouched");
    await expectGenuineApplied(await queuedDeploy(repository(TEAM_REPO)), teamKeys);
  });
});

interface PendingPreview {
  repo: Repo;
  pullRequest: number;
  /** The live-preview requests the app signed, by environment. */
  requests: Map<string, LivePreviewRequest>;
}

const commentOn = (p: PendingPreview) =>
  h.github.comments.find((c) => c.repo === p.repo.repo && c.issue === p.pullRequest && c.body.includes(PREVIEW_MARKER))?.body ?? "";

/** Opens a pull request whose preview asks both environments' agents for a live dry-run; returns the requests the app queued. */
async function pendingPreview(): Promise<PendingPreview> {
  const repo = repository();
  const base = await commit(repo, "1");
  h.github.setBranch(OWNER, repo.repo, "main", base);
  const head = await commit(repo, "2");
  const pullRequest = nextPull++;
  expect((await h.deliver("pull_request", pullRequestPayload(repo, "opened", pullRequest, base, head, { author: "alice" }))).status).toBe(
    200,
  );
  const p = { repo, pullRequest, requests: new Map<string, LivePreviewRequest>() };
  await expect.poll(() => commentOn(p).split("waiting for the agent's dry-run").length - 1, { timeout: 60_000, interval: 200 }).toBe(2);
  // The requests are queued once the preview they update is saved: just after the comment.
  await expect.poll(() => queuedRequests(p), { timeout: 30_000, interval: 200 }).toEqual(["production", "staging"]);
  return p;
}

/** Reads the live-preview requests the app queued for the pull request into `p`; returns their environments. */
async function queuedRequests(p: PendingPreview): Promise<string[]> {
  for (const environment of ["production", "staging"]) {
    const q = livePreviewQueue(environment);
    const queue = new Queue(q.name, { connection: h.redis, prefix: q.prefix });
    try {
      for (const job of await queue.getJobs(["waiting", "delayed", "prioritized"])) {
        const request = JSON.parse((job.data as Envelope).body) as LivePreviewRequest;
        if (request.repository.id === p.repo.repoId && request.pullRequest === p.pullRequest) p.requests.set(environment, request);
      }
    } finally {
      await queue.close();
    }
  }
  return [...p.requests.keys()].sort();
}

/** The answer an agent would send to `request`: it says the API server would refuse the ConfigMap. */
function answer(request: LivePreviewRequest, message: string): LiveReport {
  return {
    version: 1,
    requestId: request.id,
    repository: request.repository,
    installationId: request.installationId,
    environment: request.environment,
    pullRequest: request.pullRequest,
    headSha: request.headSha,
    seq: request.seq,
    changes: [
      {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        namespace: request.settings.namespace,
        name: "settings",
        action: "refused",
        refusedBy: "api-server",
        message,
      },
    ],
    unchanged: 0,
    prune: [],
    at: new Date(h.clock.now).toISOString(),
  };
}

const requestOf = (p: PendingPreview, environment: string): LivePreviewRequest => {
  const request = p.requests.get(environment);
  if (!request) throw new Error(`no live-preview request for ${environment}`);
  return request;
};

/** Both environments still wait for their answer, in the comment and in the sealed preview. */
async function expectStillPending(p: PendingPreview, comment: string): Promise<void> {
  expect(commentOn(p)).toBe(comment);
  const preview = await published.load(p.repo.repoId, p.pullRequest);
  expect(preview?.live?.map((e) => [e.environment, e.status.state])).toEqual([
    ["production", "pending"],
    ["staging", "pending"],
  ]);
}

/** The production agent's own answer is folded in: the preview was open to answers all along. */
async function expectGenuineFolded(p: PendingPreview): Promise<void> {
  await send("live", answer(requestOf(p, "production"), "the production agent's own answer"), productionKeys);
  // Folded at once, written a moment later with whatever else came meanwhile.
  const preview = await published.load(p.repo.repoId, p.pullRequest);
  expect(preview?.live?.find((e) => e.environment === "production")?.status.state).toBe("answered");
  await expect.poll(() => commentOn(p), { timeout: 30_000, interval: 100 }).toContain("the production agent's own answer");
}

describe("a live-preview answer is folded only into the request the app sent", () => {
  it("drops an answer signed with the staging agent's key that carries the production request's id", async () => {
    const p = await pendingPreview();
    const comment = commentOn(p);
    const forged = { ...answer(requestOf(p, "production"), "forged refusal"), environment: "staging" };
    const counted = await counting("live", "mismatch");
    await send("live", forged, stagingKeys);
    await expectStillPending(p, comment);
    await counted.expectOneMore();
    tried(`a staging answer carrying request id ${forged.requestId}`, "dropped; the comment still waits for both agents");
    await expectGenuineFolded(p);
  });

  it("drops an answer that names another installation or another head than the request's", async () => {
    const p = await pendingPreview();
    const comment = commentOn(p);
    const genuine = answer(requestOf(p, "production"), "forged refusal");
    const otherInstallation = await counting("live", "mismatch");
    await send("live", { ...genuine, installationId: INSTALLATION + 1 }, productionKeys);
    await expectStillPending(p, comment);
    await otherInstallation.expectOneMore();
    const otherHead = await counting("live", "mismatch");
    await send("live", { ...genuine, headSha: sha() }, productionKeys);
    await expectStillPending(p, comment);
    await otherHead.expectOneMore();
    tried("production answers naming installation 72, and another head commit", "both dropped; the comment still waits");
    await expectGenuineFolded(p);
  });

  it("drops an answer signed with a key bound to another repository", async () => {
    const p = await pendingPreview();
    const comment = commentOn(p);
    const counted = await counting("live", "repository");
    await send("live", answer(requestOf(p, "production"), "forged refusal"), teamKeys);
    await expectStillPending(p, comment);
    await counted.expectOneMore();
    tried(`a production answer for repository ${String(p.repo.repoId)}, signed with the key bound to ${String(TEAM_REPO)}`, "dropped");
    await expectGenuineFolded(p);
  });
});

/** The drift report the production agent would send for the deploy `d`: one object drifted. */
function driftOf(d: Deploy, name = "settings"): DriftReport {
  return {
    version: 1,
    repository: { owner: OWNER, name: d.repo.repo, id: d.repo.repoId },
    installationId: INSTALLATION,
    environment: "production",
    sha: d.head,
    jobId: d.jobId,
    checked: 1,
    drifted: [
      { group: "", version: "v1", kind: "ConfigMap", namespace: `ns-${String(d.repo.repoId)}`, name, action: "modified", diff: "" },
    ],
    healed: [],
    gaveUp: [],
    at: new Date(h.clock.now).toISOString(),
  };
}

const driftRuns = (repo: Repo) => [...h.github.checkRuns.values()].filter((r) => r.repo === repo.repo && r.name.startsWith("sluice/drift"));

/** The production agent's own drift report writes its check run on the deployed commit. */
async function expectGenuineDrift(d: Deploy): Promise<void> {
  await send("drift", driftOf(d), productionKeys);
  expect(driftRuns(d.repo).map((r) => [r.name, r.head_sha, r.conclusion])).toEqual([[driftCheckName("production"), d.head, "neutral"]]);
}

describe("a drift report is applied only to the deploy it is measured against", () => {
  it("drops a drift report signed with the staging agent's key that names a production deploy", async () => {
    const d = await queuedDeploy();
    const counted = await counting("drift", "mismatch");
    await send("drift", { ...driftOf(d), environment: "staging" }, stagingKeys);
    expect(driftRuns(d.repo)).toEqual([]);
    await counted.expectOneMore();
    tried(`a staging drift report naming ${d.jobId}`, "dropped; no drift check run was written");
    await expectGenuineDrift(d);
  });

  it("drops drift reports about another commit, another installation, or a deploy the app never made", async () => {
    const d = await queuedDeploy();
    const forgeries: [string, DriftReport][] = [
      ["mismatch", { ...driftOf(d), sha: sha() }],
      ["mismatch", { ...driftOf(d), installationId: INSTALLATION + 1 }],
      ["unknown", { ...driftOf(d), jobId: `merge-${String(d.repo.repoId)}-production-${sha()}` }],
    ];
    for (const [reason, forged] of forgeries) {
      const counted = await counting("drift", reason);
      await send("drift", forged, productionKeys);
      expect(driftRuns(d.repo)).toEqual([]);
      await counted.expectOneMore();
    }
    tried("drift reports naming another commit, installation 72, and a job the app never signed", "all dropped; nothing written");
    await expectGenuineDrift(d);
  });

  it("writes a drift check run to the deploy's repository, never to the one a report names by owner/name", async () => {
    const d = await queuedDeploy();
    const victim = repository();
    await send("drift", { ...driftOf(d), repository: { owner: OWNER, name: victim.repo, id: d.repo.repoId } }, productionKeys);
    expect(driftRuns(victim)).toEqual([]);
    expect(driftRuns(d.repo).map((r) => r.head_sha)).toEqual([d.head]);
    tried(`a drift report for ${d.jobId} naming ${OWNER}/${victim.repo}`, `its check run went to ${OWNER}/${d.repo.repo}, the deploy's`);
  });

  it("drops a drift report signed with a key bound to another repository", async () => {
    const d = await queuedDeploy();
    const counted = await counting("drift", "repository");
    await send("drift", driftOf(d), teamKeys);
    expect(driftRuns(d.repo)).toEqual([]);
    await counted.expectOneMore();
    tried(`a drift report for repository ${String(d.repo.repoId)}, signed with the key bound to ${String(TEAM_REPO)}`, "dropped");
    await expectGenuineDrift(d);
  });

  it("keeps reporting drift after the deploy's record expired", async () => {
    const d = await queuedDeploy();
    await expectGenuineDrift(d);
    await h.redis.del(deployRecordKey(d.jobId));
    await send("drift", driftOf(d, "other"), productionKeys);
    expect(JSON.stringify(driftRuns(d.repo)[0]?.output)).toContain("ConfigMap ns-");
    expect(JSON.stringify(driftRuns(d.repo)[0]?.output)).toContain("/other");
  });
});

describe("an agent's status converges only what its key speaks for", () => {
  it("redeploys no repository but the ones a repository-bound key is bound to", async () => {
    const d = await queuedDeploy();
    await expectGenuineApplied(d);
    const runs = () =>
      [...h.github.checkRuns.values()].filter((r) => r.head_sha === d.head && r.name === deployCheckName("production")).length;
    expect(runs()).toBe(1);
    h.clock.now += 120_000;
    // A status that names no repository, signed with the key bound to another one.
    const status = { version: 1, environment: "production", event: "running", repositories: [], at: new Date(h.clock.now).toISOString() };
    await send("status", status, teamKeys);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(runs()).toBe(1);
    tried(
      `a status for production naming no repository, signed with the key bound to ${String(TEAM_REPO)}`,
      `repository ${String(d.repo.repoId)} is not redeployed`,
    );
  });
});
