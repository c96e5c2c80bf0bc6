import { createHash, timingSafeEqual } from "node:crypto";
import type { Clock } from "./clock.ts";
import { errorMessage } from "./errors.ts";
import { isRecord } from "./manifest.ts";

/** The probe paths the app and the agent both serve. */
export const PROBE_PATHS = { health: "/healthz", ready: "/readyz", metrics: "/metrics" } as const;

/**
 * Whether a request may read `/metrics`, which names repositories and environments: always when
 * no token is set; otherwise only with `Authorization: Bearer <token>`. Compared as SHA-256
 * digests in constant time, so neither the token's characters nor its length show in the timing.
 */
export function metricsAuthorized(authorization: string | undefined, token: string | undefined): boolean {
  if (token === undefined) return true;
  const digest = (text: string): Buffer => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(authorization ?? ""), digest(`Bearer ${token}`));
}

/** One thing readiness depends on, and what is wrong with it when it is not ready. */
export interface ReadinessCheck {
  name: string;
  /** Undefined when ready; otherwise why not, in a few words. */
  problem?: string;
  /** Something worth knowing that does not make the check fail (GitHub unreachable, say). */
  note?: string;
}

/** What a probe answers. */
export interface ProbeAnswer {
  status: number;
  contentType: string;
  body: string;
}

const TEXT = "text/plain; charset=utf-8";

/** `/healthz`: the process is up and serving. */
export function healthAnswer(): ProbeAnswer {
  return { status: 200, contentType: TEXT, body: "ok\n" };
}

/**
 * `/readyz`: 200 when every check passes, 503 otherwise. The body lists every check, one per line
 * (as the Kubernetes API server's own `/readyz?verbose` does), so a failing probe says why.
 */
export function readinessAnswer(checks: readonly ReadinessCheck[]): ProbeAnswer {
  const lines = checks.map((c) =>
    c.problem === undefined ? `[+]${c.name} ok${c.note === undefined ? "" : ` (${c.note})`}` : `[-]${c.name} failed: ${c.problem}`,
  );
  const ready = checks.every((c) => c.problem === undefined);
  return { status: ready ? 200 : 503, contentType: TEXT, body: `${lines.join("\n")}\n${ready ? "ready" : "not ready"}\n` };
}

/** Where a probe's answers come from. */
export interface ProbeSources {
  ready: () => Promise<readonly ReadinessCheck[]>;
  metrics: () => Promise<{ contentType: string; body: string }>;
}

/** The answer to a GET of `path`, or undefined when it is not a probe path. */
export async function answerProbe(path: string, sources: ProbeSources): Promise<ProbeAnswer | undefined> {
  switch (path) {
    case PROBE_PATHS.health:
      return healthAnswer();
    case PROBE_PATHS.ready:
      return readinessAnswer(await sources.ready());
    case PROBE_PATHS.metrics:
      return { status: 200, ...(await sources.metrics()) };
    default:
      return undefined;
  }
}

/** Runs a readiness check, turning a failure or a check slower than `timeoutMs` into its problem. */
export async function checkWithin(name: string, timeoutMs: number, check: () => Promise<string | undefined>): Promise<ReadinessCheck> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      resolve(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
  });
  try {
    const problem = await Promise.race([check(), late]);
    return problem === undefined ? { name } : { name, problem };
  } catch (error) {
    return { name, problem: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** A Redis server's `maxmemory-policy`, or why it could not be read (CONFIG disabled or not allowed, say). */
export type EvictionPolicy = { policy: string } | { unreadable: string };

/**
 * What the servers' eviction policies mean for the queues and records kept in Redis: anything but
 * `noeviction` lets Redis drop them under memory pressure, which is a problem; a policy that could
 * not be read is only a note, since many managed Redis services disable CONFIG.
 */
export function evictionVerdict(policies: readonly EvictionPolicy[]): { problem?: string; note?: string } {
  const evicting = policies.flatMap((p) => ("policy" in p && p.policy !== "noeviction" ? [p.policy] : []));
  if (evicting.length > 0)
    return {
      problem: `maxmemory-policy is ${[...new Set(evicting)].join(", ")}, not noeviction: Redis may evict queued jobs and records; set maxmemory-policy noeviction`,
    };
  const unreadable = policies.flatMap((p) => ("unreadable" in p ? [p.unreadable] : []));
  if (unreadable.length > 0) return { note: `maxmemory-policy could not be checked: ${unreadable[0] ?? ""}` };
  return {};
}

/**
 * Readiness of a Redis connection (ioredis's shape): connected, and answering a PING in time; with
 * `evictionPolicies`, also holding its data with `noeviction` (see `evictionVerdict`).
 */
export function redisReady(
  redis: { status: string; ping: () => Promise<unknown> },
  options: { evictionPolicies?: () => Promise<EvictionPolicy[]> } = {},
): Promise<ReadinessCheck> {
  let note: string | undefined;
  return checkWithin("redis", 2_000, async () => {
    if (redis.status !== "ready") return `connection is ${redis.status}`;
    await redis.ping();
    if (!options.evictionPolicies) return undefined;
    const verdict = evictionVerdict(await options.evictionPolicies());
    note = verdict.note;
    return verdict.problem;
  }).then((check) => (check.problem === undefined && note !== undefined ? { ...check, note } : check));
}

/** Readiness of a process's queue workers: none while it shuts down, or while any of them has stopped. */
export function workersReady(stopping: boolean, workers: readonly { isRunning: () => boolean }[]): Promise<ReadinessCheck> {
  if (stopping) return Promise.resolve({ name: "queues", problem: "shutting down" });
  return Promise.resolve(workers.every((w) => w.isRunning()) ? { name: "queues" } : { name: "queues", problem: "a worker is not running" });
}

/** What GitHub answered when asked about the app's own credentials (`GET /app`). */
export type CredentialAnswer = { kind: "accepted" } | { kind: "refused"; status: number } | { kind: "unreachable"; reason: string };

/**
 * Reads an answer from how a request to GitHub ended: a 401 or 403 refuses the credentials; any
 * other failure (a timeout, a reset, a 5xx) only says GitHub could not be reached.
 */
export function credentialAnswer(error: unknown): CredentialAnswer {
  if (error === undefined) return { kind: "accepted" };
  const status = isRecord(error) ? error.status : undefined;
  if (status === 401 || status === 403) return { kind: "refused", status };
  return { kind: "unreachable", reason: errorMessage(error) };
}

/**
 * The `github` readiness check: only a refusal of the credentials makes the app unready. An
 * unreachable GitHub keeps the last refusal or acceptance (acceptance when none), with a note.
 */
export function credentialReadiness(latest: CredentialAnswer, settled: CredentialAnswer | undefined): ReadinessCheck {
  const decided = latest.kind === "unreachable" ? settled : latest;
  const problem =
    decided?.kind === "refused" ? `GitHub refused the app's credentials (${decided.status}): check APP_ID and PRIVATE_KEY` : undefined;
  const note = latest.kind === "unreachable" ? `GitHub unreachable, not counted: ${latest.reason}` : undefined;
  return { name: "github", ...(problem === undefined ? {} : { problem }), ...(note === undefined ? {} : { note }) };
}

/** When to ask GitHub again, and how long an answer may take. */
export interface CredentialCheckOptions {
  clock: Clock;
  /** How long one request may take before GitHub counts as unreachable. */
  timeoutMs?: number;
  /** How long an acceptance holds before GitHub is asked again. */
  acceptedForMs?: number;
  /** How long a refusal or an unreachable GitHub holds before GitHub is asked again. */
  retryAfterMs?: number;
  /** Told each answer as it comes, for logs. */
  observe?: (answer: CredentialAnswer) => void;
}

/**
 * Whether GitHub takes the app's credentials, for `/readyz`. Every probe shares the one request in
 * flight and the last answer while it is fresh, so a burst of probes (two kubelets, a load
 * balancer) sends one request; a request that does not end within `timeoutMs` is aborted and
 * counts as GitHub being unreachable, which does not make the app unready (issue 24).
 */
export class CredentialCheck {
  readonly #ask: (signal: AbortSignal) => Promise<void>;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #acceptedForMs: number;
  readonly #retryAfterMs: number;
  readonly #observe: ((answer: CredentialAnswer) => void) | undefined;
  #latest: { answer: CredentialAnswer; at: number } | undefined;
  #settled: CredentialAnswer | undefined;
  #inFlight: Promise<ReadinessCheck> | undefined;

  /** `ask` sends the request (`GET /app`) and throws as Octokit does, with the HTTP `status`. */
  constructor(ask: (signal: AbortSignal) => Promise<void>, options: CredentialCheckOptions) {
    this.#ask = ask;
    this.#clock = options.clock;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#acceptedForMs = options.acceptedForMs ?? 300_000;
    this.#retryAfterMs = options.retryAfterMs ?? 10_000;
    this.#observe = options.observe;
  }

  /** The readiness check: the last answer while it is fresh, else the answer of the request in flight. */
  check(): Promise<ReadinessCheck> {
    if (this.#inFlight) return this.#inFlight;
    const latest = this.#latest;
    if (latest) {
      const freshFor = latest.answer.kind === "accepted" ? this.#acceptedForMs : this.#retryAfterMs;
      if (this.#clock.now() - latest.at < freshFor) return Promise.resolve(credentialReadiness(latest.answer, this.#settled));
    }
    this.#inFlight = this.#request().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #request(): Promise<ReadinessCheck> {
    const abort = new AbortController();
    const late = { kind: "unreachable", reason: `no answer within ${this.#timeoutMs} ms` } as const;
    const asked = this.#ask(abort.signal).then(
      () => credentialAnswer(undefined),
      (error: unknown) => credentialAnswer(error),
    );
    const answer = await Promise.race([asked, this.#clock.sleep(this.#timeoutMs).then(() => late)]);
    if (answer === late) abort.abort(new Error(late.reason));
    this.#latest = { answer, at: this.#clock.now() };
    if (answer.kind !== "unreachable") this.#settled = answer;
    this.#observe?.(answer);
    return credentialReadiness(answer, this.#settled);
  }
}
