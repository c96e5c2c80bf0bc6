import type { Environment } from "../../core/config.ts";
import { CheckoutReads, environmentInputs } from "../../render/inputs.ts";

/** Digests kept at most: 500 environments at 40 commits, about 100 bytes each. */
const MAX_DIGESTS = 20_000;
/** Checkouts whose file digests and listings are kept, most recently used: a few pull requests' base and head. */
const MAX_CHECKOUT_READS = 8;

/**
 * The input digests of environments at commits already read, by checkout and environment: every
 * pull request against the same base commit reads the same inputs there, and in a monorepo of
 * 500 environments reading them is most of a small preview's time (issue 28). A checkout's
 * directory is named after its commit, so what is under it never changes; least recently used
 * digests are dropped past the bound.
 */
export class InputDigests {
  readonly #digests = new Map<string, Promise<string>>();
  /** What the environments of one checkout share (a base, a chart, their files), read once for all of them. */
  readonly #reads = new Map<string, CheckoutReads>();

  /** The digest of what `env` reads in the checkout at `dir`, read once per checkout and environment. */
  digest(dir: string, env: Environment): Promise<string> {
    const key = `${dir}\0${JSON.stringify(env)}`;
    const known = this.#digests.get(key);
    if (known) {
      // Most recently used last.
      this.#digests.delete(key);
      this.#digests.set(key, known);
      return known;
    }
    const reading = environmentInputs(dir, env, this.#readsOf(dir)).then((inputs) => inputs.digest);
    this.#digests.set(key, reading);
    // A read that failed is not kept: the next preview reads again.
    reading.catch(() => this.#digests.delete(key));
    for (const oldest of this.#digests.keys()) {
      if (this.#digests.size <= MAX_DIGESTS) break;
      this.#digests.delete(oldest);
    }
    return reading;
  }

  #readsOf(dir: string): CheckoutReads {
    const known = this.#reads.get(dir);
    this.#reads.delete(dir);
    const reads = known ?? new CheckoutReads();
    this.#reads.set(dir, reads);
    for (const oldest of this.#reads.keys()) {
      if (this.#reads.size <= MAX_CHECKOUT_READS) break;
      this.#reads.delete(oldest);
    }
    return reads;
  }
}
