import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { extractTarball, type ExtractLimits } from "./unpack-tarball.ts";

/** A checkout in use; release it when done so it may be evicted. */
export interface Lease {
  dir: string;
  release: () => void;
}

interface Entry {
  dir: string;
  bytes: number;
  lastUsed: number;
  users: number;
}

/** Options of the checkout cache. */
export interface CheckoutCacheOptions extends ExtractLimits {
  /** Where checkouts are kept. */
  dir: string;
  /** Least-recently-used checkouts are removed past this many bytes on disk. */
  maxCacheBytes: number;
  /** The clock, injected so tests control recency. */
  now?: () => number;
}

/**
 * Commit checkouts on disk, fetched once per commit SHA (one tarball request), unpacked safely,
 * kept in a size-bounded least-recently-used cache. Concurrent requests for one commit share one
 * download; a checkout in use is never evicted.
 */
export class CheckoutCache {
  readonly #options: CheckoutCacheOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Entry>>();
  /** Checkouts someone is waiting for: never evicted, not even by their own download. */
  readonly #wanted = new Map<string, number>();
  readonly #now: () => number;
  #loaded: Promise<void> | undefined;

  constructor(options: CheckoutCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Makes the directory this process's own: two processes evicting from one cache delete each
   * other's checkouts mid-render. A directory held by a live process is refused.
   * @throws Error naming the directory and the process that holds it
   */
  async claim(): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true });
    const lock = join(this.#options.dir, OWNER_FILE);
    const mine = `${String(process.pid)} ${(await startTime(process.pid)) ?? ""}`.trim();
    try {
      await writeFile(lock, mine, { flag: "wx" });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const [pid = "", started] = (await readFile(lock, "utf8")).trim().split(" ");
    const holder = Number(pid);
    if (holder !== process.pid && (await holds(holder, started)))
      throw new Error(
        `SLUICE_CACHE_DIR ${this.#options.dir} is in use by another sluice app (pid ${String(holder)}); give each app process a cache directory of its own`,
      );
    await writeFile(lock, mine);
  }

  /** Gives the directory up (see {@link claim}). */
  async release(): Promise<void> {
    await rm(join(this.#options.dir, OWNER_FILE), { force: true });
  }

  /** The checkout of `sha`, downloading it with `fetch` when it is not cached. */
  async acquire(key: string, fetch: () => Promise<Buffer | Readable>): Promise<Lease> {
    await this.#load();
    if (!/^[A-Za-z0-9._-]+$/.test(key))
      throw new Error(`checkout key "${key}" has characters other than letters, digits, '.', '_' and '-'`);
    let entry = this.#entries.get(key);
    if (!entry) {
      this.#wanted.set(key, (this.#wanted.get(key) ?? 0) + 1);
      try {
        let pending = this.#inflight.get(key);
        if (!pending) {
          pending = this.#download(key, fetch).finally(() => this.#inflight.delete(key));
          this.#inflight.set(key, pending);
        }
        entry = await pending;
      } finally {
        const left = (this.#wanted.get(key) ?? 1) - 1;
        if (left > 0) this.#wanted.set(key, left);
        else this.#wanted.delete(key);
      }
    }
    entry.users += 1;
    entry.lastUsed = this.#now();
    let released = false;
    const held = entry;
    return {
      dir: entry.dir,
      release: () => {
        if (released) return;
        released = true;
        held.users -= 1;
      },
    };
  }

  /** Bytes the cached checkouts take. */
  get size(): number {
    let total = 0;
    for (const entry of this.#entries.values()) total += entry.bytes;
    return total;
  }

  async #download(key: string, fetch: () => Promise<Buffer | Readable>): Promise<Entry> {
    const archive = await fetch();
    const staging = join(this.#options.dir, `.staging-${key}-${process.pid}-${this.#now()}`);
    const dir = join(this.#options.dir, key);
    await mkdir(staging, { recursive: true });
    let bytes: number;
    try {
      ({ bytes } = await extractTarball(archive, staging, this.#options));
      await rm(dir, { recursive: true, force: true });
      await rename(staging, dir);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    const entry: Entry = { dir, bytes, lastUsed: this.#now(), users: 0 };
    this.#entries.set(key, entry);
    await this.#evict();
    return entry;
  }

  async #evict(): Promise<void> {
    const candidates = [...this.#entries.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    let total = this.size;
    for (const [key, entry] of candidates) {
      if (total <= this.#options.maxCacheBytes) break;
      if (entry.users > 0 || this.#wanted.has(key)) continue;
      this.#entries.delete(key);
      total -= entry.bytes;
      await rm(entry.dir, { recursive: true, force: true });
    }
  }

  /** Takes in checkouts left by an earlier process; removes half-written ones. */
  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      await mkdir(this.#options.dir, { recursive: true });
      for (const name of await readdir(this.#options.dir)) {
        const path = join(this.#options.dir, name);
        if (name.startsWith(".staging-")) {
          await rm(path, { recursive: true, force: true });
          continue;
        }
        if (name.startsWith(".")) continue;
        const info = await stat(path);
        this.#entries.set(name, { dir: path, bytes: await treeSize(path), lastUsed: info.mtimeMs, users: 0 });
      }
    })();
    return this.#loaded;
  }
}

/** The file that names the process that owns a cache directory. */
const OWNER_FILE = ".sluice-app.pid";

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** When process `pid` started (clock ticks since boot, /proc/<pid>/stat), where /proc tells; undefined elsewhere. */
async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${String(pid)}/stat`, "utf8").catch(() => undefined);
  // Fields after the command name, which may hold spaces and parentheses; starttime is the 22nd field.
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

/**
 * Whether the process that wrote the owner file still runs. Its pid alone is not enough: a
 * container restarted after a kill keeps its cache volume and numbers its processes from 1 again,
 * so the dead app's pid is often another live process (or the new app's own child). The start
 * time recorded beside the pid tells them apart.
 */
async function holds(pid: number, started: string | undefined): Promise<boolean> {
  if (!alive(pid)) return false;
  if (started === undefined) return true;
  const now = await startTime(pid);
  return now === undefined || now === started;
}

async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
