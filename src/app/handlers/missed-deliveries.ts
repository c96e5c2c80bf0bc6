import { errorMessage } from "../../core/errors.ts";
import type { RedisClient } from "../../redis/connection.ts";
import type { GitHubClient, WebhookDelivery } from "../github/client.ts";
import { DELIVERIES_CHECKED_KEY, deliveryKey, redeliveryKey } from "../state/redis-keys.ts";
import type { Logger } from "../log-context.ts";

/** GitHub keeps an app's deliveries this long: nothing older can be redelivered. */
const KEPT_BY_GITHUB_MS = 3 * 24 * 3600 * 1000;
/** Each look goes back to a little before the newest delivery the last one saw, for deliveries GitHub lists late. */
const OVERLAP_MS = 10 * 60 * 1000;
/** How long a redelivery asked for is remembered: longer than GitHub keeps the delivery. */
const ASKED_TTL_SECONDS = 4 * 24 * 3600;

/** What catching up with missed webhooks needs. */
export interface MissedDeliveriesDeps {
  redis: RedisClient;
  /** A client authenticated as the app itself (deliveries are the app's, not an installation's). */
  appGitHub: () => Promise<GitHubClient>;
  now: () => number;
  log: Logger;
  /** At most this many redeliveries are asked for in one look (the rest wait for the next one). */
  maxRedeliveries?: number;
  /** At most this many pages of 100 deliveries are read in one look. */
  maxPages?: number;
}

/** What one look at the deliveries found and did. */
export interface CatchUp {
  /** Deliveries read. */
  read: number;
  /** GUIDs whose redelivery was asked for, oldest first. */
  redelivered: string[];
}

/**
 * Catches up with webhooks GitHub could not deliver (the app was down, unreachable, or answered
 * with an error): GitHub keeps an app's failed deliveries for three days and redelivers one when
 * asked. At start and then periodically, the app reads its deliveries back to the newest one it
 * saw last time, and asks once for each failed one it has not handled since (a redelivery that
 * succeeded, or the same delivery handled by any replica, is recorded by `deduplicated`).
 */
export class MissedDeliveries {
  readonly #deps: MissedDeliveriesDeps;

  constructor(deps: MissedDeliveriesDeps) {
    this.#deps = deps;
  }

  /**
   * Reads the deliveries since the last look and asks GitHub to redeliver the failed ones, within
   * the bounds. `signal` aborts the requests to GitHub (at shutdown).
   */
  async catchUp(signal?: AbortSignal): Promise<CatchUp> {
    const deps = this.#deps;
    const maxRedeliveries = deps.maxRedeliveries ?? 50;
    const maxPages = deps.maxPages ?? 10;
    const checked = await deps.redis.get(DELIVERIES_CHECKED_KEY);
    const checkedAt = checked ? Date.parse(checked) : Number.NaN;
    const since = Math.max(deps.now() - KEPT_BY_GITHUB_MS, Number.isFinite(checkedAt) ? checkedAt - OVERLAP_MS : -Infinity);
    const gh = await deps.appGitHub();
    const seen: WebhookDelivery[] = [];
    let pages = 0;
    for await (const page of gh.webhookDeliveries(signal)) {
      seen.push(...page.filter((d) => Date.parse(d.deliveredAt) >= since));
      pages += 1;
      if (page.length === 0 || page.some((d) => Date.parse(d.deliveredAt) < since) || pages >= maxPages) break;
    }
    const failed = await this.#toRedeliver(seen);
    const redelivered: string[] = [];
    let newest = seen.reduce((latest, d) => Math.max(latest, Date.parse(d.deliveredAt)), Number.isFinite(checkedAt) ? checkedAt : 0);
    for (const [index, delivery] of failed.entries()) {
      if (redelivered.length >= maxRedeliveries) {
        // The rest are looked at again next time: the mark stays before them.
        newest = Math.min(newest, Date.parse(delivery.deliveredAt));
        deps.log.warn({ left: failed.length - index }, "failed webhook deliveries left for the next look");
        break;
      }
      if ((await deps.redis.set(redeliveryKey(delivery.guid), String(delivery.id), "EX", ASKED_TTL_SECONDS, "NX")) !== "OK") continue;
      try {
        await gh.redeliver(delivery.id, signal);
        redelivered.push(delivery.guid);
        deps.log.info(
          { delivery: delivery.guid, event: delivery.event, status: delivery.statusCode },
          "failed webhook delivery redelivered",
        );
      } catch (error) {
        // Asked once only: a redelivery GitHub refuses (too old, say) is not asked for again and again.
        deps.log.warn({ delivery: delivery.guid, error: errorMessage(error) }, "webhook delivery could not be redelivered");
      }
    }
    if (newest > 0) await deps.redis.set(DELIVERIES_CHECKED_KEY, new Date(newest).toISOString(), "EX", ASKED_TTL_SECONDS);
    return { read: seen.length, redelivered };
  }

  /**
   * The deliveries to ask again for, oldest first: one per GUID whose every attempt failed (no
   * answer in 200–399) and that no replica has handled or is handling.
   */
  async #toRedeliver(deliveries: readonly WebhookDelivery[]): Promise<WebhookDelivery[]> {
    const byGuid = new Map<string, WebhookDelivery[]>();
    for (const d of deliveries) byGuid.set(d.guid, [...(byGuid.get(d.guid) ?? []), d]);
    const failed: WebhookDelivery[] = [];
    for (const [guid, attempts] of byGuid) {
      if (attempts.some((a) => a.statusCode >= 200 && a.statusCode < 400)) continue;
      if ((await this.#deps.redis.exists(deliveryKey(guid))) === 1) continue;
      // The newest attempt: the one GitHub redelivers.
      const newest = attempts.reduce((a, b) => (Date.parse(b.deliveredAt) > Date.parse(a.deliveredAt) ? b : a));
      failed.push(newest);
    }
    return failed.sort((a, b) => Date.parse(a.deliveredAt) - Date.parse(b.deliveredAt));
  }

  /**
   * Looks now and then every `intervalMs` (and logs what fails: GitHub may be the one that is
   * down). `stop` ends it at once: a look in progress has its GitHub requests aborted and is not
   * waited for (a shutdown must not wait on a GitHub or a Redis that hangs; what it asked for is
   * remembered, what it did not is asked for by the next replica's look).
   */
  start(intervalMs: number): { stop: () => void } {
    const aborted = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const look = (): void => {
      this.catchUp(aborted.signal)
        .catch((error: unknown) => {
          if (!aborted.signal.aborted) this.#deps.log.warn({ error: errorMessage(error) }, "could not read the failed webhook deliveries");
        })
        .finally(() => {
          if (!aborted.signal.aborted) timer = setTimeout(look, intervalMs);
        });
    };
    look();
    return {
      stop: () => {
        aborted.abort();
        clearTimeout(timer);
      },
    };
  }
}
