import { describe, expect, it } from "vitest";
import {
  contains,
  decidePromotion,
  lineIndex,
  soakStatuses,
  type EnvironmentEvent,
  type LineCommit,
  type PromotionFacts,
} from "../../../src/core/promotion.ts";

const MIN = 60_000;
const SOAK = 10 * MIN;

/** A 40-character SHA made of one repeated letter, readable in failures. */
function sha(letter: string): string {
  return letter.repeat(40);
}

/** A line of commits named by letters, pushed one minute apart; a `!` before a letter marks a force push. */
function line(spec: string): LineCommit[] {
  return [...spec.matchAll(/(!?)([a-f])/g)].map(([, bang, letter], i) => ({
    sha: sha(letter ?? ""),
    at: i * MIN,
    forced: bang === "!",
    pusher: "alice",
  }));
}

function deployed(letter: string, at: number): EnvironmentEvent {
  return { kind: "deployed", sha: sha(letter), at };
}
function failed(letter: string, at: number): EnvironmentEvent {
  return { kind: "failed", sha: sha(letter), at };
}
function drift(drifted: boolean, at: number): EnvironmentEvent {
  return { kind: "drift", drifted, at };
}
function promoted(letter: string, at: number): EnvironmentEvent {
  return { kind: "promoted", sha: sha(letter), at, by: "bob", reason: "hotfix" };
}

/** When each commit of the line soaked, or "-" while it has not: `{ a: 600000, b: "-" }`. */
function soakedAt(commits: LineCommit[], events: EnvironmentEvent[], now: number, soakMs = SOAK): Record<string, number | "-"> {
  const statuses = soakStatuses(commits, events, soakMs, now);
  return Object.fromEntries(commits.map((c, i) => [c.sha[0] ?? "", statuses[i]?.soakedAt ?? "-"]));
}

function decide(facts: Partial<PromotionFacts> & Pick<PromotionFacts, "line" | "upstream" | "now">): ReturnType<typeof decidePromotion> {
  return decidePromotion({ promotions: [], requested: undefined, soakMs: SOAK, ...facts });
}

describe("lineIndex and contains", () => {
  it("finds the newest push of a SHA, and -1 for one the line does not know", () => {
    const commits = [...line("abc"), { sha: sha("a"), at: 3 * MIN, forced: true, pusher: "alice" }];
    expect(lineIndex(commits, sha("a"))).toBe(3);
    expect(lineIndex(commits, sha("b"))).toBe(1);
    expect(lineIndex(commits, sha("f"))).toBe(-1);
  });

  it("a commit contains itself and those before it, and nothing across a force push", () => {
    const commits = line("ab!cd");
    expect(contains(commits, 1, 0)).toBe(true);
    expect(contains(commits, 1, 1)).toBe(true);
    expect(contains(commits, 0, 1)).toBe(false);
    expect(contains(commits, 2, 1)).toBe(false);
    expect(contains(commits, 3, 0)).toBe(false);
    expect(contains(commits, 3, 2)).toBe(true);
    expect(contains(commits, 3, -1)).toBe(false);
  });
});

describe("soakStatuses", () => {
  it("completes a soak exactly at deploy + soak, not a millisecond before", () => {
    const commits = line("a");
    const events = [deployed("a", 5 * MIN)];
    expect(soakStatuses(commits, events, SOAK, 15 * MIN - 1)).toEqual([{ since: 5 * MIN }]);
    expect(soakStatuses(commits, events, SOAK, 15 * MIN)).toEqual([{ soakedAt: 15 * MIN }]);
  });

  it("never restarts an older commit's soak when a newer merge deploys during it (kargo#5342)", () => {
    // A merge every 4 minutes, each deployed upstream 1 minute after it, a 10-minute soak.
    const commits = line("abcdef").map((c, i) => ({ ...c, at: i * 4 * MIN }));
    const events = commits.map((c, i) => ({ kind: "deployed" as const, sha: c.sha, at: i * 4 * MIN + MIN }));
    const statuses = soakStatuses(commits, events, SOAK, 30 * MIN);
    expect(statuses.map((s) => s.soakedAt)).toEqual([11 * MIN, 15 * MIN, 19 * MIN, 23 * MIN, 27 * MIN, undefined]);
    expect(statuses[5]).toEqual({ since: 21 * MIN });
  });

  it("promotes the newest soaked commit at each moment while merges keep coming", () => {
    const commits = line("abcdef").map((c, i) => ({ ...c, at: i * 4 * MIN }));
    const events = commits.map((c, i) => ({ kind: "deployed" as const, sha: c.sha, at: i * 4 * MIN + MIN }));
    const promotedAt = (now: number) =>
      decide({ line: commits.filter((c) => c.at <= now), upstream: events, now }).promote?.[0] ?? "nothing";
    expect([10, 11, 14, 15, 19, 23, 27].map((m) => promotedAt(m * MIN))).toEqual(["nothing", "a", "a", "b", "c", "d", "e"]);
    expect(decide({ line: commits, upstream: events, now: 12 * MIN }).wakeAt).toBe(15 * MIN);
  });

  it("soaks a commit never deployed upstream with the later deployed commit that contains it", () => {
    const commits = line("abc");
    expect(soakedAt(commits, [deployed("a", 0), deployed("c", 3 * MIN)], 20 * MIN)).toEqual({ a: SOAK, b: 13 * MIN, c: 13 * MIN });
  });

  it("does not count a commit before a force push as contained by one after it", () => {
    const commits = line("ab!c");
    expect(soakedAt(commits, [deployed("c", 3 * MIN)], 20 * MIN)).toEqual({ a: "-", b: "-", c: 13 * MIN });
  });

  it("a deploy across a force push breaks the run: the older commit's soak does not go on", () => {
    const commits = line("a!b");
    expect(soakedAt(commits, [deployed("a", 0), deployed("b", 5 * MIN)], 30 * MIN)).toEqual({ a: "-", b: 15 * MIN });
  });

  it("stops the line at a failed deploy until a later commit deploys healthy; what had soaked stays soaked", () => {
    const commits = line("abcde");
    const events = [deployed("a", 0), deployed("b", 12 * MIN), failed("c", 14 * MIN)];
    expect(soakedAt(commits, events, 60 * MIN)).toEqual({ a: SOAK, b: "-", c: "-", d: "-", e: "-" });
    const decision = decide({ line: commits, upstream: events, now: 60 * MIN });
    expect(decision).toMatchObject({ promote: sha("a"), stopped: { sha: sha("c"), at: 14 * MIN } });
    expect(decision.wakeAt).toBeUndefined();

    const fixed = [...events, deployed("d", 30 * MIN)];
    expect(soakedAt(commits, fixed, 40 * MIN)).toEqual({ a: SOAK, b: 40 * MIN, c: 40 * MIN, d: 40 * MIN, e: "-" });
    expect(decide({ line: commits, upstream: fixed, now: 40 * MIN }).stopped).toBeUndefined();
  });

  it("after a failure, a redeploy of an earlier commit proves that commit only, not the failed one", () => {
    const commits = line("abc");
    const events = [deployed("a", 0), failed("b", 2 * MIN), deployed("a", 3 * MIN)];
    expect(soakedAt(commits, events, 60 * MIN)).toEqual({ a: 13 * MIN, b: "-", c: "-" });
  });

  it("a drift breaks the run: a soak interrupted by it is not complete", () => {
    const commits = line("a");
    expect(soakedAt(commits, [deployed("a", 0), drift(true, SOAK - 1)], 60 * MIN)).toEqual({ a: "-" });
    expect(soakStatuses(commits, [deployed("a", 0), drift(true, SOAK - 1)], SOAK, 60 * MIN)).toEqual([{}]);
    expect(soakedAt(commits, [deployed("a", 0), drift(true, SOAK)], 60 * MIN)).toEqual({ a: SOAK });
  });

  it("a drift cleared starts a new run of the commit the environment runs", () => {
    const commits = line("ab");
    const events = [deployed("a", 0), deployed("b", MIN), drift(true, 5 * MIN), drift(false, 7 * MIN)];
    expect(soakStatuses(commits, events, SOAK, 16 * MIN)).toEqual([{ since: 7 * MIN }, { since: 7 * MIN }]);
    expect(soakedAt(commits, events, 17 * MIN)).toEqual({ a: 17 * MIN, b: 17 * MIN });
    // A drift check that finds nothing, with no drift before it, starts nothing new.
    expect(soakedAt(commits, [deployed("a", 0), drift(false, 5 * MIN)], SOAK)).toEqual({ a: SOAK, b: "-" });
  });

  it("a drift cleared after a failed deploy proves nothing", () => {
    const commits = line("ab");
    const events = [deployed("a", 0), drift(true, MIN), failed("b", 2 * MIN), drift(false, 3 * MIN)];
    expect(soakStatuses(commits, events, SOAK, 60 * MIN)).toEqual([{}, {}]);
  });

  it("a drift cleared after a deploy of a commit the line does not know proves nothing", () => {
    const commits = line("a");
    const events = [deployed("a", 0), drift(true, MIN), deployed("f", 2 * MIN), drift(false, 3 * MIN)];
    expect(soakStatuses(commits, events, SOAK, 60 * MIN)).toEqual([{}]);
  });

  it("counts a `/promote`d commit, and what it contains, as soaked at that moment", () => {
    const commits = line("abc");
    const events = [deployed("c", 0), promoted("b", 3 * MIN)];
    expect(soakedAt(commits, events, 4 * MIN)).toEqual({ a: 3 * MIN, b: 3 * MIN, c: "-" });
    expect(soakStatuses(commits, events, SOAK, 4 * MIN)[2]).toEqual({ since: 0 });
  });

  it("keeps the time a soak ended when a `/promote` comes after it", () => {
    const commits = line("a");
    expect(soakedAt(commits, [deployed("a", 0), promoted("a", 30 * MIN)], 40 * MIN)).toEqual({ a: SOAK });
  });

  it("ignores events after now", () => {
    const commits = line("ab");
    const events = [deployed("a", 0), failed("b", 20 * MIN), drift(true, 15 * MIN + 1), promoted("b", 20 * MIN)];
    expect(soakedAt(commits, events, SOAK + 5 * MIN)).toEqual({ a: SOAK, b: "-" });
    const decision = decide({ line: commits, upstream: events.filter((e) => e.kind !== "promoted"), now: 5 * MIN });
    expect(decision.stopped).toBeUndefined();
    expect(decision.wakeAt).toBe(SOAK);
  });

  it("a deploy of a commit the line does not know proves nothing and ends the run", () => {
    const commits = line("a");
    expect(soakedAt(commits, [deployed("a", 0), deployed("f", MIN)], 60 * MIN)).toEqual({ a: "-" });
  });

  it("takes events in any order", () => {
    const commits = line("abc");
    const events = [deployed("c", 3 * MIN), drift(true, 8 * MIN), deployed("a", 0), drift(false, 9 * MIN)];
    expect(soakedAt(commits, events, 60 * MIN)).toEqual({ a: 19 * MIN, b: 19 * MIN, c: 19 * MIN });
  });
});

describe("decidePromotion", () => {
  it("does not promote the requested commit, nor anything it contains", () => {
    const commits = line("abc");
    const upstream = [deployed("a", 0), deployed("b", MIN), deployed("c", 2 * MIN)];
    expect(decide({ line: commits, upstream, now: 11 * MIN }).promote).toBe(sha("b"));
    expect(decide({ line: commits, upstream, now: 11 * MIN, requested: sha("b") }).promote).toBeUndefined();
    expect(decide({ line: commits, upstream, now: 11 * MIN, requested: sha("c") }).promote).toBeUndefined();
    expect(decide({ line: commits, upstream, now: 11 * MIN, requested: sha("a") }).promote).toBe(sha("b"));
    expect(decide({ line: commits, upstream, now: 11 * MIN, requested: sha("f") }).promote).toBe(sha("b"));
  });

  it("does not promote a commit pushed before the requested one, even across a force push", () => {
    // b was force-pushed over a; production was asked for b (a /sync). Promoting a would move it back.
    const commits = line("a!b");
    const upstream = [deployed("a", 0)];
    expect(decide({ line: commits, upstream, now: 20 * MIN, requested: sha("b") }).promote).toBeUndefined();
  });

  it("does not promote a commit the branch dropped with a force push", () => {
    // b soaked, then c was force-pushed over it: the branch no longer has b, production must not get it.
    const commits = line("ab!c");
    const upstream = [deployed("a", 0), deployed("b", MIN)];
    const decision = decide({ line: commits, upstream, now: 20 * MIN, requested: sha("a") });
    expect(decision.promote).toBeUndefined();
    expect(decide({ line: commits, upstream: [...upstream, deployed("c", 21 * MIN)], now: 31 * MIN }).promote).toBe(sha("c"));
  });

  it("wakes at the soonest soak end still ahead", () => {
    const commits = line("abc");
    const upstream = [deployed("a", 0), deployed("b", 4 * MIN), deployed("c", 8 * MIN)];
    expect(decide({ line: commits, upstream, now: 5 * MIN }).wakeAt).toBe(SOAK);
    expect(decide({ line: commits, upstream, now: SOAK }).wakeAt).toBe(14 * MIN);
    expect(decide({ line: commits, upstream, now: 18 * MIN }).wakeAt).toBeUndefined();
  });

  it("a `/promote` of the environment moves the commit past the upstream soak", () => {
    const commits = line("ab");
    const upstream = [deployed("b", 0)];
    const decision = decide({ line: commits, upstream, promotions: [promoted("b", MIN)], now: 2 * MIN });
    expect(decision.promote).toBe(sha("b"));
    expect(decision.statuses.get(sha("a"))).toEqual({ soakedAt: MIN });
  });

  it("chains: staging's own deploys feed production's decision", () => {
    const commits = line("ab");
    const dev = [deployed("a", 0), deployed("b", 4 * MIN)];
    const staging = decide({ line: commits, upstream: dev, now: SOAK });
    expect(staging.promote).toBe(sha("a"));
    // staging deploys a when dev's soak of it ends; production waits for staging's own soak of a.
    const stagingEvents = [deployed("a", SOAK + MIN)];
    expect(decide({ line: commits, upstream: stagingEvents, now: 20 * MIN }).promote).toBeUndefined();
    expect(decide({ line: commits, upstream: stagingEvents, now: 20 * MIN }).wakeAt).toBe(21 * MIN);
    expect(decide({ line: commits, upstream: stagingEvents, now: 21 * MIN }).promote).toBe(sha("a"));
    // dev's newer soaks do not reach production before staging ran them.
    expect(decide({ line: commits, upstream: stagingEvents, now: 40 * MIN }).promote).toBe(sha("a"));
  });
});
