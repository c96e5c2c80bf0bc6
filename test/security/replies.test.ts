import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { deliveryKey } from "../../src/app/state/redis-keys.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { liveParts } from "../helpers/live-markdown.ts";
import { commentPayload, type PayloadTarget } from "../helpers/payloads.ts";

// Plays a commenter who is nobody in particular (anyone can comment on a public pull request)
// against the app over HTTP with signed webhooks: what they write must not come out as Sluice's
// own markdown, and their comments must not make Sluice post over and over.

const OWNER = "acme";
const REPO = "web";
const target: PayloadTarget = { owner: OWNER, repo: REPO, repoId: 8100, installation: 61 };
let h: AppHarness;
let nextPull = 1;
let nextComment = 70_000;

function tried(attempt: string, outcome: string): void {
  process.stdout.write(`  [commenter] tried: ${attempt}\n  [commenter] result: ${outcome}\n`);
}

beforeAll(async () => {
  h = await startHarness({ redisUrl: inject("redisUrl"), kustomize: inject("kustomize"), helm: inject("helm"), database: 3 });
  h.github.addRepo(OWNER, REPO, target.repoId);
  const config = "version: 1\nenvironments:\n  - name: staging\n    path: manifests\n  - name: production\n    path: manifests\n";
  const main = "e".repeat(40);
  await h.github.addCommit(OWNER, REPO, main, await checkout(undefined, { ".github/sluice.yml": config, "manifests/.keep": "" }));
  // Commands read the configuration of the default branch's head.
  h.github.setBranch(OWNER, REPO, "main", main);
});
afterAll(async () => {
  await h.stop();
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

/** A new open pull request, from a fork as a stranger's would be. */
function pull(): number {
  const number = nextPull++;
  const sha = "e".repeat(40);
  h.github.setPull(OWNER, REPO, {
    number,
    base: { sha, ref: "main" },
    head: { sha, ref: `stranger-${number}` },
    state: "open",
    draft: false,
    merged: false,
  });
  return number;
}

const replies = (number: number): string[] => h.github.comments.filter((c) => c.issue === number && c.repo === REPO).map((c) => c.body);

/** Delivers a comment as a stranger; resolves once the app has handled it (or decided to do nothing). */
async function comment(number: number, body: string): Promise<void> {
  const delivery = randomUUID();
  expect((await h.deliver("issue_comment", commentPayload(target, number, nextComment++, body, "mallory"), delivery)).status).toBe(200);
  await expect.poll(() => h.redis.get(deliveryKey(delivery)), { timeout: 60_000, interval: 100 }).toBe("handled");
}

describe("a commenter cannot make Sluice post their markdown", () => {
  const attacks = [
    "/sluice deploy [x](https://evil) @org/team ![i](https://evil/p.png)",
    "/sluice deploy`[x](https://evil)`@org/team`![i](https://evil/p.png)`",
    "/sluice x`#1<details>GH-2`",
    "/sync a`[x](https://evil) b`@org/team c`![i](https://evil/p.png)",
    "/rollback staging`@org/team` to abc1234",
  ];

  it.each(attacks)("answers %s with text only", async (body) => {
    const number = pull();
    await comment(number, body);
    const [reply, ...more] = replies(number);
    expect(more).toEqual([]);
    expect(reply).toContain("I did not understand that");
    expect(liveParts(reply ?? "")).toEqual([]);
    tried(JSON.stringify(body), `one reply, with nothing live in it: ${JSON.stringify(reply?.split("\n", 1)[0])}`);
  });

  it("leaves another bot's command alone", async () => {
    const number = pull();
    await comment(number, "/deploy [x](https://evil) @org/team ![i](https://evil/p.png)");
    expect(replies(number)).toEqual([]);
    tried("/deploy [x](https://evil) @org/team ![i](https://evil/p.png)", "not a Sluice command: no reply at all");
  });

  it("answers ten invalid commands in a row once, and again a minute later", async () => {
    const number = pull();
    const start = h.clock.now;
    for (let i = 0; i < 10; i++) {
      // Each comment arrives at the same moment by the app's clock, however slow this machine is.
      h.clock.now = start;
      await comment(number, `/sluice deploy${i} @org/team`);
    }
    expect(replies(number)).toHaveLength(1);
    const other = pull();
    h.clock.now = start;
    await comment(other, "/sluice deploy @org/team");
    expect(replies(other)).toHaveLength(1);
    h.clock.now = start + 61_000;
    await comment(number, "/sluice deploy10 @org/team");
    expect(replies(number)).toHaveLength(2);
    for (const reply of [...replies(number), ...replies(other)]) expect(liveParts(reply)).toEqual([]);
    tried(
      "ten invalid commands in a row on one pull request, one on another, and one more a minute later",
      `${replies(number).length - 1} reply to the ten, ${replies(other).length} on the other pull request, 1 a minute later`,
    );
  });
});
