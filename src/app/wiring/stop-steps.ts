import type { Clock } from "../../core/clock.ts";

/** One part of the app to stop, in order. */
export interface StopStep {
  name: string;
  /** Stops it gracefully: lets running work finish, closes its connections. */
  run: () => Promise<unknown>;
  /** Cuts it short once the deadline has passed (drops connections, kills processes); not awaited. */
  force?: () => unknown;
}

/** How a stop went: every step in time, or cut short at the named step. */
export type StopOutcome = { kind: "in-time" } | { kind: "cut-short"; step: string; pending: string[] };

/**
 * Runs `steps` in order, all within `timeoutMs`: a Kubernetes pod is killed at the end of its grace
 * period, and a step waiting on a Redis that is down would wait for ever. Once the deadline passes,
 * the step at hand and every later one are forced, without waiting for any of them.
 */
export async function stopWithin(
  steps: readonly StopStep[],
  timeoutMs: number,
  options: {
    clock: Clock;
    /** Told which step the deadline cut short and which were still to run. */
    late?: (step: string, pending: string[]) => void;
    /** Told of a step that failed; the next steps run all the same. */
    failed?: (step: string, error: unknown) => void;
  },
): Promise<StopOutcome> {
  const LATE = Symbol("late");
  const deadline = options.clock.sleep(timeoutMs).then(() => LATE);
  for (const [index, step] of steps.entries()) {
    const done = Promise.resolve()
      .then(step.run)
      .then(
        () => undefined,
        (error: unknown) => {
          options.failed?.(step.name, error);
        },
      );
    if ((await Promise.race([done, deadline])) !== LATE) continue;
    const pending = steps.slice(index + 1).map((s) => s.name);
    options.late?.(step.name, pending);
    for (const rest of steps.slice(index)) {
      try {
        Promise.resolve(rest.force?.()).catch(() => undefined);
      } catch {
        // Forcing is the last resort: nothing more can be done about a step that fails it.
      }
    }
    return { kind: "cut-short", step: step.name, pending };
  }
  return { kind: "in-time" };
}
