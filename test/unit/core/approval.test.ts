import { describe, expect, it } from "vitest";
import {
  approvalDeadline,
  approvalSchema,
  approvalsNeeded,
  approversText,
  judgeApproval,
  type ApprovalPolicy,
  type ApprovalSubject,
  type ApproverFacts,
} from "../../../src/core/approval.ts";
import { validateConfig } from "../../../src/core/config.ts";

// Approvals as policy (issue 26): who may approve a deploy, four eyes, and how many must.

function policy(input: Record<string, unknown> = {}): ApprovalPolicy {
  return approvalSchema.parse(input);
}

const MERGED: ApprovalSubject = { author: "Alice", merger: "bob", approvals: [] };

function approver(login: string, facts: Partial<Omit<ApproverFacts, "login">> = {}): ApproverFacts {
  return { login, teams: [], ...facts };
}

function configErrors(approval: string): { line: number; field: string; message: string }[] {
  const text = `version: 1\nenvironments:\n  - name: production\n    approval:\n${approval}`;
  const result = validateConfig(text);
  if (result.ok) throw new Error("expected the configuration to be invalid");
  return result.errors.map((e) => ({ line: e.line, field: e.field, message: e.message }));
}

describe("approvalSchema", () => {
  it("fills in one approval from write, four eyes and no timeout", () => {
    expect(policy()).toEqual({ required: 1, from: [{ kind: "permission", level: "write" }], notAuthor: true });
  });

  it("reads a team, a list of sources and a timeout", () => {
    const parsed = policy({ required: 2, from: ["maintain", "@acme/release-managers"], notAuthor: false, timeout: "24h" });

    expect(parsed).toEqual({
      required: 2,
      from: [
        { kind: "permission", level: "maintain" },
        { kind: "team", org: "acme", slug: "release-managers" },
      ],
      notAuthor: false,
      timeout: 86_400_000,
    });
    expect(approversText(parsed)).toBe("maintain permission or active membership in @acme/release-managers");
  });

  it("reads a team from YAML, where it is quoted because YAML reserves @", () => {
    const result = validateConfig('version: 1\nenvironments:\n  - name: production\n    approval:\n      from: [admin, "@acme/release"]\n');

    expect(result.ok && result.config.environments[0]?.approval?.from).toEqual([
      { kind: "permission", level: "admin" },
      { kind: "team", org: "acme", slug: "release" },
    ]);
  });

  it("names the line, the field and the value of a source that is neither a permission level nor a team", () => {
    expect(configErrors("      from: wrte\n")).toEqual([
      {
        line: 5,
        field: "environments[0].approval.from",
        message:
          '.github/sluice.yml:5: environments[0].approval.from: must be a permission level (triage, write, maintain, admin) or a team as @org/team-slug, not "wrte"',
      },
    ]);
    expect(configErrors("      from: [write, acme/release]\n")).toEqual([
      {
        line: 5,
        field: "environments[0].approval.from[1]",
        message:
          '.github/sluice.yml:5: environments[0].approval.from[1]: must be a permission level (triage, write, maintain, admin) or a team as @org/team-slug, not "acme/release"',
      },
    ]);
    expect(configErrors("      from: read\n")[0]?.message).toMatch(/not "read"$/);
    expect(configErrors("      from: []\n")[0]?.message).toMatch(
      /environments\[0\]\.approval\.from: must name at least one permission level or team$/,
    );
  });

  it("refuses a count outside 1 to 10 and a timeout that is not a duration", () => {
    expect(configErrors("      required: 0\n")[0]).toMatchObject({ line: 5, field: "environments[0].approval.required" });
    expect(configErrors("      required: 11\n")[0]).toMatchObject({ field: "environments[0].approval.required" });
    expect(configErrors("      required: 1.5\n")[0]).toMatchObject({ field: "environments[0].approval.required" });
    expect(configErrors("      timeout: soon\n")[0]).toEqual({
      line: 5,
      field: "environments[0].approval.timeout",
      // The duration's own wording belongs to src/core/duration.ts; here, that it names the field and the value.
      message: expect.stringMatching(
        /^\.github\/sluice\.yml:5: environments\[0\]\.approval\.timeout: must be a duration .*not "soon"$/,
      ) as unknown,
    });
  });
});

describe("judgeApproval", () => {
  it("accepts someone with at least the permission level who neither wrote nor merged the change", () => {
    expect(judgeApproval(policy(), approver("carol", { permission: "write" }), MERGED)).toEqual({ ok: true });
    expect(judgeApproval(policy(), approver("carol", { permission: "admin" }), MERGED)).toEqual({ ok: true });
  });

  it("refuses someone below the level, naming the level needed and the one held", () => {
    const judged = judgeApproval(policy({ from: "maintain" }), approver("carol", { permission: "write" }), MERGED);

    expect(judged).toEqual({ ok: false, reason: "approving needs maintain permission; carol has write permission" });
  });

  it("refuses someone without access, or whose permission was not looked up, as holding none", () => {
    expect(judgeApproval(policy(), approver("mallory", { permission: "none" }), MERGED)).toEqual({
      ok: false,
      reason: "approving needs write permission; mallory has no permission",
    });
    expect(judgeApproval(policy(), approver("mallory"), MERGED)).toEqual({
      ok: false,
      reason: "approving needs write permission; mallory has no permission",
    });
  });

  it("accepts an active member of the team, whatever the case of the team's name", () => {
    const judged = judgeApproval(policy({ from: "@Acme/Release" }), approver("carol", { teams: ["@acme/release"] }), MERGED);

    expect(judged).toEqual({ ok: true });
  });

  it("refuses someone outside the team, even with admin permission", () => {
    const judged = judgeApproval(policy({ from: "@acme/release" }), approver("carol", { permission: "admin", teams: [] }), MERGED);

    expect(judged).toEqual({
      ok: false,
      reason: "approving needs active membership in @acme/release; carol is not an active member of that team",
    });
  });

  it("accepts anyone who matches one source of a list, and names them all when none matches", () => {
    const either = policy({ from: ["admin", "@acme/release", "@acme/sre"] });

    expect(judgeApproval(either, approver("carol", { permission: "read", teams: ["@acme/sre"] }), MERGED)).toEqual({ ok: true });
    expect(judgeApproval(either, approver("dave", { permission: "admin" }), MERGED)).toEqual({ ok: true });
    expect(judgeApproval(either, approver("erin", { permission: "maintain" }), MERGED)).toEqual({
      ok: false,
      reason:
        "approving needs admin permission or active membership in @acme/release or active membership in @acme/sre; " +
        "erin has maintain permission and is an active member of none of these teams",
    });
  });

  it("refuses the pull request's author, whatever the case of their login (four eyes)", () => {
    const judged = judgeApproval(policy(), approver("alice", { permission: "admin" }), MERGED);

    expect(judged).toEqual({
      ok: false,
      reason: "alice authored the pull request, and approval.notAuthor asks for someone else (four eyes)",
    });
  });

  it("refuses the person who merged the pull request (four eyes)", () => {
    const judged = judgeApproval(policy(), approver("BOB", { permission: "maintain" }), MERGED);

    expect(judged).toEqual({ ok: false, reason: "BOB merged the pull request, and approval.notAuthor asks for someone else (four eyes)" });
  });

  it("accepts the author and the merger when notAuthor is false, and anyone when nobody is known", () => {
    const lax = policy({ notAuthor: false });

    expect(judgeApproval(lax, approver("alice", { permission: "write" }), MERGED)).toEqual({ ok: true });
    expect(judgeApproval(lax, approver("bob", { permission: "write" }), MERGED)).toEqual({ ok: true });
    expect(judgeApproval(policy(), approver("alice", { permission: "write" }), { approvals: [] })).toEqual({ ok: true });
  });

  it("refuses a second approval by the same person: each counts once", () => {
    const deploy = { ...MERGED, approvals: [{ login: "Carol" }] };

    expect(judgeApproval(policy({ required: 2 }), approver("carol", { permission: "write" }), deploy)).toEqual({
      ok: false,
      reason: "carol already approved this deploy; each person counts once",
    });
  });

  it("refuses every approval once the deploy was rejected", () => {
    const deploy = { ...MERGED, rejected: { login: "dave" } };

    expect(judgeApproval(policy(), approver("carol", { permission: "admin" }), deploy)).toEqual({
      ok: false,
      reason: "dave already rejected this deploy",
    });
  });
});

describe("approvalsNeeded", () => {
  it("counts down to zero, each login once whatever its case", () => {
    const two = policy({ required: 2 });

    expect(approvalsNeeded(two, [])).toBe(2);
    expect(approvalsNeeded(two, [{ login: "carol" }, { login: "CAROL" }])).toBe(1);
    expect(approvalsNeeded(two, [{ login: "carol" }, { login: "dave" }])).toBe(0);
    expect(approvalsNeeded(two, [{ login: "carol" }, { login: "dave" }, { login: "erin" }])).toBe(0);
  });
});

describe("approvalDeadline", () => {
  it("is the wait's start plus the timeout, or none without a timeout", () => {
    expect(approvalDeadline(policy({ timeout: "30m" }), 1_000)).toBe(1_000 + 1_800_000);
    expect(approvalDeadline(policy(), 1_000)).toBeUndefined();
  });
});
