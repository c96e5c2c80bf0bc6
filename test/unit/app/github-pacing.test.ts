import type { Probot, ProbotOctokit } from "probot";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installationOctokit, type WriteLane } from "../../../src/app/github/installation-octokit.ts";
import { GitHubPacing, MAX_RETRY_WAIT_MS, retryAfter, type RetryReason } from "../../../src/app/github/pacing.ts";
import { FakeGitHub } from "../../helpers/fake-github.ts";
import { fakeProbot } from "../../helpers/github-client.ts";
import { ManualClock } from "../../helpers/manual-clock.ts";

// The app's GitHub clients, as `github(installationId, lane)` makes them, against a GitHub faked at
// the HTTP layer: what they pace, what they retry, and what they give up on.

let github: FakeGitHub;
let probot: Probot;
let clock: ManualClock;
let pacing: GitHubPacing;
let retries: { reason: RetryReason; status: number | undefined; waitMs: number }[];
/** Each named request as it went out, with the pacer's clock then: the time the pacer let it go. */
let sent: { name: string; at: number }[];

beforeAll(async () => {
  github = await new FakeGitHub().start();
  github.addRepo("o", "r", 1);
  probot = fakeProbot(github);
});
afterAll(async () => {
  await github.stop();
});
beforeEach(() => {
  retries = [];
  sent = [];
  // The clock moves only when a test moves it, so what is asserted is when the pacer chose to send.
  clock = new ManualClock();
  pacing = new GitHubPacing((retry) => retries.push({ reason: retry.reason, status: retry.status, waitMs: retry.waitMs }), { clock });
});

/** Request options whose fetch notes when the request named `name` went out (every attempt). */
function noted(name: string | undefined): { request?: { fetch: typeof fetch } } {
  if (name === undefined) return {};
  return {
    request: {
      fetch: (...args: Parameters<typeof fetch>) => {
        sent.push({ name, at: clock.elapsed });
        return globalThis.fetch(...args);
      },
    },
  };
}

const createCheckRun = (octokit: ProbotOctokit, name: string) =>
  octokit.request("POST /repos/{owner}/{repo}/check-runs", { owner: "o", repo: "r", name, head_sha: "a".repeat(40), ...noted(name) });
const listComments = (octokit: ProbotOctokit, name?: string) =>
  octokit.request("GET /repos/{owner}/{repo}/issues/{issue_number}/comments", { owner: "o", repo: "r", issue_number: 1, ...noted(name) });
const createComment = (octokit: ProbotOctokit, body: string) =>
  octokit.request("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", {
    owner: "o",
    repo: "r",
    issue_number: 1,
    body,
    ...noted(body),
  });

let installation = 100;
/** A client of a fresh installation, so no test shares another's pacing, that has its installation token already. */
async function client(lane: WriteLane = "background", id = ++installation): Promise<ProbotOctokit> {
  const octokit = await installationOctokit(probot, pacing, id, lane);
  await listComments(octokit);
  return octokit;
}

/** When, in milliseconds on the pacer's clock, each attempt of the request named `name` went out. */
function sentAt(name: string): number[] {
  return sent.filter((s) => s.name === name).map((s) => s.at);
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
    const one = createCheckRun(first, "paced-1");
    const two = createCheckRun(first, "paced-2");
    const others = [createCheckRun(otherLane, "lane"), createCheckRun(otherInstallation, "installation")];
    await one;
    // The clock has not moved. Every write has had its turn decided: only the lane's second waits,
    // for its slot a second after the first; the other lane's and installation's go out at once.
    expect(clock.wakeUps).toEqual([1_000]);
    await Promise.all(others);
    expect(Object.fromEntries(sent.map((s) => [s.name, s.at]))).toEqual({ "paced-1": 0, lane: 0, installation: 0 });
    clock.advance(1_000);
    await two;
    expect(sentAt("paced-2")).toEqual([1_000]);
    // A read in the paced lane does not queue behind its writes.
    const three = createCheckRun(first, "paced-3");
    await listComments(first, "read");
    expect(sentAt("read")).toEqual([1_000]);
    expect(clock.wakeUps).toEqual([2_000]);
    clock.advance(1_000);
    await three;
    expect(sentAt("paced-3")).toEqual([2_000]);
  });

  it("leaves three seconds between writes that notify people", async () => {
    const octokit = await client();
    await clock.run(createComment(octokit, "first comment"));
    await clock.run(createCheckRun(octokit, "between"));
    await clock.run(createComment(octokit, "second comment"));
    expect(sent).toEqual([
      { name: "first comment", at: 0 },
      { name: "between", at: 1_000 },
      { name: "second comment", at: 3_000 },
    ]);
  });
});

describe("GitHub retries", () => {
  it("tries again after a server error, a second later", async () => {
    const octokit = await client();
    github.failNext("checks/create", { status: 502, body: { message: "Bad Gateway" } });
    const { data } = await clock.run(createCheckRun(octokit, "after-502"));
    expect(data.id).toBeGreaterThan(0);
    expect(sentAt("after-502")).toEqual([0, 1_000]);
    expect(retries).toEqual([{ reason: "server_error", status: 502, waitMs: 1_000 }]);
  });

  it("waits out a secondary rate limit for as long as retry-after says", async () => {
    const octokit = await client();
    github.failNext("issues/list-comments", {
      status: 403,
      body: { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." },
      headers: { "retry-after": "1" },
    });
    await clock.run(listComments(octokit, "limited"));
    expect(sentAt("limited")).toEqual([0, 1_000]);
    expect(retries).toEqual([{ reason: "secondary_rate_limit", status: 403, waitMs: 1_000 }]);
  });

  it("waits for the reset of a spent rate limit, and a second more, then tries again", async () => {
    const octokit = await client();
    const reset = clock.now() / 1000 + 5;
    github.failNext("issues/list-comments", {
      status: 403,
      body: { message: "API rate limit exceeded for installation ID 1." },
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) },
    });
    await clock.run(listComments(octokit, "spent"));
    expect(sentAt("spent")).toEqual([0, 6_000]);
    expect(retries).toEqual([{ reason: "rate_limit", status: 403, waitMs: 6_000 }]);
  });

  it("fails at once, saying when to try again, when GitHub asks for a longer wait than a request may hold", async () => {
    const octokit = await client();
    github.failNext("issues/list-comments", {
      status: 429,
      body: { message: "API rate limit exceeded" },
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(clock.now() / 1000 + 3600) },
    });
    const tryAgain = new Date(clock.now() + 3_601_000).toISOString();
    await expect(listComments(octokit, "held")).rejects.toThrow(`(GitHub asks to wait until ${tryAgain}; try again then)`);
    expect(sentAt("held")).toEqual([0]);
    expect(clock.wakeUps).toEqual([]);
    expect(retries).toEqual([]);
  });

  it("does not retry what would fail the same way again", async () => {
    const octokit = await client();
    github.failNext("checks/create", { status: 422, body: { message: "Validation Failed" } });
    await expect(createCheckRun(octokit, "refused")).rejects.toMatchObject({ status: 422 });
    github.failNext("checks/create", { status: 403, body: { message: "Resource not accessible by integration" } });
    await expect(clock.run(createCheckRun(octokit, "forbidden"))).rejects.toMatchObject({ status: 403 });
    expect(sentAt("refused")).toEqual([0]);
    expect(sentAt("forbidden")).toEqual([1_000]);
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
