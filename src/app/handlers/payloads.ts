import { z } from "zod";
import { commitShaSchema } from "../../core/git-ref.ts";
import { pullRequestSliceSchema } from "../github/schemas.ts";

const repository = z.object({ id: z.number(), name: z.string(), owner: z.object({ login: z.string() }) });
const installation = z.object({ id: z.number() });

/** The slice of a `pull_request` webhook Sluice reads. */
/** A check run's output as a webhook carries it: what a note added to it must keep. */
const checkRunOutputSchema = z.object({
  title: z.string().nullable().optional(),
  summary: z.string().nullable().optional(),
  text: z.string().nullable().optional(),
});

export const pullRequestEventSchema = z.object({
  action: z.string(),
  installation,
  repository,
  pull_request: pullRequestSliceSchema,
  /** On `edited`: what changed; a `base` means the pull request now targets another branch. */
  changes: z.looseObject({ base: z.unknown().optional() }).optional(),
});

/** The slice of an `issue_comment` webhook Sluice reads. */
export const issueCommentEventSchema = z.object({
  action: z.string(),
  installation,
  repository,
  issue: z.object({ number: z.number(), pull_request: z.looseObject({}).optional() }),
  comment: z.object({ id: z.number(), body: z.string().nullable(), user: z.object({ login: z.string(), type: z.string() }) }),
});

/** The slice of a `check_run.requested_action` webhook Sluice reads. */
export const checkRunActionEventSchema = z.object({
  installation,
  repository,
  sender: z.object({ login: z.string(), type: z.string() }),
  requested_action: z.object({ identifier: z.string() }),
  check_run: z.object({
    id: z.number(),
    name: z.string(),
    head_sha: commitShaSchema,
    app: z.object({ id: z.number() }).nullable().optional(),
    output: checkRunOutputSchema.optional(),
  }),
});

/** The slice of a `check_run.rerequested` webhook (the Re-run button) Sluice reads. */
export const checkRunRerunEventSchema = z.object({
  installation,
  repository,
  sender: z.object({ login: z.string(), type: z.string() }),
  check_run: z.object({
    id: z.number(),
    name: z.string(),
    head_sha: commitShaSchema,
    external_id: z.string().nullable().optional(),
    app: z.object({ id: z.number() }).nullable().optional(),
    output: checkRunOutputSchema.optional(),
  }),
});

/** Maps a webhook repository to the jobs' repository reference. */
export function repositoryRef(repo: z.infer<typeof repository>): { owner: string; name: string; id: number } {
  return { owner: repo.owner.login, name: repo.name, id: repo.id };
}
