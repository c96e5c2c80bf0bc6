import { createHmac, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { constants, gunzipSync, gzip } from "node:zlib";
import type { RedisClient } from "../../redis/connection.ts";
import type { DiffReport } from "../../core/diff-report.ts";
import type { LiveEnvironment } from "../../core/live-preview.ts";
import { diffPageKey } from "../state/redis-keys.ts";
import type { RedisMac } from "../state/redis-mac.ts";

/** A stored page never decompresses past this. */
const MAX_PAGE_BYTES = 512 * 1024 * 1024;

/** What a diff page shows. */
export interface DiffPageData {
  title: string;
  subtitle: string;
  report: DiffReport;
  /** The live preview, once agents answered: the page's live tab. */
  live?: readonly LiveEnvironment[];
  /** The pull request the page is about. */
  link?: string;
}

/**
 * What a page shows of a report: unchanged objects are only counted (in each environment's
 * summary), so their entries, most of a large report, are not kept.
 */
function shownOnPage(report: DiffReport): DiffReport {
  return {
    ...report,
    environments: report.environments.map((env) => ({ ...env, changes: env.changes.filter((c) => c.action !== "unchanged") })),
  };
}

/** Where the pages live and how long. */
export interface DiffPageOptions {
  /** The app's public URL, without a trailing slash. */
  publicUrl: string;
  /** HMAC key for links. */
  secret: string;
  ttlSeconds: number;
  /** Authenticates stored pages: a page read from Redis is shown only if this app wrote it. */
  mac: RedisMac;
}

/** The path prefix the app serves diff pages under. */
export const DIFF_PAGE_PATH = "/sluice/diff/";

/** How a link was judged. */
export type LinkVerdict = { ok: true; id: string } | { ok: false; status: 403 | 410 };

/**
 * Full diff pages: the report is kept in Redis for `ttlSeconds` so any replica can serve it, and
 * links carry an expiry and an HMAC signature.
 */
export class DiffPages {
  readonly #redis: RedisClient;
  readonly #options: DiffPageOptions;

  constructor(redis: RedisClient, options: DiffPageOptions) {
    this.#redis = redis;
    this.#options = options;
  }

  /**
   * Stores a page; returns its signed link, valid until `now + ttl`. The page's id comes from its
   * content, so the same report stored again (a repeated `/diff`) reuses one entry.
   */
  async store(data: DiffPageData, now: number): Promise<string> {
    const page = this.prepare(data, now);
    await page.stored;
    return page.url;
  }

  /**
   * Starts storing a page and gives its signed link at once: a comment can be written while the
   * page is compressed and stored, as long as it is posted only once `stored` has settled.
   */
  prepare(data: DiffPageData, now: number): { url: string; stored: Promise<void> } {
    const json = JSON.stringify({ ...data, report: shownOnPage(data.report) });
    const id = createHmac("sha256", this.#options.secret).update("page\0").update(json).digest("base64url").slice(0, 22);
    const expires = Math.floor(now / 1000) + this.#options.ttlSeconds;
    const stored = (async () => {
      // Fast compression off the main thread.
      const compressed = await promisify(gzip)(json, { level: constants.Z_BEST_SPEED });
      await this.#redis.set(this.#key(id), this.#options.mac.seal(`page:${id}`, compressed), "EX", this.#options.ttlSeconds);
    })();
    return { url: `${this.#options.publicUrl}${DIFF_PAGE_PATH}${id}?exp=${expires}&sig=${this.#sign(id, expires)}`, stored };
  }

  /** A stored page, or undefined once it has expired from Redis (or was not written by this app). */
  async load(id: string): Promise<DiffPageData | undefined> {
    const sealed = await this.#redis.getBuffer(this.#key(id));
    const data = sealed ? this.#options.mac.open(`page:${id}`, sealed) : undefined;
    return data ? (JSON.parse(gunzipSync(data, { maxOutputLength: MAX_PAGE_BYTES }).toString("utf8")) as DiffPageData) : undefined;
  }

  /** Checks a link's signature and expiry: 403 when forged or malformed, 410 when expired. */
  verify(id: string, expires: string | null, signature: string | null, now: number): LinkVerdict {
    if (!/^[A-Za-z0-9_-]{22}$/.test(id) || !expires || !/^\d{1,12}$/.test(expires) || !signature) return { ok: false, status: 403 };
    const expected = Buffer.from(this.#sign(id, Number(expires)));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, status: 403 };
    if (Number(expires) * 1000 < now) return { ok: false, status: 410 };
    return { ok: true, id };
  }

  #sign(id: string, expires: number): string {
    return createHmac("sha256", this.#options.secret).update(`${id}.${expires}`).digest("base64url");
  }

  #key(id: string): string {
    return diffPageKey(id);
  }
}
