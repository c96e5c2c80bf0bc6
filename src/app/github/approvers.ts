import { sameLogin, teamName, type ApprovalPolicy, type ApproverFacts } from "../../core/approval.ts";
import { fullName } from "../../core/git-ref.ts";
import { permits } from "../../core/permission.ts";
import type { GitHubClient, RepoName } from "./client.ts";

/**
 * What `judgeApproval` needs to know of `login` under `policy`, asking GitHub only that: their
 * permission on the repository when the policy names a level, then, only if that does not already
 * suffice, their membership of the policy's teams one at a time until one is active.
 *
 * A team of another organization than the repository's owner is a configuration mistake the app
 * cannot check (its installation sees only its own organization), so it throws, naming the team.
 */
export async function approverFacts(
  gh: GitHubClient,
  repository: RepoName,
  login: string,
  policy: Pick<ApprovalPolicy, "from">,
): Promise<ApproverFacts> {
  const teams = policy.from.flatMap((source) => (source.kind === "team" ? [source] : []));
  const foreign = teams.find((team) => !sameLogin(team.org, repository.owner));
  if (foreign)
    throw new Error(
      `approval.from names ${teamName(foreign)}, but ${fullName(repository)} belongs to ${repository.owner}: only its teams can approve (the app cannot see another organization's teams)`,
    );
  const levels = policy.from.flatMap((source) => (source.kind === "permission" ? [source.level] : []));
  let permission: ApproverFacts["permission"];
  if (levels.length > 0) {
    const held = await gh.permission(repository, login);
    if (levels.some((level) => permits(held, level))) return { login, permission: held, teams: [] };
    permission = held;
  }
  for (const team of teams) {
    if (await gh.teamMembership(team.org, team.slug, login)) return { login, permission, teams: [teamName(team)] };
  }
  return { login, permission, teams: [] };
}
