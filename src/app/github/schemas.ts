import { z } from "zod";

/** The part of a pull request Sluice reads, as both the REST API and webhooks send it. */
export const pullRequestSliceSchema = z.object({
  number: z.number(),
  state: z.enum(["open", "closed"]),
  draft: z.boolean().optional(),
  merged: z.boolean().nullable().optional(),
  base: z.object({ sha: z.string(), ref: z.string() }),
  head: z.object({ sha: z.string() }),
});
