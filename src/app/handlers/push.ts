import type { Context } from "probot";
import { z } from "zod";
import type { GitHubClient } from "../github/client.ts";
import type { AppQueues } from "../queue/queues.ts";
import type { CheckoutCache } from "../checkouts/checkout-cache.ts";
import type { Logger } from "../log-context.ts";
import { requestPushDeploys } from "../deploy/push-deploys.ts";
import type { Promotions } from "../promotion/promotions.ts";
import { repositoryRef } from "./payloads.ts";

const pushSchema = z.object({
  ref: z.string(),
  after: z.string(),
  deleted: z.boolean().optional(),
  forced: z.boolean().optional(),
  installation: z.object({ id: z.number() }),
  repository: z.object({ id: z.number(), name: z.string(), owner: z.object({ login: z.string() }) }),
  pusher: z.object({ name: z.string() }).optional(),
  sender: z.object({ login: z.string() }).optional(),
});

/** Handles `push`: a push to an environment's tracked branch queues a deploy of that environment. */
export function pushHandler(deps: {
  github: (installationId: number) => Promise<GitHubClient>;
  queues: AppQueues;
  checkouts: CheckoutCache;
  now: () => number;
  log: Logger;
  promotions?: Promotions | undefined;
}) {
  return async (context: Context<"push">): Promise<void> => {
    const event = pushSchema.parse(context.payload);
    if (!event.ref.startsWith("refs/heads/") || event.deleted || /^0+$/.test(event.after)) return;
    const environments = await requestPushDeploys(await deps.github(event.installation.id), deps, {
      repository: repositoryRef(event.repository),
      installationId: event.installation.id,
      branch: event.ref.slice("refs/heads/".length),
      sha: event.after,
      pusher: event.sender?.login ?? event.pusher?.name ?? "unknown",
      forced: event.forced ?? false,
    });
    context.log.info({ environments, sha: event.after }, "push deploys queued");
  };
}
