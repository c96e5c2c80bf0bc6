import { z } from "zod";
import { durationSchema } from "./duration.ts";
import { permits, type Permission } from "./permission.ts";

/** The repository permission levels an approval policy can ask for. */
export const APPROVAL_LEVELS = ["triage", "write", "maintain", "admin"] as const;
/** A repository permission level an approval policy can ask for. */
export type ApprovalLevel = (typeof APPROVAL_LEVELS)[number];

/** One kind of person who may approve: a least repository permission, or the active members of a team. */
export type ApproverSource = { kind: "permission"; level: ApprovalLevel } | { kind: "team"; org: string; slug: string };

// An organization login (letters, digits, inner hyphens) and a team slug, as GitHub spells them.
const TEAM = /^@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)\/([A-Za-z0-9][A-Za-z0-9._-]*)$/;

function sourceMessage(input: unknown): string {
  return `must be a permission level (${APPROVAL_LEVELS.join(", ")}) or a team as @org/team-slug, not ${JSON.stringify(input)}`;
}

const sourceSchema = z.union([z.enum(APPROVAL_LEVELS), z.string().regex(TEAM, { error: (issue) => sourceMessage(issue.input) })], {
  error: (issue) => sourceMessage(issue.input),
});

/** `write` → the permission source, `@acme/release` → the team source (the text matched {@link sourceSchema}). */
function toSource(text: string): ApproverSource {
  const level = APPROVAL_LEVELS.find((candidate) => candidate === text);
  if (level) return { kind: "permission", level };
  const [, org = "", slug = ""] = TEAM.exec(text) ?? [];
  return { kind: "team", org, slug };
}

/** Who may approve a deploy of an environment, how many must, and for how long the deploy waits. */
export const approvalSchema = z
  .strictObject({
    required: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(1)
      .describe("How many different people must approve before the deploy applies (1 to 10); each person counts once."),
    from: z
      .union([sourceSchema, z.array(sourceSchema).min(1, "must name at least one permission level or team").max(10)], {
        error: (issue) => sourceMessage(issue.input),
      })
      .default("write")
      .transform((from) => (typeof from === "string" ? [from] : from).map(toSource))
      .describe(
        "Who may approve: a least repository permission (`triage`, `write`, `maintain`, `admin`, as GitHub reports the person's role), " +
          'or an active member of a team of the repository\'s organization (`"@acme/release"`, quoted: YAML reserves `@`), or a list of these, any of which may match.',
      ),
    notAuthor: z
      .boolean()
      .default(true)
      .describe("Four eyes: the authors and mergers of the pull requests a deploy brings cannot approve it."),
    timeout: durationSchema
      .optional()
      .describe(
        "How long a deploy waits for approval (24h, 30m); after it, the deploy fails as timed out. Without it, the deploy waits until approved or rejected.",
      ),
  })
  .describe(
    "The deploy waits until enough permitted people approve it (`/approve <env>` or the deploy check run's Approve button); `/reject <env> <reason>` ends the wait.",
  );
/** An environment's approval policy, with its defaults filled in. */
export type ApprovalPolicy = z.output<typeof approvalSchema>;

/** What is known of a person who approves: their login, what the policy needed looked up. */
export interface ApproverFacts {
  login: string;
  /** Their permission on the repository; looked up only when the policy names a permission level (missing counts as none). */
  permission?: Permission | undefined;
  /** The policy's teams (`@org/slug`) they are an active member of. */
  teams: readonly string[];
}

/** The deploy being approved: who wrote and merged its change, and the answers it has so far. */
export interface ApprovalSubject {
  /** The merged pull request's author; undefined for a commit pushed without one. */
  author?: string | undefined;
  /** Who merged the pull request (or pushed the commit). */
  merger?: string | undefined;
  /** The approvals already recorded. */
  approvals: readonly { login: string }[];
  /** The rejection that ended the wait, if any. */
  rejected?: { login: string } | undefined;
}

/** Whether an approval counts, and when not, why (plain text naming the person and the rule). */
export type ApprovalJudgement = { ok: true } | { ok: false; reason: string };

/** Whether two GitHub logins (or team names) are the same: GitHub compares them without case. */
export function sameLogin(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A team source as the configuration writes it: `@org/slug`. */
export function teamName(source: { org: string; slug: string }): string {
  return `@${source.org}/${source.slug}`;
}

/** A policy's approvers as people read them: "write permission or active membership in @acme/release". */
export function approversText(policy: Pick<ApprovalPolicy, "from">): string {
  return policy.from
    .map((source) => (source.kind === "permission" ? `${source.level} permission` : `active membership in ${teamName(source)}`))
    .join(" or ");
}

/**
 * Whether `approver`'s approval of `deploy` counts under `policy`. Refused: after a rejection, when
 * they match none of `policy.from` (the reason names what was needed and what they hold), when they
 * authored or merged the change and `notAuthor` is set, and when they already approved.
 */
export function judgeApproval(policy: ApprovalPolicy, approver: ApproverFacts, deploy: ApprovalSubject): ApprovalJudgement {
  const who = approver.login;
  if (deploy.rejected) return refuse(`${deploy.rejected.login} already rejected this deploy`);
  if (!policy.from.some((source) => matches(source, approver))) return refuse(lacking(policy, approver));
  if (policy.notAuthor && deploy.author !== undefined && sameLogin(deploy.author, who))
    return refuse(`${who} authored the pull request, and approval.notAuthor asks for someone else (four eyes)`);
  if (policy.notAuthor && deploy.merger !== undefined && sameLogin(deploy.merger, who))
    return refuse(`${who} merged the pull request, and approval.notAuthor asks for someone else (four eyes)`);
  if (deploy.approvals.some((approval) => sameLogin(approval.login, who)))
    return refuse(`${who} already approved this deploy; each person counts once`);
  return { ok: true };
}

/** How many more approvals `policy` needs, given those recorded (each login counted once); 0 when enough. */
export function approvalsNeeded(policy: Pick<ApprovalPolicy, "required">, approvals: readonly { login: string }[]): number {
  const people = new Set(approvals.map((approval) => approval.login.toLowerCase()));
  return Math.max(0, policy.required - people.size);
}

/** When a deploy waiting since `waitingSince` (ms since the epoch) times out, or undefined when the policy has no timeout. */
export function approvalDeadline(policy: Pick<ApprovalPolicy, "timeout">, waitingSince: number): number | undefined {
  return policy.timeout === undefined ? undefined : waitingSince + policy.timeout;
}

function refuse(reason: string): ApprovalJudgement {
  return { ok: false, reason };
}

function matches(source: ApproverSource, approver: ApproverFacts): boolean {
  if (source.kind === "permission") return permits(approver.permission ?? "none", source.level);
  return approver.teams.some((team) => sameLogin(team, teamName(source)));
}

/** "approving needs write permission; alice has read permission", or with teams "… and is in none of these teams". */
function lacking(policy: ApprovalPolicy, approver: ApproverFacts): string {
  const holds: string[] = [];
  if (policy.from.some((source) => source.kind === "permission")) {
    const permission = approver.permission ?? "none";
    holds.push(`has ${permission === "none" ? "no" : permission} permission`);
  }
  const teams = policy.from.filter((source) => source.kind === "team").length;
  if (teams > 0) holds.push(teams === 1 ? "is not an active member of that team" : "is an active member of none of these teams");
  return `approving needs ${approversText(policy)}; ${approver.login} ${holds.join(" and ")}`;
}
