import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { DeployRecords } from "../../src/app/deploy/deploy-records.ts";
import { GitHubClient } from "../../src/app/github/client.ts";
import { installationOctokit } from "../../src/app/github/installation-octokit.ts";
import { GitHubPacing } from "../../src/app/github/pacing.ts";
import { GateStates } from "../../src/app/promotion/gate-states.ts";
import { GatedDeploys } from "../../src/app/promotion/gated-deploys.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { parseConfig, type Environment } from "../../src/core/config.ts";
import { deployRequest, type DeployRequest } from "../../src/core/deploy-requests.ts";
import { FakeGitHub } from "../helpers/fake-github.ts";
import { fakeProbot } from "../helpers/github-client.ts";

// Deploy requests reach an environment's gates in any order: the deploy-request queue runs two at
// once in each app replica, renders take their own time, and a failed attempt is retried seconds
// later. The deploy that waits at an approval is the newest by sequence, never the last to arrive.
// Redis is real; GitHub is faked at the HTTP layer.

const OWNER = "sluice-gate-order";
const REPO = "svc";
const REPO_ID = 32_000;
const INSTALLATION = 32_100;
const repository = { owner: OWNER, name: REPO, id: REPO_ID };
let github: FakeGitHub;
let redis: Redis;
let gh: GitHubClient;
let gates: GateStates;
let gated: GatedDeploys;
let now = Date.parse("2026-12-04T10:00:00Z");

const mac = new RedisMac("gate-order-test-secret");
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const production: Environment = (() => {
  const env = parseConfig("version: 1\nenvironments:\n  - name: production\n    path: envs/production\n    approval: { required: 1 }\n")
    .environments[0];
  if (!env) throw new Error("no environment");
  return env;
})();

beforeAll(async () => {
  github = await new FakeGitHub().start();
  github.addRepo(OWNER, REPO, REPO_ID);
  const url = new URL(inject("redisUrl"));
  url.pathname = "/21";
  redis = new Redis(url.toString(), { maxRetriesPerRequest: null });
  await redis.flushdb();
  gh = new GitHubClient(await installationOctokit(fakeProbot(github), new GitHubPacing(), INSTALLATION, "background"), FakeGitHub.APP_ID);
  gates = new GateStates(redis, mac);
  const records = new DeployRecords(redis, mac, silent);
  gated = new GatedDeploys({
    gates,
    records,
    createDeployment: (client, request, env, jobId) =>
      client.createDeployment(request.repository, {
        sha: request.sha,
        environment: env.name,
        description: request.reason,
        payload: { jobId },
        production: true,
        transient: false,
      }),
    wake: () => Promise.resolve(),
    prepare: () => Promise.resolve(),
    webUrl: "https://github.example",
    now: () => now,
    log: silent,
  });
});
afterAll(async () => {
  await redis.flushdb();
  await redis.quit();
  await github.stop();
});
afterEach(() => {
  expect(github.violations).toEqual([]);
});

function request(sha: string, sequence: number, fields: Partial<DeployRequest> = {}): DeployRequest {
  now += 1000;
  const made = deployRequest(
    { repository, installationId: INSTALLATION, environment: "production", sha, reason: "merge", requestedBy: "maya", trigger: "push" },
    now,
  );
  return { ...made, sequence, ...fields };
}

const titles = (sha: string): (string | undefined)[] =>
  [...github.checkRuns.values()].filter((r) => r.head_sha === sha && r.name === deployCheckName("production")).map((r) => r.output?.title);

describe("a deploy waiting at an approval", () => {
  it("stays the one waiting when an older request of its environment arrives after it", async () => {
    const older = request("a".repeat(40), 10);
    const newer = request("b".repeat(40), 11);
    expect(await gated.admit(gh, newer, production)).toEqual({ go: false });
    expect((await gates.load(REPO_ID, "production")).pending?.request.sha).toBe(newer.sha);
    // The older one's render finished last (or its first attempt failed and was retried).
    expect(await gated.admit(gh, older, production)).toEqual({ go: false });
    expect((await gates.load(REPO_ID, "production")).pending?.request.sha).toBe(newer.sha);
    await expect.poll(() => titles(newer.sha)).toEqual(["Waiting for approval (0 of 1)"]);
    expect(titles(older.sha)).toEqual([]);
    // A newer one still replaces it, and says so on its check run.
    const newest = request("c".repeat(40), 12);
    expect(await gated.admit(gh, newest, production)).toEqual({ go: false });
    expect((await gates.load(REPO_ID, "production")).pending?.request.sha).toBe(newest.sha);
    await expect.poll(() => titles(newer.sha)).toEqual([`Not deployed: ${"c".repeat(7)} went instead`]);
  });

  it("ends an older command's own check run as passed over, rather than leave it queued", async () => {
    const waiting = (await gates.load(REPO_ID, "production")).pending;
    if (!waiting) throw new Error("the first test left no deploy waiting");
    const sha = "d".repeat(40);
    const checkRunId = await gh.createCheckRun(repository, deployCheckName("production"), sha, { status: "queued" });
    const sync = request(sha, waiting.request.sequence - 5, { reason: "sync", trigger: "comment-77", checkRunId });
    expect(await gated.admit(gh, sync, production)).toEqual({ go: false });
    expect((await gates.load(REPO_ID, "production")).pending?.jobId).toBe(waiting.jobId);
    await expect.poll(() => titles(sha)).toEqual([`Not deployed: ${waiting.request.sha.slice(0, 7)} went instead`]);
    expect(github.checkRuns.get(checkRunId)).toMatchObject({ status: "completed", conclusion: "skipped" });
  });
});
