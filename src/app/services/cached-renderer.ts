import type { Environment } from "../../core/config.ts";
import type { Side } from "../../core/diff-report.ts";
import type { RenderedSide, SidesRenderer } from "../../render/compare.ts";
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
 * Renders the environments of two checkouts for a preview: knows each environment's input
 * digests, skips what did not change, serves sides from the shared render cache, renders the rest
 * in one render-process call, and writes new renders back in {@link flush}, once the comment is
 * out: serializing and compressing a large render takes the CPU the comment is waiting for.
 */
export class CachedRenderer implements SidesRenderer {
  readonly #deps: CachedRendererDeps;
  readonly #checkouts: Record<Side, string>;
  readonly #inputs = new Map<string, Promise<Record<Side, EnvironmentInputs>>>();
  readonly #unwritten: { key: string; side: RenderedSide }[] = [];
  readonly #heads = new Map<string, RenderedSide>();

  constructor(deps: CachedRendererDeps, checkouts: Record<Side, string>) {
    this.#deps = deps;
    this.#checkouts = checkouts;
  }

  /** Why `env` need not be rendered ("inputs unchanged"), or undefined. */
  async unchanged(env: Environment): Promise<string | undefined> {
    const inputs = await this.#inputsOf(env);
    return inputs.base.digest === inputs.head.digest ? "inputs unchanged" : undefined;
  }

  /** Both sides of `env`, from the cache where possible. */
  async render(env: Environment): Promise<Record<Side, RenderedSide>> {
    const inputs = await this.#inputsOf(env);
    const sides: Side[] = ["base", "head"];
    const keys = { base: this.#key(env, inputs.base), head: this.#key(env, inputs.head) };
    const found = await Promise.all(sides.map((side) => this.#deps.cache.get(keys[side], this.#deps.now())));
    const result: Partial<Record<Side, RenderedSide>> = {};
    sides.forEach((side, index) => {
      const cached = found[index];
      if (cached)
        result[side] = {
          ...cached,
          unknownScopes: cached.unknownScopes ?? [],
          resources: new Map(cached.resources.map((r) => [r.key, r])),
        };
    });
    const missing = sides.filter((side) => result[side] === undefined);
    if (missing.length > 0) {
      const rendered = await this.#deps.pool.render(
        env,
        missing.map((side) => this.#checkouts[side]),
      );
      missing.forEach((side, index) => {
        const side_ = rendered[index];
        if (!side_) return;
        result[side] = side_;
        if (!side_.transient) this.#unwritten.push({ key: keys[side], side: side_ });
      });
    }
    const { base, head } = result;
    if (!base || !head) throw new Error(`rendering ${env.name} returned fewer sides than asked`);
    this.#heads.set(env.name, head);
    return { base, head };
  }

  /** The head side of an environment rendered so far (not of one skipped as unchanged). */
  head(environment: string): RenderedSide | undefined {
    return this.#heads.get(environment);
  }

  /** Writes the renders made so far to the cache. */
  async flush(): Promise<void> {
    await Promise.all(this.#unwritten.splice(0).map(({ key, side }) => this.#write(key, side)));
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
    // `format` changes when what a cached render holds changes (2: keys without the version; 3: notes; 4: missing).
    return RenderCache.key(inputs.digest, { format: 4, env, ...this.#deps.pool.settings });
  }

  async #write(key: string, side: RenderedSide): Promise<void> {
    await this.#deps.cache
      .set(
        key,
        {
          resources: [...side.resources.values()],
          problems: side.problems,
          ...(side.unknownScopes.length > 0 ? { unknownScopes: side.unknownScopes } : {}),
          ...(side.notes ? { notes: side.notes } : {}),
          ...(side.missing ? { missing: true } : {}),
        },
        this.#deps.now(),
      )
      .catch((error: unknown) => {
        this.#deps.log.warn({ error: String(error) }, "render cache write failed");
      });
  }
}
