import { setTimeout as sleep } from "node:timers/promises";
import { throttling } from "@octokit/plugin-throttling";
import type { ProbotOctokit } from "probot";
import { z } from "zod";
import type { Clock } from "../../core/clock.ts";

/** GitHub asks integrations to leave a second between one installation's writes. */
export const WRITE_GAP_MS = 1_000;
/** ...and more between writes that notify people (comments, issues, reviews). */
const NOTIFICATION_GAP_MS = 3_000;
/** Requests of one installation and lane in flight at once; more wait their turn. */
const CONCURRENT_REQUESTS = 10;
/** Retries of one request after a rate limit, a server error or a lost connection. */
const RETRIES = 3;
/** The longest a request waits for GitHub before trying again; a longer wait fails it with the time to try again. */
export const MAX_RETRY_WAIT_MS = 5 * 60_000;
/** How long a secondary rate limit lasts when GitHub does not say (its documentation asks for at least a minute). */
const SECONDARY_LIMIT_WAIT_MS = 60_000;

/** Why a request is tried again. */
export type RetryReason = "rate_limit" | "secondary_rate_limit" | "server_error";

/** Told of every retry, with the request and how long it waits. */
export type RetryObserver = (retry: {
  reason: RetryReason;
  method: string;
  url: string;
  status: number | undefined;
  waitMs: number;
}) => void;

/**
 * Time as the pacer reads it: GitHub's reset times against the wall clock (`now`), the gaps between
 * one lane's writes on a clock that never goes back (`monotonic`), so a wall clock set back does not
 * hold writes for as long as it moved; injected so tests decide when a wait is over.
 */
export interface PacingClock extends Clock {
  /** Milliseconds since an arbitrary start, never decreasing. */
  monotonic: () => number;
}

const SYSTEM_CLOCK: PacingClock = { now: Date.now, monotonic: () => performance.now(), sleep: (ms) => sleep(ms) };

type RequestKind = "read" | "write" | "notification" | "auth";

/**
 * How a write of one GitHub object's state (a check run, a Deployment's statuses) may be combined
 * with that object's next write while it waits for its turn, given as the request option
 * `supersede`: a newer write of the same `key` replaces a waiting one that is not `final`, in its
 * turn, and every caller gets the answer to what was sent. A final state is never replaced: what
 * comes after it waits for a turn of its own. A write's retry is dropped once a newer write of its
 * object is on its way (a final one's only for a newer final one), so an older state never lands
 * after a newer one. Writes only the newest
 * state matters of take one turn instead of one each (issue 28).
 */
export interface Supersede {
  /** The object written, unique within an installation ("check-run 42"). */
  key: string;
  /** A state nothing after it replaces: a completed check run, a Deployment's success or failure. */
  final: boolean;
}

const supersedeSchema = z.strictObject({ key: z.string().min(1), final: z.boolean() });

/**
 * A write's condition, given as the request option `guard`: when the write's turn comes (each try
 * of it), the guard is handed the send and decides then whether it still goes, resolving to the
 * send's answer, or undefined when the write is not wanted any more. A state one replica kept
 * waiting for its turn is so checked against what another replica wrote meanwhile. A write turned
 * down rejects with {@link WriteNotSent}.
 */
export type WriteGuard = (send: () => Promise<unknown>) => Promise<unknown>;

/** A guarded write its guard turned down when its turn came: not sent, for what it writes was moved past meanwhile. */
export class WriteNotSent extends Error {
  constructor(method: string, url: string) {
    super(`${method} ${url} not sent: its guard turned it down`);
    this.name = "WriteNotSent";
  }
}

/** What a request sends when its turn comes, and the guard that decides then whether it still goes. */
interface Turn<T> {
  send: () => T | Promise<T>;
  guard: WriteGuard | undefined;
}

/** The newest write of one object in a lane: what it sends when its turn comes, and the answer every caller of it gets. */
interface Slot extends Turn<unknown> {
  final: boolean;
  /** Set once its turn came and it went out: a newer write then waits for a turn of its own. */
  gone: boolean;
  answer: Promise<unknown>;
}

/** The pacing state of one installation and lane. */
class Pace {
  nextWrite = 0;
  nextNotification = 0;
  active = 0;
  readonly waiting: (() => void)[] = [];
  /** The newest write of each object that asked to be combined ({@link Supersede}), until it is answered. */
  readonly newest = new Map<string, Slot>();

  idle(now: number): boolean {
    return (
      this.active === 0 && this.waiting.length === 0 && this.newest.size === 0 && this.nextWrite <= now && this.nextNotification <= now
    );
  }
}

/**
 * GitHub's rules for integrations, applied to every request an installation's octokit sends: writes
 * a second apart (three for writes that notify people), at most ten requests in flight, and retries
 * after rate limits (at their reset, or after `retry-after`), server errors and lost connections.
 * The state is kept per installation and lane and shared by every octokit of that pair.
 *
 * It replaces octokit's throttling and retry plugins, which send every request through two
 * Bottleneck schedulers: about 14 ms of timer turns per request, even when nothing waits, which a
 * preview paid seven times.
 */
export class GitHubPacing {
  readonly #paces = new Map<string, Pace>();
  readonly #observe: RetryObserver | undefined;
  readonly #clock: PacingClock;

  /** `observe` is told of every retry; `clock` is the system's unless a test brings its own. */
  constructor(observe?: RetryObserver, options: { clock?: PacingClock } = {}) {
    this.#observe = observe;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Paces and retries every request `octokit` sends, in the lane named `key` (an installation and a lane). */
  apply(octokit: ProbotOctokit, key: string): void {
    octokit.hook.wrap("request", (request, options) => this.#send(key, options, () => request(options)));
  }

  async #send<T>(key: string, options: { method: string; url: string; request?: unknown }, request: () => T | Promise<T>): Promise<T> {
    const kind = requestKind(options.method, options.url);
    const writes = kind === "write" || kind === "notification";
    const guard = writes ? guardOf(options) : undefined;
    const supersede = writes ? supersedeOf(options) : undefined;
    if (supersede) return this.#sendNewest(key, kind, options, { send: request, guard }, supersede);
    return this.#attempts(key, kind, options, () => ({ send: request, guard }));
  }

  /** Sends a write of one object's state in the turn of the newest waiting write of that object, or in a turn of its own. */
  #sendNewest<T>(
    key: string,
    kind: RequestKind,
    options: { method: string; url: string },
    request: Turn<T>,
    supersede: Supersede,
  ): Promise<T> {
    const pace = this.#pace(key);
    const waiting = pace.newest.get(supersede.key);
    if (waiting && !waiting.gone && !waiting.final) {
      Object.assign(waiting, request, { final: supersede.final });
      return waiting.answer as Promise<T>;
    }
    const slot: Slot = { ...request, final: supersede.final, gone: false, answer: Promise.resolve() };
    pace.newest.set(supersede.key, slot);
    // A final state's retry is dropped only for a newer final one: a final state is never dropped.
    const newer = (): Promise<unknown> | undefined => {
      const latest = pace.newest.get(supersede.key);
      return latest && latest !== slot && (!slot.final || latest.final) ? latest.answer : undefined;
    };
    const send = (): Turn<T> => {
      slot.gone = true;
      return { send: slot.send as () => T | Promise<T>, guard: slot.guard };
    };
    slot.answer = this.#attempts(key, kind, options, send, newer).finally(() => {
      if (pace.newest.get(supersede.key) === slot) pace.newest.delete(supersede.key);
    });
    return slot.answer as Promise<T>;
  }

  /**
   * Sends a request in its turn, trying again after what GitHub asks to wait for; `newer`, for a
   * write of one object's state, gives the answer of a newer write of it instead of a retry. What
   * is sent is asked for when the turn comes (`next`); its guard, if any, decides before the
   * request takes one of the lane's places, so a guard that waits holds up no other request.
   */
  async #attempts<T>(
    key: string,
    kind: RequestKind,
    options: { method: string; url: string },
    next: () => Turn<T>,
    newer?: () => Promise<unknown> | undefined,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const pace = this.#pace(key);
      if (kind === "write" || kind === "notification") await this.#turn(pace, kind === "notification");
      const { send, guard } = next();
      const inLane = async (): Promise<T> => {
        await this.#enter(pace);
        try {
          return await send();
        } finally {
          this.#leave(pace);
        }
      };
      let failure: unknown;
      try {
        if (!guard) return await inLane();
        const answer = await guard(inLane);
        if (answer === undefined) throw new WriteNotSent(options.method, options.url);
        return answer as T;
      } catch (error) {
        failure = error;
      }
      const now = this.#clock.now();
      const retry = retryAfter(failure, attempt, now);
      if (!retry) throw failure;
      if (retry.waitMs > MAX_RETRY_WAIT_MS) {
        throw withMessage(
          failure,
          `${errorText(failure)} (GitHub asks to wait until ${new Date(now + retry.waitMs).toISOString()}; try again then)`,
        );
      }
      this.#observe?.({ reason: retry.reason, method: options.method, url: options.url, status: statusOf(failure), waitMs: retry.waitMs });
      await this.#clock.sleep(retry.waitMs);
      const replaced = newer?.();
      if (replaced) return replaced as Promise<T>;
    }
  }

  #pace(key: string): Pace {
    let pace = this.#paces.get(key);
    if (!pace) {
      if (this.#paces.size >= 256) this.#sweep();
      pace = new Pace();
      this.#paces.set(key, pace);
    }
    return pace;
  }

  #sweep(): void {
    const now = this.#clock.monotonic();
    for (const [key, pace] of this.#paces) if (pace.idle(now)) this.#paces.delete(key);
  }

  /** Reserves the lane's next write slot (in call order) and waits for it; no wait when it is due. */
  async #turn(pace: Pace, notifies: boolean): Promise<void> {
    const now = this.#clock.monotonic();
    let at = Math.max(now, pace.nextWrite);
    if (notifies) at = Math.max(at, pace.nextNotification);
    pace.nextWrite = at + WRITE_GAP_MS;
    if (notifies) pace.nextNotification = at + NOTIFICATION_GAP_MS;
    if (at > now) await this.#clock.sleep(at - now);
  }

  async #enter(pace: Pace): Promise<void> {
    if (pace.active < CONCURRENT_REQUESTS) {
      pace.active += 1;
      return;
    }
    // #leave hands its slot over: active stays counted for the waiter.
    await new Promise<void>((resolve) => pace.waiting.push(resolve));
  }

  #leave(pace: Pace): void {
    const next = pace.waiting.shift();
    if (next) next();
    else pace.active -= 1;
  }
}

/** The request option `supersede` of a write ({@link Supersede}), or undefined when it has none. */
function supersedeOf(options: { request?: unknown }): Supersede | undefined {
  const value = requestOption(options, "supersede");
  if (value === undefined) return undefined;
  const parsed = supersedeSchema.safeParse(value);
  if (!parsed.success)
    throw new Error(`request option supersede must be { key: non-empty string, final: boolean }, got ${JSON.stringify(value)}`);
  return parsed.data;
}

/** The request option `guard` of a write ({@link WriteGuard}), or undefined when it has none. */
function guardOf(options: { request?: unknown }): WriteGuard | undefined {
  const value = requestOption(options, "guard");
  if (value === undefined) return undefined;
  if (typeof value !== "function") throw new Error(`request option guard must be a function, got ${typeof value}`);
  return value as WriteGuard;
}

/** The request option `name` octokit passed through (`options.request[name]`), or undefined. */
function requestOption(options: { request?: unknown }, name: string): unknown {
  return typeof options.request === "object" && options.request !== null ? Reflect.get(options.request, name) : undefined;
}

/** How a request counts: token requests and reads are not paced; writes are; some writes notify people. */
function requestKind(method: string, url: string): RequestKind {
  const path = new URL(url, "http://github.invalid").pathname;
  if (method === "POST" && /^\/app\/installations\/[^/]+\/access_tokens$/.test(path)) return "auth";
  if (method === "GET" || method === "HEAD") return "read";
  return throttling.triggersNotification(path) ? "notification" : "write";
}

function statusOf(error: unknown): number | undefined {
  return typeof error === "object" && error !== null && "status" in error && typeof error.status === "number" ? error.status : undefined;
}

function headersOf(error: unknown): Record<string, string | number | undefined> {
  if (typeof error !== "object" || error === null || !("response" in error)) return {};
  const response = error.response;
  if (typeof response !== "object" || response === null || !("headers" in response)) return {};
  return (response.headers ?? {}) as Record<string, string | number | undefined>;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function withMessage(error: unknown, message: string): unknown {
  if (error instanceof Error) {
    error.message = message;
    return error;
  }
  return new Error(message);
}

/**
 * Whether and when to try a failed request again: after a primary rate limit, at its reset; after a
 * secondary one, after `retry-after` (a minute when GitHub does not say); after a server error, a
 * timeout or a lost connection (octokit reports those as 500), after `retry-after` or 1, 4, then 9 s.
 * Other client errors (a missing object, a refused body, no permission) would fail again.
 */
export function retryAfter(error: unknown, attempt: number, now: number): { reason: RetryReason; waitMs: number } | undefined {
  if (attempt >= RETRIES) return undefined;
  const status = statusOf(error);
  // Only errors that came from a request (octokit's RequestError) are GitHub's to retry.
  if (status === undefined || typeof error !== "object" || error === null || !("request" in error)) return undefined;
  const headers = headersOf(error);
  const retryAfterSeconds = Number(headers["retry-after"]);
  const retryAfterMs = Number.isFinite(retryAfterSeconds) && retryAfterSeconds >= 0 ? retryAfterSeconds * 1000 : undefined;
  if (status === 403 || status === 429) {
    if (/\bsecondary rate\b/i.test(errorText(error)) || (retryAfterMs !== undefined && String(headers["x-ratelimit-remaining"]) !== "0")) {
      return { reason: "secondary_rate_limit", waitMs: retryAfterMs ?? SECONDARY_LIMIT_WAIT_MS };
    }
    if (String(headers["x-ratelimit-remaining"]) === "0") {
      const reset = Number(headers["x-ratelimit-reset"]) * 1000;
      // A second past the reset, as GitHub's documentation asks.
      return { reason: "rate_limit", waitMs: Number.isFinite(reset) ? Math.max(0, reset - now) + 1000 : SECONDARY_LIMIT_WAIT_MS };
    }
    if (status === 403) return undefined;
  }
  if ((status >= 500 && status !== 501) || status === 408 || status === 429)
    return { reason: "server_error", waitMs: retryAfterMs ?? (attempt + 1) ** 2 * 1000 };
  return undefined;
}
