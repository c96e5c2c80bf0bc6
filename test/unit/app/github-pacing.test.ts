import { generateKeyPairSync } from "node:crypto";
import { pino } from "pino";
import { Probot, type ProbotOctokit } from "probot";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installationOctokit, type WriteLane } from "../../../src/app/github/installation-octokit.ts";
import { GitHubPacing, MAX_RETRY_WAIT_MS, retryAfter, type RetryReason } from "../../../src/app/github/pacing.ts";
import { FakeGitHub } from "../../helpers/fake-github.ts";

// The app's GitHub clients, as `github(installationId, lane)` makes them, against a GitHub faked at
// the HTTP layer: what they pace, what they retry, and what they give up on.

let github: FakeGitHub;
let probot: Probot;
let pacing: GitHubPacing;
let retries: { reason: RetryReason; status: number | undefined; waitMs: number }[];

beforeAll(async () => {
  github = await new FakeGitHub().start();
  github.addRepo("o", "r", 1);
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  probot = new Probot({
    appId: FakeGitHub.APP_ID,
    privateKey: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    baseUrl: github.url,
    log: pino({ level: "silent" }),
  });
});
afterAll(async () => {
  await github.stop();
});
beforeEach(() => {
  retries = [];
  pacing = new GitHubPacing((retry) => retries.push({ reason: retry.reason, status: retry.status, waitMs: retry.waitMs }));
});

const createCheckRun = (octokit: ProbotOctokit, name: string) =>
  octokit.request("POST /repos/{owner}/{repo}/check-runs", { owner: "o", repo: "r", name, head_sha: "a".repeat(40) });
const listComments = (octokit: ProbotOctokit) =>
  octokit.request("GET /repos/{owner}/{repo}/issues/{issue_number}/comments", { owner: "o", repo: "r", issue_number: 1 });
const createComment = (octokit: ProbotOctokit, body: string) =>
  octokit.request("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", { owner: "o", repo: "r", issue_number: 1, body });

let installation = 100;
/**
 * A client of a fresh installation, so no test shares another's pacing, that has read once: its
 * installation token is fetched, and a write's arrival at GitHub is not delayed by fetching it.
 */
async function client(lane: WriteLane = "background", id = ++installation): Promise<ProbotOctokit> {
  const octokit = await installationOctokit(probot, pacing, id, lane);
  await listComments(octokit);
  return octokit;
}

/** When the fake received each request whose check run or comment is named `name`. */
function receivedAt(operationId: string, name: string): number[] {
  return github
    .calls(operationId)
    .filter((c) => {
      const body = c.body as { name?: string; body?: string } | undefined;
      return body?.name === name || body?.body === name;
    })
    .map((c) => c.at);
}

describe("GitHub write pacing", () => {
  it("hands a request that waits for nothing to fetch at once, without a scheduler's timer turns", async () => {
    // The client has its installation token: nothing should stand between a call and fetch.
    const octokit = await client();
    const fetch = globalThis.fetch;
    let fetched = 0;
    globalThis.fetch = (...args: Parameters<typeof fetch>) => {
      fetched += 1;
      return fetch(...args);
    };
    try {
      const pending = listComments(octokit);
      // The check phase of this turn of the event loop comes before any timer, however short.
      await new Promise((resolve) => setImmediate(resolve));
      expect(fetched).toBe(1);
      await pending;
    } finally {
      globalThis.fetch = fetch;
    }
  });

  it("starts one installation's writes in a lane a second apart, and other installations' and lanes' writes on their own", async () => {
    const first = await client("background");
    const id = installation;
    const otherLane = await client("webhook", id);
    const otherInstallation = await client("background");
    await Promise.all([
      createCheckRun(first, "paced-1"),
      createCheckRun(first, "paced-2"),
      createCheckRun(otherLane, "lane"),
      createCheckRun(otherInstallation, "installation"),
    ]);
    const [one = 0] = receivedAt("checks/create", "paced-1");
    const [two = 0] = receivedAt("checks/create", "paced-2");
    expect(two - one).toBeGreaterThanOrEqual(950);
    // Neither the other lane nor the other installation waited for the first one's second write.
    for (const name of ["lane", "installation"]) expect(receivedAt("checks/create", name)[0]).toBeLessThan(two);
    // A read in the paced lane does not queue behind its writes.
    const third = createCheckRun(first, "paced-3");
    await listComments(first);
    const readAt = github.calls("issues/list-comments").at(-1)?.at ?? 0;
    await third;
    expect(readAt).toBeLessThan(receivedAt("checks/create", "paced-3")[0] ?? 0);
  });

  it("leaves three seconds between writes that notify people", async () => {
    const octokit = await client();
    await createComment(octokit, "first comment");
    await createCheckRun(octokit, "between");
    await createComment(octokit, "second comment");
    const [first = 0] = receivedAt("issues/create-comment", "first comment");
    const [between = 0] = receivedAt("checks/create", "between");
    const [second = 0] = receivedAt("issues/create-comment", "second comment");
    expect(between - first).toBeGreaterThanOrEqual(950);
    expect(second - first).toBeGreaterThanOrEqual(2_950);
  });
});

describe("GitHub retries", () => {
  it("tries again after a server error, a second later", async () => {
    const octokit = await client();
    github.failNext("checks/create", { status: 502, body: { message: "Bad Gateway" } });
    const { data } = await createCheckRun(octokit, "after-502");
    expect(data.id).toBeGreaterThan(0);
    const [failed = 0, succeeded = 0] = receivedAt("checks/create", "after-502");
    expect(succeeded - failed).toBeGreaterThanOrEqual(950);
    expect(retries).toEqual([{ reason: "server_error", status: 502, waitMs: 1_000 }]);
  });

  it("waits out a secondary rate limit for as long as retry-after says", async () => {
    const octokit = await client();
    github.failNext("issues/list-comments", {
      status: 403,
      body: { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." },
      headers: { "retry-after": "1" },
    });
    await listComments(octokit);
    expect(retries).toEqual([{ reason: "secondary_rate_limit", status: 403, waitMs: 1_000 }]);
  });

  it("waits for the reset of a spent rate limit, then tries again", async () => {
    const octokit = await client();
    const reset = Math.ceil(Date.now() / 1000) + 1;
    github.failNext("issues/list-comments", {
      status: 403,
      body: { message: "API rate limit exceeded for installation ID 1." },
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) },
    });
    const started = Date.now();
    await listComments(octokit);
    expect(Date.now()).toBeGreaterThanOrEqual(reset * 1000);
    expect(retries.map((r) => r.reason)).toEqual(["rate_limit"]);
    expect(retries[0]?.waitMs).toBeGreaterThan(reset * 1000 - started);
  });

  it("fails at once, saying when to try again, when GitHub asks for a longer wait than a request may hold", async () => {
    const octokit = await client();
    const before = github.calls("issues/list-comments").length;
    github.failNext("issues/list-comments", {
      status: 429,
      body: { message: "API rate limit exceeded" },
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(Math.ceil(Date.now() / 1000) + 3600) },
    });
    await expect(listComments(octokit)).rejects.toThrow(/GitHub asks to wait until \d{4}-\d\d-\d\dT[\d:.]+Z; try again then/);
    expect(github.calls("issues/list-comments").length - before).toBe(1);
    expect(retries).toEqual([]);
  });

  it("does not retry what would fail the same way again", async () => {
    const octokit = await client();
    const before = github.calls("checks/create").length;
    github.failNext("checks/create", { status: 422, body: { message: "Validation Failed" } });
    await expect(createCheckRun(octokit, "refused")).rejects.toMatchObject({ status: 422 });
    github.failNext("checks/create", { status: 403, body: { message: "Resource not accessible by integration" } });
    await expect(createCheckRun(octokit, "forbidden")).rejects.toMatchObject({ status: 403 });
    expect(github.calls("checks/create").length - before).toBe(2);
    expect(retries).toEqual([]);
  });

  it("gives up after three retries, and never retries an error that is not GitHub's", () => {
    const now = Date.now();
    const error = (status: number, headers: Record<string, string> = {}) =>
      Object.assign(new Error(`status ${status}`), { status, request: {}, response: { headers } });
    expect(retryAfter(error(500), 2, now)).toEqual({ reason: "server_error", waitMs: 9_000 });
    expect(retryAfter(error(500), 3, now)).toBeUndefined();
    expect(retryAfter(error(501), 0, now)).toBeUndefined();
    expect(retryAfter(error(404), 0, now)).toBeUndefined();
    expect(retryAfter(error(429, { "retry-after": "7" }), 0, now)).toEqual({ reason: "secondary_rate_limit", waitMs: 7_000 });
    expect(retryAfter(error(429), 1, now)).toEqual({ reason: "server_error", waitMs: 4_000 });
    // Not GitHub's: an error without a request (a bug, not an outage) is never retried.
    expect(retryAfter(Object.assign(new Error("x"), { status: 500 }), 0, now)).toBeUndefined();
    expect(MAX_RETRY_WAIT_MS).toBe(300_000);
  });
});
