import type { Probot, ProbotOctokit } from "probot";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GitHubClient } from "../../../src/app/github/client.ts";
import { installationOctokit } from "../../../src/app/github/installation-octokit.ts";
import { GitHubPacing, WriteNotSent, type Supersede, type WriteGuard } from "../../../src/app/github/pacing.ts";
import { FakeGitHub } from "../../helpers/fake-github.ts";
import { fakeProbot } from "../../helpers/github-client.ts";
import { ManualClock } from "../../helpers/manual-clock.ts";

// Writes of one object's state (a check run, a Deployment's statuses) that wait for the same turn
// are combined: a newer state replaces one that has not gone out yet (issue 28: fewer writes per
// deploy). The pacer's clock moves only when a test moves it, so what is asserted is what the
// pacer chose to send, never how long it took.

let github: FakeGitHub;
let probot: Probot;
let clock: ManualClock;
let pacing: GitHubPacing;
let installation = 500;

beforeAll(async () => {
  github = await new FakeGitHub().start();
  github.addRepo("o", "r", 1);
  probot = fakeProbot(github);
});
afterAll(async () => {
  await github.stop();
});
beforeEach(() => {
  clock = new ManualClock();
  pacing = new GitHubPacing(undefined, { clock });
});

/** A client of a fresh installation (its own pacing), with its installation token already. */
async function client(): Promise<ProbotOctokit> {
  const octokit = await installationOctokit(probot, pacing, ++installation, "background");
  await octokit.request("GET /repos/{owner}/{repo}/issues/{issue_number}/comments", { owner: "o", repo: "r", issue_number: 1 });
  return octokit;
}

/** Makes a check run (taking the lane's turn now, so the next write waits a second); returns its id. */
async function checkRun(octokit: ProbotOctokit): Promise<number> {
  const { data } = await octokit.request("POST /repos/{owner}/{repo}/check-runs", {
    owner: "o",
    repo: "r",
    name: "c",
    head_sha: "a".repeat(40),
  });
  return Number(data.id);
}

const update = (octokit: ProbotOctokit, id: number, title: string, supersede?: Supersede) =>
  octokit.request("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", {
    owner: "o",
    repo: "r",
    check_run_id: id,
    ...(title === "Deployed" ? { status: "completed" as const, conclusion: "success" as const } : { status: "in_progress" as const }),
    output: { title, summary: title },
    ...(supersede ? { request: { supersede } } : {}),
  });

/** The titles of the updates of check run `id` that reached GitHub, in order. */
const sentTitles = (id: number): string[] =>
  github
    .calls("checks/update")
    .filter((c) => c.params.check_run_id === String(id))
    .map((c) => (c.body as { output: { title: string } }).output.title);

describe("combining writes of one object while they wait for their turn", () => {
  it("sends only the newest of the updates that waited for one turn, and answers every caller with it", async () => {
    const octokit = await client();
    const id = await checkRun(octokit);
    const key = `check-run ${id}`;
    const applying = update(octokit, id, "Applying", { key, final: false });
    const progress = update(octokit, id, "3 of 5 applied", { key, final: false });
    const deployed = update(octokit, id, "Deployed", { key, final: true });
    await clock.asleep();
    // One turn was taken, by the first; the others joined it.
    expect(clock.wakeUps).toEqual([1_000]);
    clock.advance(1_000);
    const answers = await Promise.all([applying, progress, deployed]);
    expect(sentTitles(id)).toEqual(["Deployed"]);
    expect(new Set(answers.map((a) => a.data.id))).toEqual(new Set([id]));
    expect(github.checkRuns.get(id)).toMatchObject({ status: "completed", conclusion: "success" });
    expect(github.violations).toEqual([]);
  });

  it("never replaces a final state: what comes after it waits for its own turn, after it", async () => {
    const octokit = await client();
    const id = await checkRun(octokit);
    const key = `check-run ${id}`;
    const deployed = update(octokit, id, "Deployed", { key, final: true });
    const late = update(octokit, id, "Applying", { key, final: false });
    await clock.asleep();
    expect(clock.wakeUps).toEqual([1_000, 2_000]);
    clock.advance(1_000);
    await deployed;
    expect(sentTitles(id)).toEqual(["Deployed"]);
    clock.advance(1_000);
    await late;
    expect(sentTitles(id)).toEqual(["Deployed", "Applying"]);
  });

  it("asks a write's guard when its turn comes, not when it is made, and sends nothing the guard turns down", async () => {
    const octokit = await client();
    const id = await checkRun(octokit);
    let wanted = true;
    const asked: string[] = [];
    const guard: WriteGuard = async (send) => {
      asked.push(wanted ? "sent" : "dropped");
      return wanted ? send() : undefined;
    };
    const guarded = (title: string) =>
      octokit.request("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", {
        owner: "o",
        repo: "r",
        check_run_id: id,
        status: "in_progress" as const,
        output: { title, summary: title },
        request: { guard },
      });
    const applying = guarded("Applying");
    await clock.asleep();
    // Another replica moved the deploy on while this write waited for its turn.
    wanted = false;
    clock.advance(1_000);
    await expect(applying).rejects.toBeInstanceOf(WriteNotSent);
    expect(asked).toEqual(["dropped"]);
    expect(sentTitles(id)).toEqual([]);
    wanted = true;
    await clock.run(guarded("3 of 5 applied"));
    expect(asked).toEqual(["dropped", "sent"]);
    expect(sentTitles(id)).toEqual(["3 of 5 applied"]);
  });

  it("answers a check-run update or Deployment status its guard turns down as done: nothing sent, nothing failed", async () => {
    const octokit = await client();
    const id = await checkRun(octokit);
    const gh = new GitHubClient(octokit, FakeGitHub.APP_ID);
    const repository = { owner: "o", name: "r" };
    const guard: WriteGuard = () => Promise.resolve(undefined);
    const statusesBefore = github.calls("repos/create-deployment-status").length;
    await clock.run(
      Promise.all([
        gh.updateCheckRun(repository, id, { status: "in_progress", output: { title: "Applying", summary: "." } }, { guard }),
        gh.deploymentStatus(repository, 1, { state: "in_progress", description: "Applying" }, { coalesce: true, guard }),
      ]),
    );
    expect(sentTitles(id)).toEqual([]);
    expect(github.calls("repos/create-deployment-status")).toHaveLength(statusesBefore);
  });

  it("lets a guard wait outside the lane's places: ten guards waiting hold up no other write", async () => {
    const octokit = await client();
    const ids: number[] = [];
    for (let i = 0; i < 11; i++) ids.push(await clock.run(checkRun(octokit)));
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    // Each guard waits (as for a deploy's lock another replica holds) before it sends.
    const guard: WriteGuard = async (send) => {
      await gate;
      return send();
    };
    const guarded = ids.slice(0, 10).map((id) =>
      octokit.request("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", {
        owner: "o",
        repo: "r",
        check_run_id: id,
        status: "in_progress" as const,
        output: { title: "Applying", summary: "Applying" },
        request: { guard },
      }),
    );
    const last = ids[10] ?? 0;
    await clock.run(update(octokit, last, "plain"));
    expect(sentTitles(last)).toEqual(["plain"]);
    open();
    await clock.run(Promise.all(guarded));
    for (const id of ids.slice(0, 10)) expect(sentTitles(id)).toEqual(["Applying"]);
  });

  it("keeps other objects' writes, and writes that do not ask for it, apart", async () => {
    const octokit = await client();
    const one = await checkRun(octokit);
    const two = await clock.run(checkRun(octokit));
    const writes = [
      update(octokit, one, "Applying", { key: `check-run ${one}`, final: false }),
      update(octokit, two, "Applying", { key: `check-run ${two}`, final: false }),
      update(octokit, one, "plain 1"),
      update(octokit, one, "plain 2"),
    ];
    await clock.run(Promise.all(writes));
    expect(sentTitles(one)).toEqual(["Applying", "plain 1", "plain 2"]);
    expect(sentTitles(two)).toEqual(["Applying"]);
  });

  it("drops the retry of a state once a newer one of the same object is on its way, so the older never lands last", async () => {
    const octokit = await client();
    const id = await checkRun(octokit);
    const key = `check-run ${id}`;
    clock.advance(1_000);
    // The first update goes out at once and fails; its retry waits a second, and meanwhile the final state comes.
    github.failNext("checks/update", { status: 502, body: { message: "Bad Gateway" } });
    const applying = update(octokit, id, "Applying", { key, final: false });
    await clock.asleep();
    const deployed = update(octokit, id, "Deployed", { key, final: true });
    await clock.run(Promise.all([applying, deployed]));
    // The 502 (Applying), then the final state; the older one was never sent again.
    expect(sentTitles(id)).toEqual(["Applying", "Deployed"]);
    expect((await applying).data.id).toBe(id);
    expect(github.checkRuns.get(id)).toMatchObject({ status: "completed", output: { title: "Deployed" } });
  });

  it("retries a final state even when a later write of its object came meanwhile: a final state is never dropped", async () => {
    const octokit = await client();
    const id = await checkRun(octokit);
    const key = `check-run ${id}`;
    clock.advance(1_000);
    github.failNext("checks/update", { status: 502, body: { message: "Bad Gateway" } });
    const deployed = update(octokit, id, "Deployed", { key, final: true });
    await clock.asleep();
    const late = update(octokit, id, "Applying", { key, final: false });
    await clock.run(Promise.all([deployed, late]));
    expect(sentTitles(id)).toEqual(["Deployed", "Applying", "Deployed"]);
    expect(github.checkRuns.get(id)).toMatchObject({ status: "completed", output: { title: "Deployed" } });
  });
});
