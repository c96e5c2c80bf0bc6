import type { Environment } from "../../core/config.ts";
import type { DiffOptions } from "../../core/diff.ts";
import { SIDES, type Side } from "../../core/diff-report.ts";
import { decodeRender, sideOfRender } from "../../render/cached-render.ts";
import type { EnvironmentComparison, RenderedSide, SidesRenderer } from "../../render/compare.ts";
import type { RenderPool } from "../../render/render-pool.ts";
import { InputDigests } from "./input-digests.ts";
import type { Logger } from "./logger.ts";
import { RenderCache } from "./render-cache.ts";

/** What a cached renderer needs. */
export interface CachedRendererDeps {
  pool: RenderPool;
  cache: RenderCache;
  now: () => number;
  log: Logger;
  /** Digests read by earlier previews, kept across them. */
  digests?: InputDigests;
}

/**
 * Compares the environments of two checkouts for a preview: knows each environment's input
 * digests, skips what did not change, hands a render process the cache entries of the sides it
 * has (verified, still compressed) and the checkouts of the others, and stores the entries the
 * render process makes for the rest as each is made. This process never decodes either side for a
 * comparison, and holds a side's entry only until it is stored: a preview of 500 environments
 * keeps their diffs, not their objects. Only a live preview reads the head's objects, back from
 * the cache.
 */
export class CachedRenderer implements SidesRenderer {
  readonly #deps: CachedRendererDeps;
  readonly #checkouts: Record<Side, string>;
  readonly #inputs = new Map<string, Promise<Record<Side, string>>>();
  readonly #digests: InputDigests;
  /** Cache writes under way, each settling once its entry is stored (or given up). */
  readonly #writes = new Set<Promise<void>>();
  /**
   * Where each compared environment's head is: its cache key, or the entry itself while it is not
   * stored (being made, or its write failed; a failed render has none).
   */
  readonly #heads = new Map<string, { key: string; entry?: Promise<Uint8Array | undefined> }>();

  constructor(deps: CachedRendererDeps, checkouts: Record<Side, string>) {
    this.#deps = deps;
    this.#checkouts = checkouts;
    this.#digests = deps.digests ?? new InputDigests();
  }

  /** Why `env` need not be rendered ("inputs unchanged"), or undefined. */
  async unchanged(env: Environment): Promise<string | undefined> {
    const inputs = await this.#inputsOf(env);
    return inputs.base === inputs.head ? "inputs unchanged" : undefined;
  }

  /** Both sides of `env` compared, each from the cache where possible. */
  async compare(env: Environment, options?: DiffOptions): Promise<EnvironmentComparison> {
    const inputs = await this.#inputsOf(env);
    const keys = { base: this.#key(env, inputs.base), head: this.#key(env, inputs.head) };
    const [base, head] = await Promise.all(SIDES.map((side) => this.#deps.cache.fetch(keys[side], this.#deps.now())));
    const { comparison, entries } = await this.#deps.pool.compare(
      env,
      { checkouts: this.#checkouts, cached: { ...(base ? { base } : {}), ...(head ? { head } : {}) } },
      options,
    );
    const made = { base: entries.then((e) => e.base), head: entries.then((e) => e.head) };
    if (head) this.#heads.set(env.name, { key: keys.head });
    else {
      const location: { key: string; entry?: Promise<Uint8Array | undefined> } = { key: keys.head, entry: made.head };
      this.#heads.set(env.name, location);
      this.#store(keys.head, made.head, (stored) => {
        // Stored: read back from the cache when asked; otherwise kept, as nothing else has it.
        if (stored) delete location.entry;
      });
    }
    if (!base) this.#store(keys.base, made.base);
    return comparison;
  }

  /** The head side of an environment compared so far (not of one skipped as unchanged, nor of a failed render). */
  async head(environment: string): Promise<RenderedSide | undefined> {
    const location = this.#heads.get(environment);
    if (!location) return undefined;
    const entry = (await location.entry) ?? (await this.#deps.cache.fetch(location.key, this.#deps.now()));
    const render = entry ? await decodeRender(entry) : undefined;
    return render ? sideOfRender(render) : undefined;
  }

  /** Settles once the entries of the renders made so far are stored (or given up); never rejects. */
  async flush(): Promise<void> {
    while (this.#writes.size > 0) await Promise.all([...this.#writes]);
  }

  /** The digest of each side's inputs. */
  #inputsOf(env: Environment): Promise<Record<Side, string>> {
    let inputs = this.#inputs.get(env.name);
    if (!inputs) {
      inputs = Promise.all([this.#digests.digest(this.#checkouts.base, env), this.#digests.digest(this.#checkouts.head, env)]).then(
        ([base, head]) => ({ base, head }),
      );
      this.#inputs.set(env.name, inputs);
    }
    return inputs;
  }

  #key(env: Environment, digest: string): string {
    // `format` changes when what a cached render holds changes (2: keys without the version; 3: notes; 4: missing; 5: one line per object).
    return RenderCache.key(digest, { format: 5, env, ...this.#deps.pool.settings });
  }

  /** Stores an entry once it is made, then drops it; `stored` is told whether it is in the cache. */
  #store(key: string, entry: Promise<Uint8Array | undefined>, stored?: (ok: boolean) => void): void {
    const write = this.#write(key, entry).then((ok) => {
      stored?.(ok);
      this.#writes.delete(write);
    });
    this.#writes.add(write);
  }

  async #write(key: string, entry: Promise<Uint8Array | undefined>): Promise<boolean> {
    const data = await entry;
    if (!data) return false;
    return this.#deps.cache.set(key, data, this.#deps.now()).catch((error: unknown) => {
      this.#deps.log.warn({ error: String(error) }, "render cache write failed");
      return false;
    });
  }
}
