import type { PacingClock } from "../../src/app/github/pacing.ts";

/**
 * A clock that moves only when the test moves it. A sleep ends once `advance` passes its wake-up
 * time, so a test asserts on what a component chose to wait for, never on how long a busy machine
 * took to get there. `now` starts at a whole second, so times GitHub gives in seconds come out exact.
 */
export class ManualClock implements PacingClock {
  /** `now()` when the clock was made, in milliseconds since the epoch. */
  readonly start: number;
  #elapsed = 0;
  #sleepers: { at: number; wake: () => void }[] = [];
  #watchers: (() => void)[] = [];

  constructor(start: number = Date.UTC(2026, 10, 27, 12, 0, 0)) {
    this.start = start;
  }

  /** Milliseconds the clock has been moved since it was made. */
  get elapsed(): number {
    return this.#elapsed;
  }

  /** When each pending sleep ends, in elapsed milliseconds, soonest first. */
  get wakeUps(): number[] {
    return this.#sleepers.map((sleeper) => sleeper.at).sort((a, b) => a - b);
  }

  readonly now = (): number => this.start + this.#elapsed;

  readonly monotonic = (): number => this.#elapsed;

  readonly sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      this.#sleepers.push({ at: this.#elapsed + ms, wake: resolve });
      for (const watcher of this.#watchers.splice(0)) watcher();
    });

  /** Resolves once a sleep is pending: at once if one is. */
  asleep(): Promise<void> {
    if (this.#sleepers.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.#watchers.push(resolve));
  }

  /** Moves the clock `ms` forward and ends every sleep whose time has come, soonest first. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`ManualClock.advance: ms must be 0 or more, got ${String(ms)}`);
    this.#elapsed += ms;
    const due = this.#sleepers.filter((sleeper) => sleeper.at <= this.#elapsed).sort((a, b) => a.at - b.at);
    this.#sleepers = this.#sleepers.filter((sleeper) => sleeper.at > this.#elapsed);
    for (const sleeper of due) sleeper.wake();
  }

  /**
   * Awaits `work`, moving the clock to the next wake-up each time a sleep is pending, as if every
   * wait took exactly as long as it asked. For one piece of work at a time: a sleep pending
   * elsewhere would move the clock while `work` is still on its way.
   */
  async run<T>(work: Promise<T>): Promise<T> {
    const state = { settled: false };
    const done = work.then(
      () => (state.settled = true),
      () => (state.settled = true),
    );
    for (;;) {
      await Promise.race([done, this.asleep()]);
      if (state.settled) return work;
      const [next = this.#elapsed] = this.wakeUps;
      this.advance(next - this.#elapsed);
    }
  }
}
