import { describe, expect, it } from "vitest";
import { changedFiles, planRollback, revertBranch, rollbackTarget } from "../../../src/core/rollback.ts";
import type { Revision } from "../../../src/core/inventory.ts";

const sha = (c: string): string => c.repeat(40);
const revision = (c: string, reason: Revision["reason"] = "merge"): Revision => ({
  sha: sha(c),
  jobId: `${reason}-${c}`,
  digest: "d".repeat(64),
  appliedAt: "2026-11-27T12:00:00.000Z",
  reason,
});

describe("rollbackTarget", () => {
  it("takes the revision live before the merge's newest deploy that was not a rollback", () => {
    // Newest first: A, then B, then a rollback to A, then C synced.
    const history = { revisions: [revision("c", "sync"), revision("a", "rollback"), revision("b"), revision("a")] };
    expect(rollbackTarget(history, { before: sha("b") })).toEqual({ ok: true, target: revision("a"), from: revision("c", "sync") });
    expect(rollbackTarget(history, { before: sha("c") })).toEqual({
      ok: true,
      target: revision("a", "rollback"),
      from: revision("c", "sync"),
    });
    // A rollback to A is not a deploy of A's merge; the merge of A is the oldest revision.
    expect(rollbackTarget(history, { before: sha("a") })).toEqual({
      ok: false,
      reason: expect.stringContaining(`nothing was deployed before \`aaaaaaa\``) as string,
    });
  });

  it("skips revisions of the same commit (a sync of the merge) to find what ran before", () => {
    const history = { revisions: [revision("b", "sync"), revision("b"), revision("a")] };
    expect(rollbackTarget(history, { before: sha("b") })).toMatchObject({ ok: true, target: revision("a") });
  });

  it("takes any kept revision by SHA prefix, and refuses with the known revisions otherwise", () => {
    const history = { revisions: [revision("b"), revision("a")] };
    expect(rollbackTarget(history, { to: "aaaaaaa" })).toEqual({ ok: true, target: revision("a"), from: revision("b") });
    expect(rollbackTarget(history, { to: "0123456" })).toEqual({
      ok: false,
      reason:
        "`0123456` is not among the revisions the agent keeps (known: `bbbbbbb` merge 2026-11-27 12:00, `aaaaaaa` merge 2026-11-27 12:00)",
    });
    expect(rollbackTarget(history, { before: sha("f") })).toMatchObject({ ok: false });
  });

  it("refuses when the agent has reported nothing", () => {
    expect(rollbackTarget(undefined, { before: sha("a") })).toEqual({
      ok: false,
      reason: "the agent has reported no deployed revision of this environment yet",
    });
    expect(rollbackTarget({ revisions: [] }, { to: "aaaaaaa" })).toMatchObject({ ok: false });
  });
});

describe("revertBranch", () => {
  it("names the branch after the merge it reverts, or the revision asked for", () => {
    expect(revertBranch({ before: sha("b") }, sha("a"))).toBe(`sluice/revert-${sha("b")}`);
    expect(revertBranch({ to: "aaaaaaa" }, sha("a"))).toBe(`sluice/rollback-to-${sha("a")}`);
  });
});

describe("changedFiles", () => {
  const file = (path: string, blob: string, mode = "100644") => ({ path, sha: blob.repeat(40), mode });

  it("names the files a revert adds, deletes, or changes in content or mode, sorted, and no other", () => {
    const before = [file("ci.yml", "a"), file("old.yml", "b"), file("tools/run.sh", "c"), file("same.yml", "d")];
    const after = [file("ci.yml", "e"), file("tools/run.sh", "c", "100755"), file("same.yml", "d"), file("new/publish.yml", "f")];
    expect(changedFiles(before, after)).toEqual(["ci.yml", "new/publish.yml", "old.yml", "tools/run.sh"]);
    expect(changedFiles(before, before)).toEqual([]);
    expect(changedFiles([], after)).toEqual(["ci.yml", "new/publish.yml", "same.yml", "tools/run.sh"]);
  });
});

describe("planRollback", () => {
  const env = (name: string, branch: string, history?: { revisions: Revision[] }) => ({ name, branch, history });

  it("gives each environment its step, in the order asked, and one revert pull request per branch and target", () => {
    // production and staging went from A to B on main; qa tracks its own branch; dev has no record.
    const onMain = { revisions: [revision("b"), revision("a")] };
    const plan = planRollback(
      [env("production", "main", onMain), env("dev", "main"), env("staging", "main", onMain), env("qa", "qa", onMain)],
      { before: sha("b") },
    );
    expect(plan.steps).toEqual([
      { environment: "production", ok: true, target: revision("a"), from: revision("b") },
      { environment: "dev", ok: false, reason: "the agent has reported no deployed revision of this environment yet" },
      { environment: "staging", ok: true, target: revision("a"), from: revision("b") },
      { environment: "qa", ok: true, target: revision("a"), from: revision("b") },
    ]);
    expect(plan.reverts).toEqual([
      { branch: "main", head: `sluice/revert-${sha("b")}`, from: sha("b"), target: sha("a"), environments: ["production", "staging"] },
      { branch: "qa", head: `sluice/revert-${sha("b")}`, from: sha("b"), target: sha("a"), environments: ["qa"] },
    ]);
  });

  it("splits environments of one branch that go back to different revisions, keeping the first one's live revision", () => {
    const production = { revisions: [revision("c", "sync"), revision("b"), revision("a")] };
    const staging = { revisions: [revision("d"), revision("b"), revision("e")] };
    const plan = planRollback([env("production", "main", production), env("staging", "main", staging)], { before: sha("b") });
    expect(plan.reverts).toEqual([
      { branch: "main", head: `sluice/revert-${sha("b")}`, from: sha("c"), target: sha("a"), environments: ["production"] },
      { branch: "main", head: `sluice/revert-${sha("b")}`, from: sha("d"), target: sha("e"), environments: ["staging"] },
    ]);
    const shared = planRollback(
      [env("staging", "main", staging), env("production", "main", { revisions: [revision("b"), revision("e")] })],
      {
        to: "eeeeeee",
      },
    );
    expect(shared.reverts).toEqual([
      { branch: "main", head: `sluice/rollback-to-${sha("e")}`, from: sha("d"), target: sha("e"), environments: ["staging", "production"] },
    ]);
  });

  it("plans no revert pull request when no environment can roll back", () => {
    expect(planRollback([env("production", "main"), env("staging", "main", { revisions: [] })], { to: "aaaaaaa" })).toEqual({
      steps: [
        { environment: "production", ok: false, reason: "the agent has reported no deployed revision of this environment yet" },
        { environment: "staging", ok: false, reason: "the agent has reported no deployed revision of this environment yet" },
      ],
      reverts: [],
    });
  });
});
