import type { RedisClient } from "../../redis/connection.ts";
import type { Histogram } from "prom-client";
import { deliveryKey } from "../state/redis-keys.ts";
import { withLogContext } from "../log-context.ts";

/** How long a delivery being handled blocks its redeliveries; past this a crashed replica's claim lapses. */
const HANDLING_TTL_SECONDS = 10 * 60;
/** How long a handled delivery is remembered. */
const HANDLED_TTL_SECONDS = 7 * 24 * 3600;

const key = deliveryKey;

/** What a webhook handler gets: the delivery id, the event's name and a logger (Probot's context has them). */
interface DeliveryContext {
  id: string;
  name: string;
  log: { info: (details: Record<string, unknown>, message: string) => void };
}

/**
 * Wraps a webhook handler so that a redelivery (same `X-GitHub-Delivery`) of a handled delivery,
 * or one that another replica is handling right now, changes nothing. A delivery whose handling
 * failed is released, so GitHub's redelivery of it is handled again instead of ignored for a week.
 * Through `gate`, a burst of deliveries is handled a few at a time, so memory and the requests
 * to GitHub stay bounded however many arrive at once.
 */
export function deduplicated<C extends DeliveryContext>(
  redis: RedisClient,
  handler: (context: C) => Promise<void>,
  timings?: Histogram<"event" | "outcome">,
  gate: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
): (context: C) => Promise<void> {
  return (context) => gate(() => handle(redis, handler, context, timings));
}

async function handle<C extends DeliveryContext>(
  redis: RedisClient,
  handler: (context: C) => Promise<void>,
  context: C,
  timings?: Histogram<"event" | "outcome">,
): Promise<void> {
  const end = timings?.startTimer({ event: context.name });
  if ((await redis.set(key(context.id), "handling", "EX", HANDLING_TTL_SECONDS, "NX")) !== "OK") {
    context.log.info({ delivery: context.id }, "redelivered webhook ignored");
    end?.({ outcome: "duplicate" });
    return;
  }
  try {
    await withLogContext({ delivery: context.id, event: context.name }, () => handler(context));
  } catch (error) {
    await redis.del(key(context.id));
    end?.({ outcome: "failed" });
    throw error;
  }
  await redis.set(key(context.id), "handled", "EX", HANDLED_TTL_SECONDS);
  end?.({ outcome: "handled" });
}
