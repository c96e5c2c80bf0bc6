import type { Clock } from "../core/clock.ts";
import { mapBounded } from "../core/clock.ts";
import { computeHealth, type HealthStatus } from "../core/health.ts";
import { displayName, resourceKey } from "../core/identity.ts";
import type { Cluster } from "./kube/cluster.ts";
import type { Planned } from "./preflight.ts";

/** How a health wait ended: every object current, one failed, or time ran out; each object's last health by identity key. */
export interface HealthOutcome {
  ended: "healthy" | "failed" | "timed-out";
  /** What went wrong, naming the objects; empty when healthy. */
  message: string;
  health: Map<string, HealthStatus>;
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
    const states = await mapBounded(pending, options.concurrency, async (planned): Promise<HealthStatus> => {
      const live = await cluster.get(planned.object);
      return live ? computeHealth(live) : { status: "in-progress", message: "not found" };
    });
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
