import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { approverFacts } from "../../../src/app/github/approvers.ts";
import type { GitHubClient } from "../../../src/app/github/client.ts";
import { approvalSchema, judgeApproval } from "../../../src/core/approval.ts";
import { FakeGitHub } from "../../helpers/fake-github.ts";
import { fakeGitHubClient } from "../../helpers/github-client.ts";

// Approvals as policy (issue 26): who may approve is looked up on GitHub (faked at the HTTP layer,
// every request checked against GitHub's OpenAPI description), asking only what the policy needs.

const REPOSITORY = { owner: "acme", name: "shop", id: 1 };
const INSTALLATION = 7;
const MEMBERSHIP = "teams/get-membership-for-user-in-org";
const PERMISSION = "repos/get-collaborator-permission-level";

let github: FakeGitHub;
let gh: GitHubClient;

beforeAll(async () => {
  github = await new FakeGitHub().start();
  github.addRepo(REPOSITORY.owner, REPOSITORY.name, REPOSITORY.id);
  github.setPermission(REPOSITORY.owner, REPOSITORY.name, "carol", "maintain");
  github.setPermission(REPOSITORY.owner, REPOSITORY.name, "dave", "write");
  github.setTeamMember("acme", "release", "dave");
  github.setTeamMember("acme", "release", "erin", "pending");
  gh = await fakeGitHubClient(github, INSTALLATION);
});
afterAll(async () => {
  await github.stop();
});
beforeEach(() => {
  github.requests.length = 0;
  github.violations.length = 0;
});
afterEach(() => {
  expect(github.violations).toEqual([]);
});

describe("GitHubClient.teamMembership", () => {
  it("is true for an active member, whatever the case of the login", async () => {
    expect(await gh.teamMembership("acme", "release", "dave")).toBe(true);
    expect(await gh.teamMembership("acme", "release", "Dave")).toBe(true);
    expect(github.calls(MEMBERSHIP).map((call) => call.params)).toEqual([
      { org: "acme", team_slug: "release", username: "dave" },
      { org: "acme", team_slug: "release", username: "Dave" },
    ]);
  });

  it("is false for a pending invitation, a non-member and an unknown team (GitHub's 404)", async () => {
    expect(await gh.teamMembership("acme", "release", "erin")).toBe(false);
    expect(await gh.teamMembership("acme", "release", "carol")).toBe(false);
    expect(await gh.teamMembership("acme", "nobody", "dave")).toBe(false);
  });

  it("says the app lacks the Members permission when GitHub refuses with 403", async () => {
    github.failNext(MEMBERSHIP, { status: 403, body: { message: "Resource not accessible by integration" } });

    await expect(gh.teamMembership("acme", "release", "dave")).rejects.toThrow(
      "GitHub refused to tell whether dave is in team @acme/release: the app needs the organization's Members permission (read)",
    );
  });
});

describe("approverFacts", () => {
  it("asks only the permission when the policy names only a level", async () => {
    const facts = await approverFacts(gh, REPOSITORY, "dave", approvalSchema.parse({ from: "maintain" }));

    expect(facts).toEqual({ login: "dave", permission: "write", teams: [] });
    expect(github.requests.map((r) => r.operationId)).toEqual([PERMISSION]);
  });

  it("asks only the team membership when the policy names only a team", async () => {
    const facts = await approverFacts(gh, REPOSITORY, "dave", approvalSchema.parse({ from: "@acme/release" }));

    expect(facts).toEqual({ login: "dave", teams: ["@acme/release"] });
    expect(github.requests.map((r) => r.operationId)).toEqual([MEMBERSHIP]);
  });

  it("asks no team when the permission already suffices, and stops at the first team that has them", async () => {
    const policy = approvalSchema.parse({ from: ["maintain", "@acme/sre", "@acme/release", "@acme/oncall"] });

    expect(await approverFacts(gh, REPOSITORY, "carol", policy)).toEqual({ login: "carol", permission: "maintain", teams: [] });
    expect(github.requests.map((r) => r.operationId)).toEqual([PERMISSION]);

    github.requests.length = 0;
    expect(await approverFacts(gh, REPOSITORY, "dave", policy)).toEqual({ login: "dave", permission: "write", teams: ["@acme/release"] });
    expect(github.requests.map((r) => `${r.operationId} ${r.params.team_slug ?? ""}`)).toEqual([
      `${PERMISSION} `,
      `${MEMBERSHIP} sre`,
      `${MEMBERSHIP} release`,
    ]);
  });

  it("refuses a team of another organization, naming it, before asking GitHub anything", async () => {
    const policy = approvalSchema.parse({ from: ["write", "@other/release"] });

    await expect(approverFacts(gh, REPOSITORY, "dave", policy)).rejects.toThrow(
      "approval.from names @other/release, but acme/shop belongs to acme: only its teams can approve (the app cannot see another organization's teams)",
    );
    expect(github.requests).toEqual([]);
  });

  it("gives judgeApproval what it needs: a team member is accepted, an invited one is refused", async () => {
    const policy = approvalSchema.parse({ from: "@acme/release" });
    const deploy = { author: "alice", merger: "alice", approvals: [] };

    expect(judgeApproval(policy, await approverFacts(gh, REPOSITORY, "dave", policy), deploy)).toEqual({ ok: true });
    expect(judgeApproval(policy, await approverFacts(gh, REPOSITORY, "erin", policy), deploy)).toEqual({
      ok: false,
      reason: "approving needs active membership in @acme/release; erin is not an active member of that team",
    });
  });
});
