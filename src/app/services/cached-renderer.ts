import type { Environment } from "../../core/config.ts";
import type { DiffOptions } from "../../core/diff.ts";
import { SIDES, type Side } from "../../core/diff-report.ts";
import { decodeRender, sideOfRender } from "../../render/cached-render.ts";
import type { EnvironmentComparison, RenderedSide, SidesRenderer } from "../../render/compare.ts";
import { environmentInputs, type EnvironmentInputs } from "../../render/inputs.ts";
import type { RenderPool } from "../../render/render-pool.ts";
import type { Logger } from "./logger.ts";
import { RenderCache } from "./render-cache.ts";

/** What a cached renderer needs. */
export interface CachedRendererDeps {
  pool: RenderPool;
  cache: RenderCache;
  now: () => number;
  log: Logger;
}

/**
 * Compares the environments of two checkouts for a preview: knows each environment's input
 * digests, skips what did not change, hands a render process the cache entries of the sides it
 * has (verified, still compressed) and the checkouts of the others, and stores the entries the
 * render process makes for the rest in {@link flush}. This process never decodes either side for
 * a comparison; only a live preview reads the head's objects.
 */
export class CachedRenderer implements SidesRenderer {
  readonly #deps: CachedRendererDeps;
  readonly #checkouts: Record<Side, string>;
  readonly #inputs = new Map<string, Promise<Record<Side, EnvironmentInputs>>>();
  readonly #unwritten: { key: string; entry: Promise<Uint8Array | undefined> }[] = [];
  /** Each compared environment's head as a cache entry: from the cache, or being made by a render process. */
  readonly #heads = new Map<string, Promise<Uint8Array | undefined>>();

  constructor(deps: CachedRendererDeps, checkouts: Record<Side, string>) {
    this.#deps = deps;
    this.#checkouts = checkouts;
  }

  /** Why `env` need not be rendered ("inputs unchanged"), or undefined. */
  async unchanged(env: Environment): Promise<string | undefined> {
    const inputs = await this.#inputsOf(env);
    return inputs.base.digest === inputs.head.digest ? "inputs unchanged" : undefined;
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
    if (!base) this.#unwritten.push({ key: keys.base, entry: entries.then((made) => made.base) });
    if (!head) this.#unwritten.push({ key: keys.head, entry: entries.then((made) => made.head) });
    this.#heads.set(env.name, head ? Promise.resolve(head) : entries.then((made) => made.head));
    return comparison;
  }

  /** The head side of an environment compared so far (not of one skipped as unchanged, nor of a failed render). */
  async head(environment: string): Promise<RenderedSide | undefined> {
    const entry = await this.#heads.get(environment);
    const render = entry ? await decodeRender(entry) : undefined;
    return render ? sideOfRender(render) : undefined;
  }

  /** Stores the entries of the renders made so far as each is made; never rejects. */
  async flush(): Promise<void> {
    await Promise.all(this.#unwritten.splice(0).map(({ key, entry }) => this.#write(key, entry)));
  }

  #inputsOf(env: Environment): Promise<Record<Side, EnvironmentInputs>> {
    let inputs = this.#inputs.get(env.name);
    if (!inputs) {
      inputs = Promise.all([environmentInputs(this.#checkouts.base, env), environmentInputs(this.#checkouts.head, env)]).then(
        ([base, head]) => ({ base, head }),
      );
      this.#inputs.set(env.name, inputs);
    }
    return inputs;
  }

  #key(env: Environment, inputs: EnvironmentInputs): string {
    // `format` changes when what a cached render holds changes (2: keys without the version; 3: notes; 4: missing; 5: one line per object).
    return RenderCache.key(inputs.digest, { format: 5, env, ...this.#deps.pool.settings });
  }

  async #write(key: string, entry: Promise<Uint8Array | undefined>): Promise<void> {
    const data = await entry;
    if (!data) return;
    await this.#deps.cache.set(key, data, this.#deps.now()).catch((error: unknown) => {
      this.#deps.log.warn({ error: String(error) }, "render cache write failed");
    });
  }
}
