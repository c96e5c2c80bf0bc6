import { createHash, timingSafeEqual } from "node:crypto";

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
  const lines = checks.map((c) => (c.problem === undefined ? `[+]${c.name} ok` : `[-]${c.name} failed: ${c.problem}`));
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

/** Readiness of a Redis connection (ioredis's shape): connected, and answering a PING in time. */
export function redisReady(redis: { status: string; ping: () => Promise<unknown> }): Promise<ReadinessCheck> {
  return checkWithin("redis", 2_000, async () => {
    if (redis.status !== "ready") return `connection is ${redis.status}`;
    await redis.ping();
    return undefined;
  });
}

/** Readiness of a process's queue workers: none while it shuts down, or while any of them has stopped. */
export function workersReady(stopping: boolean, workers: readonly { isRunning: () => boolean }[]): Promise<ReadinessCheck> {
  if (stopping) return Promise.resolve({ name: "queues", problem: "shutting down" });
  return Promise.resolve(workers.every((w) => w.isRunning()) ? { name: "queues" } : { name: "queues", problem: "a worker is not running" });
}
