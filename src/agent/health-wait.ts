import type { Clock } from "../core/clock.ts";
import { mapBounded } from "../core/clock.ts";
import { computeHealth, type HealthStatus } from "../core/health.ts";
import { displayName, resourceKey } from "../core/identity.ts";
import type { ObjectResult } from "../core/agent-protocol.ts";
import { asError } from "./change-set.ts";
import type { Cluster } from "./kube/cluster.ts";
import type { Planned } from "./preflight.ts";

/**
 * How a health wait ended: every object current, one failed, time ran out, or reading the objects
 * failed part-way (`error`, with the health seen until then); each object's last health by identity key.
 */
export interface HealthOutcome {
  ended: "healthy" | "failed" | "timed-out" | "interrupted";
  /** What went wrong, naming the objects; empty when healthy. */
  message: string;
  health: Map<string, HealthStatus>;
  /** Why the wait was interrupted: a cluster error (which may be transient) while reading the objects. */
  error?: Error;
}

/** `results` with the health each object was last seen in (and, when not current, why). */
export function withHealth(results: readonly ObjectResult[], health: ReadonlyMap<string, HealthStatus>): ObjectResult[] {
  return results.map((result) => {
    const seen = health.get(resourceKey(result));
    return seen ? { ...result, health: seen.status, ...(seen.status === "current" ? {} : { message: seen.message }) } : result;
  });
}

/** Options of one health wait. */
export interface HealthWaitOptions {
  timeoutMs: number;
  concurrency: number;
  clock: Clock;
  intervalMs?: number;
  /** Told which object it is waiting for, when that changes. */
  waiting: (what: string) => Promise<void>;
}

/**
 * Polls the applied objects until every one is current (kstatus rules), one fails, or the
 * timeout passes, and returns each object's health as last seen.
 */
export async function waitForHealth(cluster: Cluster, objects: readonly Planned[], options: HealthWaitOptions): Promise<HealthOutcome> {
  const deadline = options.clock.now() + options.timeoutMs;
  const health = new Map<string, HealthStatus>();
  let pending = [...objects];
  let lastNote = "";
  for (;;) {
    let states: HealthStatus[];
    try {
      states = await readHealth(cluster, pending, options.concurrency);
    } catch (error) {
      const failure = asError(error);
      return { ended: "interrupted", message: failure.message, health, error: failure };
    }
    const messages: string[] = [];
    const still: Planned[] = [];
    for (const [index, planned] of pending.entries()) {
      const state = states[index] ?? { status: "in-progress", message: "not read" };
      health.set(resourceKey(planned.id), state);
      if (state.status === "failed") return { ended: "failed", message: `${displayName(planned.id)} failed: ${state.message}`, health };
      if (state.status !== "current") {
        still.push(planned);
        messages.push(`${displayName(planned.id)}: ${state.message}`);
      }
    }
    pending = still;
    if (pending.length === 0) return { ended: "healthy", message: "", health };
    if (options.clock.now() > deadline) {
      return {
        ended: "timed-out",
        message: `health check timed out after ${Math.round(options.timeoutMs / 1000)} s; not healthy:\n${messages.map((m) => `- ${m}`).join("\n")}`,
        health,
      };
    }
    const note = `waiting for the health of ${messages[0] ?? ""}${messages.length > 1 ? ` and ${messages.length - 1} more` : ""}`;
    if (note !== lastNote) {
      lastNote = note;
      await options.waiting(note);
    }
    await options.clock.sleep(options.intervalMs ?? 500);
  }
}

/** The health of each object as the cluster has it now. */
function readHealth(cluster: Cluster, objects: readonly Planned[], concurrency: number): Promise<HealthStatus[]> {
  return mapBounded(objects, concurrency, async (planned): Promise<HealthStatus> => {
    const live = await cluster.get(planned.object);
    return live ? computeHealth(live) : { status: "in-progress", message: "not found" };
  });
}
