import { computeHealth } from "../core/health.ts";
import { displayName } from "../core/identity.ts";
import type { ObjectResult } from "../core/agent-protocol.ts";
import { mapBounded, type Planned } from "./apply.ts";
import { HealthTimeoutError } from "./errors.ts";
import type { Cluster } from "./kube/cluster.ts";

/**
 * Polls the applied objects until every one is current (kstatus rules), one fails, or the
 * timeout passes. `results` is parallel to `objects` and gets each object's health. Reports
 * which object it is waiting for as it goes.
 */
export async function waitForHealth(
  cluster: Cluster,
  objects: readonly Planned[],
  results: ObjectResult[],
  options: { timeoutMs: number; concurrency: number; intervalMs?: number; waiting: (what: string) => Promise<void> },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  const pending = new Map(objects.map((p, index) => [index, p]));
  let lastNote = "";
  for (;;) {
    const messages: string[] = [];
    const round = [...pending];
    const states = await mapBounded(round, options.concurrency, async ([, planned]) => {
      const live = await cluster.get(planned.object);
      return live ? computeHealth(live) : { status: "in-progress" as const, message: "not found" };
    });
    for (const [position, [index, planned]] of round.entries()) {
      const health = states[position] ?? { status: "in-progress" as const, message: "not read" };
      const entry = results[index];
      if (entry) {
        entry.health = health.status;
        if (health.status !== "current") entry.message = health.message;
      }
      if (health.status === "current") pending.delete(index);
      else if (health.status === "failed") throw new HealthTimeoutError(`${displayName(planned.id)} failed: ${health.message}`, results);
      else messages.push(`${displayName(planned.id)}: ${health.message}`);
    }
    if (pending.size === 0) return;
    if (performance.now() > deadline) {
      throw new HealthTimeoutError(`health check timed out after ${Math.round(options.timeoutMs / 1000)} s; not healthy:\n${messages.map((m) => `- ${m}`).join("\n")}`, results);
    }
    const note = `waiting for the health of ${messages[0] ?? ""}${messages.length > 1 ? ` and ${messages.length - 1} more` : ""}`;
    if (note !== lastNote) {
      lastNote = note;
      await options.waiting(note);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
}
