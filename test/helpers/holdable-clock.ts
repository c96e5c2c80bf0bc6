import { setTimeout as sleep } from "node:timers/promises";
import type { PacingClock } from "../../src/app/github/pacing.ts";

/**
 * The system's clock, except that no sleep ends while it is held: what goes through meanwhile is
 * what a component chose not to wait for, however slow the machine. Sleeps due while held end on
 * `release`.
 */
export class HoldableClock implements PacingClock {
  #held: (() => void)[] | undefined;

  readonly now = (): number => Date.now();

  readonly monotonic = (): number => performance.now();

  readonly sleep = async (ms: number): Promise<void> => {
    await sleep(ms);
    const held = this.#held;
    if (held) await new Promise<void>((resolve) => held.push(resolve));
  };

  /** From now until `release`, no sleep ends. */
  hold(): void {
    this.#held ??= [];
  }

  /** Ends every sleep that came due while held; sleeps run as usual again. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const resolve of held) resolve();
  }
}
