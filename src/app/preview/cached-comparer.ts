import type { Environment } from "../../core/config.ts";
import type { DiffOptions } from "../../core/diff.ts";
import type { Side } from "../../core/diff-report.ts";
import { decodeRenderEntry, sideOfEntry } from "../../render/render-entry.ts";
import type { EnvironmentComparison, RenderedSide } from "../../render/compare.ts";
import type { RenderPool } from "../../render/render-pool.ts";
import { InputDigests } from "./input-digests.ts";
import type { Logger } from "../log-context.ts";
import { RenderEntryStore } from "./render-entry-store.ts";

/** What a cached comparer needs. */
export interface CachedComparerDeps {
  pool: RenderPool;
  cache: RenderEntryStore;
  now: () => number;
  log: Logger;
  /** Digests read by earlier previews, kept across them. */
  digests?: InputDigests;
}

/** The digest of what an environment reads at each side. */
export type SideInputs = Record<Side, string>;

/** Where one environment's head render is, for `CachedComparer.head` to read back. */
export interface HeadRender {
  /** Its render cache key. */
  key: string;
  /** Its entry when it was made for this comparison but could not be stored (once the write is over); undefined otherwise. */
  unstored: Promise<Uint8Array | undefined>;
}

/** One environment compared through the render cache. */
export interface CachedComparison {
  comparison: EnvironmentComparison;
  head: HeadRender;
  /** Settles once the cache entries this comparison made are stored (or given up); never rejects. */
  entries: Promise<void>;
}

/** Why an environment whose sides read `inputs` need not be rendered ("inputs unchanged"), or undefined. */
export function unchangedReason(inputs: SideInputs): string | undefined {
  return inputs.base === inputs.head ? "inputs unchanged" : undefined;
}

/**
 * Compares one environment of two checkouts through the render cache: hands a render process the
 * cache entries of the sides it has (verified, still compressed) and the checkouts of the others,
 * and stores the entries the render process makes for the rest as each is made. This process
 * never decodes either side for a comparison, and holds a side's entry only until it is stored: a
 * preview of 500 environments keeps their diffs, not their objects. Only a live preview reads the
 * head's objects, back from the cache. It keeps nothing between calls.
 */
export class CachedComparer {
  readonly #deps: CachedComparerDeps;
  readonly #checkouts: Record<Side, string>;
  readonly #digests: InputDigests;

  constructor(deps: CachedComparerDeps, checkouts: Record<Side, string>) {
    this.#deps = deps;
    this.#checkouts = checkouts;
    this.#digests = deps.digests ?? new InputDigests();
  }

  /** The digest of each side's inputs of `env`. */
  async inputs(env: Environment): Promise<SideInputs> {
    const [base, head] = await Promise.all([
      this.#digests.digest(this.#checkouts.base, env),
      this.#digests.digest(this.#checkouts.head, env),
    ]);
    return { base, head };
  }

  /** Both sides of `env` compared, each from the cache where possible; the entries made for the others are stored as they come. */
  async compare(env: Environment, inputs: SideInputs, options?: DiffOptions): Promise<CachedComparison> {
    const keys = { base: this.#key(env, inputs.base), head: this.#key(env, inputs.head) };
    const [base, head] = await Promise.all([
      this.#deps.cache.fetch(keys.base, this.#deps.now()),
      this.#deps.cache.fetch(keys.head, this.#deps.now()),
    ]);
    const { comparison, entries } = await this.#deps.pool.compare(
      env,
      { checkouts: this.#checkouts, cached: { ...(base ? { base } : {}), ...(head ? { head } : {}) } },
      options,
    );
    const baseStored = base
      ? Promise.resolve(true)
      : this.#write(
          keys.base,
          entries.then((e) => e.base),
        );
    const headStored = head
      ? Promise.resolve(true)
      : this.#write(
          keys.head,
          entries.then((e) => e.head),
        );
    // Stored: read back from the cache when asked; otherwise kept, as nothing else has it.
    const unstored = headStored.then(async (stored) => (stored ? undefined : (await entries).head));
    return {
      comparison,
      head: { key: keys.head, unstored },
      entries: Promise.all([baseStored, unstored]).then(() => undefined),
    };
  }

  /** The head side of a compared environment, from its entry kept here or from the cache; undefined for a failed render. */
  async head(location: HeadRender): Promise<RenderedSide | undefined> {
    const entry = (await location.unstored) ?? (await this.#deps.cache.fetch(location.key, this.#deps.now()));
    const render = entry ? await decodeRenderEntry(entry) : undefined;
    return render ? sideOfEntry(render) : undefined;
  }

  #key(env: Environment, digest: string): string {
    // `format` changes when what a cached render holds changes (2: keys without the version; 3: notes; 4: missing; 5: one line per object).
    return RenderEntryStore.key(digest, { format: 5, env, ...this.#deps.pool.settings });
  }

  /** Stores an entry once it is made: whether it is in the cache. Never rejects. */
  async #write(key: string, entry: Promise<Uint8Array | undefined>): Promise<boolean> {
    const data = await entry;
    if (!data) return false;
    return this.#deps.cache.set(key, data, this.#deps.now()).catch((error: unknown) => {
      this.#deps.log.warn({ error: String(error) }, "render cache write failed");
      return false;
    });
  }
}
