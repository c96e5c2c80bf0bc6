/**
 * Runs a task per key one at a time, with at most one more waiting: an ask that comes while one
 * waits joins it (the waiting run starts after every ask it stands for, so it sees what they saw).
 * A stream of asks costs a run at a time, back to back, never a growing queue of runs. A run that
 * failed does not hold up the next; its askers see the failure.
 */
export class CoalescedRuns {
  readonly #last = new Map<string, Promise<void>>();
  readonly #waiting = new Map<string, Promise<void>>();

  run(key: string, task: () => Promise<void>): Promise<void> {
    const waiting = this.#waiting.get(key);
    if (waiting) return waiting;
    const run = (this.#last.get(key) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        this.#waiting.delete(key);
        return task();
      });
    this.#waiting.set(key, run);
    this.#last.set(key, run);
    void run
      .finally(() => {
        if (this.#last.get(key) === run) this.#last.delete(key);
      })
      .catch(() => undefined);
    return run;
  }

  /** Settles once every run asked for so far has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#last.values());
  }
}
