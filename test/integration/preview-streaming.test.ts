import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { PREVIEW_QUEUE } from "../../src/app/queue/queues.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { ManualClock } from "../helpers/manual-clock.ts";
import { pullRequestPayload } from "../helpers/payloads.ts";

// Issue 28, item 2: a pull request that touches a base shared by every environment renders them
// in parallel on every render process, and its comment streams: a summary first, filled in as
// environments finish, the final body last; the check run completes only at the end. GitHub's
// write pacing runs on a clock the test moves, so what is asserted is the order of the writes,
// never how long anything took.

const OWNER = "sluice-test";
const REPO = "streaming";
const REPO_ID = 6363;
const INSTALLATION = 779;
const target = { owner: OWNER, repo: REPO, repoId: REPO_ID, installation: INSTALLATION };
const ENVIRONMENTS = Array.from({ length: 24 }, (_, i) => `o-${String(i).padStart(2, "0")}`);

const configMap = (name: string, level: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  level: ${level}\n`;

/** 24 kustomize overlays over one shared base of three objects; `level` is the base's setting. */
function files(level: string): Record<string, string> {
  const out: Record<string, string> = {
    ".github/sluice.yml": [
      "version: 1",
      "environments:",
      ...ENVIRONMENTS.flatMap((name) => [`  - name: ${name}`, `    path: overlays/${name}`, `    namespace: ${name}`]),
      "",
    ].join("\n"),
    "base/kustomization.yaml": "resources:\n  - a.yaml\n  - b.yaml\n  - c.yaml\n",
    "base/a.yaml": configMap("a", level),
    "base/b.yaml": configMap("b", level),
    "base/c.yaml": configMap("c", level),
  };
  for (const name of ENVIRONMENTS) out[`overlays/${name}/kustomization.yaml`] = `resources:\n  - ../../base\nnamePrefix: ${name}-\n`;
  return out;
}

const pacing = new ManualClock();
let h: AppHarness;
/** The wrapper around kustomize appends a line as each build starts and ends, in the order they do. */
let buildLog: string;
let nextSha = 1;
let nextPullRequest = 1;

async function commit(level: string, changed: Record<string, string> = {}): Promise<string> {
  const dir = await checkout(undefined, { ...files(level), ...changed });
  const sha = (0x7000 + nextSha++).toString(16).padStart(40, "d");
  await h.github.addCommit(OWNER, REPO, sha, dir);
  return sha;
}

async function jobsDone(): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n"))
    if (line.startsWith("sluice_jobs_total{") && line.includes(`queue="${PREVIEW_QUEUE}"`)) total += Number(line.split(" ").at(-1));
  return total;
}

/** Waits for the preview job to end, moving the pacing clock a second at a time so paced writes go. */
async function finish(jobsBefore: number): Promise<void> {
  await expect
    .poll(
      async () => {
        pacing.advance(1_000);
        return jobsDone();
      },
      { timeout: 120_000, interval: 50 },
    )
    .toBe(jobsBefore + 1);
}

/** The comment bodies the app wrote on pull request `number`, in the order GitHub received them, and where in the request log each was. */
function commentWrites(number: number): { body: string; index: number }[] {
  const commentId = h.github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.id;
  return h.github.requests.flatMap((request, index) => {
    const body = (request.body as { body?: string } | undefined)?.body ?? "";
    const ours =
      (request.operationId === "issues/create-comment" && request.params.issue_number === String(number)) ||
      (request.operationId === "issues/update-comment" && request.params.comment_id === String(commentId));
    return ours ? [{ body, index }] : [];
  });
}

/** How many environments a progress body says are done, or undefined for a final body. */
function doneCount(body: string): number | undefined {
  const match = /\*\*Rendering: (\d+) of (\d+) environments? done\.\*\*/.exec(body);
  return match ? Number(match[1]) : undefined;
}

/** Opens pull request `number` with the download of its commits held until the job asks for it; lets it go on when called. */
async function openWithCheckoutsHeld(number: number, base: string, head: string): Promise<() => void> {
  const release = h.github.pause("repos/download-tarball-archive");
  expect((await h.deliver("pull_request", pullRequestPayload(target, "opened", number, base, head))).status).toBe(200);
  await expect.poll(() => h.github.calls("repos/download-tarball-archive").length, { timeout: 30_000 }).toBeGreaterThan(0);
  return release;
}

beforeAll(async () => {
  const bin = await tempDir("sluice-streaming-bin-");
  buildLog = join(bin, "builds.log");
  const kustomize = join(bin, "kustomize");
  await writeFile(
    kustomize,
    `#!/bin/sh\necho "start $$ $*" >> '${buildLog}'\n'${inject("kustomize")}' "$@"\ncode=$?\necho "end $$ $*" >> '${buildLog}'\nexit $code\n`,
  );
  await chmod(kustomize, 0o755);
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize,
    helm: inject("helm"),
    database: 31,
    pacingClock: pacing,
    // The wrapper writes its log outside the checkout, which the sandbox would refuse.
    env: { SLUICE_RENDER_SANDBOX: "off" },
  });
  h.github.addRepo(OWNER, REPO, REPO_ID);
});
afterAll(async () => {
  await h.stop();
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

describe("a pull request that touches every environment", () => {
  it("posts a summary first, fills it in without a body going back, writes the final body last and completes the check after it", async () => {
    const [base, head] = [await commit("info"), await commit("debug")];
    const number = nextPullRequest++;
    const jobsBefore = await jobsDone();
    // Held until the job has read its clock; then the clock jumps, so it has rendered for long enough to stream.
    const release = await openWithCheckoutsHeld(number, base, head);
    h.clock.now += 60_000;
    release();

    // The first write has no write before it to wait for; every later one waits for the pacing clock.
    await expect.poll(() => commentWrites(number).length, { timeout: 60_000 }).toBe(1);
    const [first] = commentWrites(number);
    expect(doneCount(first?.body ?? "")).toBeLessThan(ENVIRONMENTS.length);
    // Posted as soon as it may be: maybe before every environment's inputs are read.
    expect(first?.body).toMatch(/of 24 environments done\.\*\*|Reading which of the 24 environments this change affects/);
    // Every environment renders while the pacer holds the next write: the final body waits its turn.
    await expect.poll(() => buildsEnded(), { timeout: 120_000, interval: 100 }).toBe(2 * ENVIRONMENTS.length);
    const run = [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === "sluice/preview");
    expect(run?.status).toBe("in_progress");

    await finish(jobsBefore);

    const writes = commentWrites(number);
    const counts = writes.map((w) => doneCount(w.body));
    const progress = counts.slice(0, -1);
    expect(progress.every((count) => count !== undefined)).toBe(true);
    expect(progress).toEqual([...progress].sort((a, b) => (a ?? 0) - (b ?? 0)));
    // Coalesced: while a write waits for the pacer, newer bodies replace each other.
    expect(writes.length).toBeLessThan(ENVIRONMENTS.length);
    const last = writes.at(-1);
    expect(doneCount(last?.body ?? "")).toBeUndefined();
    for (const name of ENVIRONMENTS) expect(last?.body).toMatch(new RegExp(`^\\| \`${name}\` \\| 0 \\| 3 \\| 0 \\|`, "m"));
    expect(h.github.comments.find((c) => c.issue === number)?.body).toBe(last?.body);
    const completed = h.github.requests.findIndex(
      (r) =>
        r.operationId === "checks/update" &&
        (r.body as { status?: string }).status === "completed" &&
        r.params.check_run_id === String(run?.id),
    );
    expect(completed).toBeGreaterThan(last?.index ?? Infinity);
    expect(h.github.checkRuns.get(run?.id ?? 0)?.conclusion).toBe("success");
  });

  it("renders different environments at once on the render processes, and the final comment is complete", async () => {
    await writeFile(buildLog, "");
    const [base, head] = [await commit("warn"), await commit("error")];
    const number = nextPullRequest++;
    const jobsBefore = await jobsDone();
    expect((await h.deliver("pull_request", pullRequestPayload(target, "opened", number, base, head))).status).toBe(200);
    await finish(jobsBefore);

    const lines = (await readFile(buildLog, "utf8")).split("\n").filter((line) => / build /.test(line));
    const inFlight = new Map<string, string>();
    let most = 0;
    let environmentsAtOnce = 0;
    for (const line of lines) {
      const [event = "", pid = "", ...args] = line.split(" ");
      if (event === "start") inFlight.set(pid, /overlays\/(o-\d+)/.exec(args.join(" "))?.[1] ?? "");
      else inFlight.delete(pid);
      most = Math.max(most, inFlight.size);
      environmentsAtOnce = Math.max(environmentsAtOnce, new Set(inFlight.values()).size);
    }
    expect(lines.filter((line) => line.startsWith("end")).length).toBe(2 * ENVIRONMENTS.length);
    expect(most).toBeGreaterThan(1);
    expect(environmentsAtOnce).toBeGreaterThan(1);
    const body = h.github.comments.find((c) => c.issue === number)?.body ?? "";
    expect(doneCount(body)).toBeUndefined();
    for (const name of ENVIRONMENTS) expect(body).toMatch(new RegExp(`^\\| \`${name}\` \\| 0 \\| 3 \\| 0 \\|`, "m"));
  });
});

describe("a pull request that touches every environment, near its end", () => {
  it("writes no progress once the renders left are expected to end within two of GitHub's write gaps: the final comment would wait behind it", async () => {
    const [base, head] = [await commit("trace"), await commit("fatal")];
    const number = nextPullRequest++;
    const jobsBefore = await jobsDone();
    // Held until the job has read its clock; then the clock moves a second and is held there:
    // environments are done at `done` a second, so the `24 − done` left are expected within two
    // seconds (a write's wait for its turn, and the final comment's behind it) once 8 are done.
    const release = await openWithCheckoutsHeld(number, base, head);
    const held = h.clock.now + 1_000;
    h.clock.now = held;
    const hold = setInterval(() => {
      h.clock.now = held;
    }, 5);
    try {
      release();
      await finish(jobsBefore);
    } finally {
      clearInterval(hold);
    }

    const counts = commentWrites(number).map((w) => doneCount(w.body));
    const progress = counts.slice(0, -1);
    expect(progress.length).toBeGreaterThan(0);
    // 8 at most; up to 11 should the held clock slip by as much as a second between two holds.
    for (const count of progress) expect(count).toBeLessThan(12);
    expect(counts.at(-1)).toBeUndefined();
  });
});

async function buildsEnded(): Promise<number> {
  const text = await readFile(buildLog, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line.startsWith("end ") && / build /.test(line)).length;
}

describe("a pull request that touches a few environments", () => {
  it("posts its final comment alone, however long it renders: no progress write holds it behind GitHub's pacing", async () => {
    const base = await commit("info");
    const head = await commit(
      "info",
      Object.fromEntries(
        ENVIRONMENTS.slice(0, 3).map((name) => [
          `overlays/${name}/kustomization.yaml`,
          `resources:\n  - ../../base\nnamePrefix: ${name}-v2-\n`,
        ]),
      ),
    );
    const number = nextPullRequest++;
    const jobsBefore = await jobsDone();
    // Held until the job has read its clock; then the clock jumps, so it has rendered for long enough to stream.
    const release = await openWithCheckoutsHeld(number, base, head);
    h.clock.now += 60_000;
    release();
    await finish(jobsBefore);

    const writes = commentWrites(number);
    expect(writes).toHaveLength(1);
    expect(doneCount(writes[0]?.body ?? "")).toBeUndefined();
    expect(writes[0]?.body).toContain("21 environments unaffected by this change, not rendered.");
  });
});
