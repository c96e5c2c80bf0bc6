import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createDeployment } from "../../src/app/deploy/deploy-jobs.ts";
import { DeployRecords } from "../../src/app/deploy/deploy-records.ts";
import type { GitHubClient } from "../../src/app/github/client.ts";
import { GitHubPacing } from "../../src/app/github/pacing.ts";
import { GateStates } from "../../src/app/promotion/gate-states.ts";
import { GatedDeploys } from "../../src/app/promotion/gated-deploys.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { parseConfig, type Environment } from "../../src/core/config.ts";
import { deployJobId, deployRequest, type DeployRequest } from "../../src/core/deploy-requests.ts";
import { fakeProbot, pacedGitHubClient } from "../helpers/github-client.ts";
import { handWired } from "../helpers/hand-wired.ts";

// Deploy requests reach an environment's gates in any order: the deploy-request queue runs two at
// once in each app replica, renders take their own time, and a failed attempt is retried seconds
// later. The deploy that waits at an approval is the newest by sequence, never the last to arrive.
// Redis is real; GitHub is faked at the HTTP layer.

const OWNER = "sluice-gate-order";
const REPO = "svc";
const INSTALLATION = 32_100;
const wired = handWired(21);
let gh: GitHubClient;
let gates: GateStates;
let records: DeployRecords;
let gated: GatedDeploys;
let now = Date.parse("2026-12-04T10:00:00Z");
/** Each test's own repository, so none depends on another's gates. */
let repoId = 32_000;
let repository = { owner: OWNER, name: REPO, id: repoId };

const mac = new RedisMac("gate-order-test-secret");
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
function environment(yaml: string, name: string): Environment {
  const env = parseConfig(`version: 1\nenvironments:\n${yaml}`).environments.find((e) => e.name === name);
  if (!env) throw new Error(`no environment ${name}`);
  return env;
}
const production = environment(
  "  - name: production\n    path: envs/production\n    approval: { required: 1, timeout: 1h }\n",
  "production",
);

beforeEach(() => {
  repoId += 1;
  repository = { owner: OWNER, name: `${REPO}-${String(repoId)}`, id: repoId };
  wired.github.addRepo(repository.owner, repository.name, repository.id);
});

beforeAll(async () => {
  gh = await pacedGitHubClient(fakeProbot(wired.github), new GitHubPacing(), INSTALLATION);
  gates = new GateStates(wired.redis, mac);
  records = new DeployRecords(wired.redis, mac, silent);
  gated = new GatedDeploys({
    gates,
    records,
    createDeployment,
    wake: () => Promise.resolve(),
    prepare: () => Promise.resolve(),
    webUrl: "https://github.example",
    now: () => now,
    log: silent,
  });
});
function request(sha: string, sequence: number, fields: Partial<DeployRequest> = {}): DeployRequest {
  now += 1000;
  const made = deployRequest(
    { repository, installationId: INSTALLATION, environment: "production", sha, reason: "merge", requestedBy: "maya", trigger: "push" },
    now,
  );
  return { ...made, sequence, ...fields };
}

const waitingSha = async (environment = "production"): Promise<string | undefined> =>
  (await gates.load(repoId, environment)).pending?.request.sha;

const titles = (sha: string): (string | undefined)[] =>
  [...wired.github.checkRuns.values()]
    .filter((r) => r.head_sha === sha && r.name === deployCheckName("production"))
    .map((r) => r.output?.title);

describe("a deploy waiting at an approval", () => {
  it("stays the one waiting when an older request of its environment arrives after it", async () => {
    const older = request("a".repeat(40), 10);
    const newer = request("b".repeat(40), 11);
    expect(await gated.admit(gh, newer, production)).toEqual({ go: false });
    expect(await waitingSha()).toBe(newer.sha);
    // The older one's render finished last (or its first attempt failed and was retried).
    expect(await gated.admit(gh, older, production)).toEqual({ go: false });
    expect(await waitingSha()).toBe(newer.sha);
    await expect.poll(() => titles(newer.sha)).toEqual(["Waiting for approval (0 of 1)"]);
    expect(titles(older.sha)).toEqual([]);
    // A newer one still replaces it, and says so on its check run.
    const newest = request("c".repeat(40), 12);
    expect(await gated.admit(gh, newest, production)).toEqual({ go: false });
    expect(await waitingSha()).toBe(newest.sha);
    await expect.poll(() => titles(newer.sha)).toEqual([`Not deployed: ${"c".repeat(7)} went instead`]);
  });

  it("ends an older command's own check run as not deployed, rather than leave it queued", async () => {
    const newer = request("b".repeat(40), 21);
    expect(await gated.admit(gh, newer, production)).toEqual({ go: false });
    const sha = "d".repeat(40);
    const checkRunId = await gh.createCheckRun(repository, deployCheckName("production"), sha, { status: "queued" });
    const sync = request(sha, 16, { reason: "sync", trigger: "comment-77", checkRunId });
    expect(await gated.admit(gh, sync, production)).toEqual({ go: false });
    expect(await waitingSha()).toBe(newer.sha);
    await expect.poll(() => titles(sha)).toEqual([`Not deployed: ${"b".repeat(7)} waits in its place`]);
    expect(wired.github.checkRuns.get(checkRunId)).toMatchObject({ status: "completed", conclusion: "skipped" });
  });

  it("leaves an older deploy the agents were already given to their reports when its request is retried", async () => {
    // A rollback went to the agents; its replica died before the queue heard, and the queue tries it again
    // once a newer merge waits for approval.
    const rollback = request("e".repeat(40), 30, { reason: "rollback", trigger: "comment-78" });
    expect(await gated.admit(gh, rollback, production)).toEqual({ go: true });
    const checkRunId = await gh.createCheckRun(repository, deployCheckName("production"), rollback.sha, { status: "in_progress" });
    const jobId = deployJobId(rollback);
    const record = {
      checkRunId,
      deploymentId: 0,
      repository,
      installationId: INSTALLATION,
      environment: "production",
      sha: rollback.sha,
      reason: "rollback" as const,
      hold: "keep" as const,
      completed: false,
    };
    await records.save(jobId, record);
    const merge = request("f".repeat(40), 31);
    expect(await gated.admit(gh, merge, production)).toEqual({ go: false });
    expect(await gated.admit(gh, rollback, production)).toEqual({ go: false });
    expect(await waitingSha()).toBe(merge.sha);
    expect(await records.load(jobId)).toEqual(record);
    expect(wired.github.checkRuns.get(checkRunId)).toMatchObject({ status: "in_progress" });
  });

  it("is replaced by an older request once its own wait has timed out", async () => {
    const newer = request("b".repeat(40), 41);
    expect(await gated.admit(gh, newer, production)).toEqual({ go: false });
    now += 2 * 3600_000;
    const older = request("a".repeat(40), 40);
    expect(await gated.admit(gh, older, production)).toEqual({ go: false });
    expect(await waitingSha()).toBe(older.sha);
  });

  it("leaves what a promoted environment was asked at the newer commit", async () => {
    const yaml =
      "  - name: staging\n    path: envs/staging\n  - name: prod\n    path: envs/prod\n    promotion: { after: staging, soak: 5m }\n    approval: { required: 1 }\n";
    const prod = environment(yaml, "prod");
    const newer = request("b".repeat(40), 51, { environment: "prod", trigger: "promotion" });
    expect(await gated.admit(gh, newer, prod)).toEqual({ go: false });
    const older = request("a".repeat(40), 50, { environment: "prod", trigger: "promotion" });
    expect(await gated.admit(gh, older, prod)).toEqual({ go: false });
    expect(await waitingSha("prod")).toBe(newer.sha);
    expect((await gates.load(repoId, "prod")).requested?.sha).toBe(newer.sha);
  });
});
