import { connectRedis, type RedisClient } from "../../redis/connection.ts";
import type { Clock } from "../../core/clock.ts";
import { resolveTools } from "../../render/setup.ts";
import type { RenderTools } from "../../render/tools.ts";
import { connectionErrorLog } from "../connection-errors.ts";
import { AppMetrics } from "../metrics.ts";
import { AppQueues } from "../queue/queues.ts";
import { CheckoutCache } from "../checkouts/checkout-cache.ts";
import { DiffPages } from "../preview/diff-pages.ts";
import type { Logger } from "../log-context.ts";
import { PullRequestState } from "../state/pr-state.ts";
import { RedisMac } from "../state/redis-mac.ts";
import type { AppSettings } from "../settings.ts";

/** What every flow of the app stands on: the checkout cache, Redis and what keeps it honest, the queues, the metrics, the renderers' tools. */
export interface Infrastructure {
  checkouts: CheckoutCache;
  redis: RedisClient;
  /** Logs a connection's error once per message and minute; `source` names the connection. */
  connectionError: (source: string, error: Error) => void;
  metrics: AppMetrics;
  /** Redis is not trusted: everything the app reads back from it is authenticated with this. */
  mac: RedisMac;
  queues: AppQueues;
  prState: PullRequestState;
  diffPages: DiffPages;
  tools: RenderTools;
}

/**
 * Claims the checkout cache, then connects Redis and opens what sits on it. A cache directory
 * another app process uses is refused before anything is opened.
 */
export async function openInfrastructure(settings: AppSettings, now: () => number, clock: Clock, logger: Logger): Promise<Infrastructure> {
  const checkouts = new CheckoutCache({
    dir: settings.cacheDir,
    maxCacheBytes: settings.cacheMaxBytes,
    maxBytes: settings.checkoutMaxBytes,
    maxFiles: settings.checkoutMaxFiles,
    now,
  });
  await checkouts.claim();
  const redis = connectRedis(settings.redisUrl, settings.redisTls);
  // A connection's errors repeat at every reconnect attempt while Redis is down: logged as JSON,
  // once per message and minute, never printed by a library as a stack trace.
  const connectionError = connectionErrorLog((details, message) => {
    logger.warn(details, message);
  }, clock.now);
  redis.on("error", (error: Error) => {
    connectionError("redis", error);
  });
  // The metrics read the queues' depths when scraped; the queues are opened just below.
  const metrics = new AppMetrics({ queueDepths: () => queues.depths() });
  const mac = new RedisMac(settings.redisMacSecrets, () => {
    metrics.redisMacFailures.inc();
  });
  const queues = new AppQueues(redis, { mac, now });
  const diffPages = new DiffPages(redis, {
    publicUrl: settings.publicUrl,
    secret: settings.linkSecret,
    ttlSeconds: settings.diffTtlSeconds,
    mac,
  });
  const tools = await resolveTools(settings.env);
  return { checkouts, redis, connectionError, metrics, mac, queues, prState: new PullRequestState(redis), diffPages, tools };
}
