/**
 * Writes the newest of a stream of values, one write at a time: a value given while a write is in
 * flight (waiting its turn in GitHub's write pacing, say) replaces any value still waiting, so a
 * burst of updates costs one write, and a write never overtakes a newer one. Values are made only
 * when they are about to be written: a body that is replaced is never built, and one made as
 * undefined is not written (whether it is still worth a write is decided when its turn comes).
 */
export class CoalescedWriter<T> {
  readonly #write: (value: T) => Promise<void>;
  readonly #failed: (error: unknown) => void;
  #pending: (() => T | undefined) | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  /** `write` sends one value; `failed` is told of a write that threw (the writer goes on with the next). */
  constructor(write: (value: T) => Promise<void>, failed: (error: unknown) => void) {
    this.#write = write;
    this.#failed = failed;
  }

  /** Queues the value `make` makes (nothing when it makes undefined), replacing one not written yet; ignored once closed. */
  update(make: () => T | undefined): void {
    if (this.#closed) return;
    this.#pending = make;
    this.#running ??= this.#drain();
  }

  /**
   * Stops writing: waits for the write in flight and drops what was not written, so that whatever
   * the caller writes next comes after every write this made.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = undefined;
    await this.#running;
  }

  async #drain(): Promise<void> {
    // Never settles in the turn it starts: `update` keeps the promise until it does.
    await Promise.resolve();
    while (this.#pending && !this.#closed) {
      const make = this.#pending;
      this.#pending = undefined;
      try {
        const value = make();
        if (value !== undefined) await this.#write(value);
      } catch (error) {
        this.#failed(error);
      }
    }
    this.#running = undefined;
  }
}
