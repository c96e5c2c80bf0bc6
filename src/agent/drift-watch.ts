import { DEFAULT_IGNORED_MANAGERS } from "../core/drift.ts";
import { errorMessage } from "../core/errors.ts";
import type { ResourceId } from "../core/identity.ts";
import { isRecord } from "../core/manifest.ts";
import { KubeApiError, type Cluster, type ObjectMetadata, type WatchEvent } from "./kube/cluster.ts";

/** How long a burst of watch events on an environment's objects is gathered into one drift check. */
export const DRIFT_DEBOUNCE_MS = 1_000;
/** The first wait after a watch fails; it doubles with each failure in a row, up to `WATCH_BACKOFF_MAX_MS`. */
export const WATCH_BACKOFF_MS = 1_000;
/** The longest wait between two tries of a failing watch. */
export const WATCH_BACKOFF_MAX_MS = 30_000;
/** How long the API server keeps one watch request open; the watch then resumes from where it was. */
export const WATCH_TIMEOUT_SECONDS = 300;

/** What one watch covers: a kind (by apiVersion) in a namespace, or cluster-wide for a cluster-scoped kind (`namespace` empty). */
export interface WatchTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
}

/** The key of a watch: one per environment, apiVersion, kind and namespace. */
export function watchKey(environment: string, target: WatchTarget): string {
  return `${environment}|${target.apiVersion}|${target.kind}|${target.namespace}`;
}

/** The watches an environment's inventoried objects need, by key, each with the names it cares about. */
export function watchTargets(environment: string, objects: readonly ResourceId[]): Map<string, WatchTarget & { names: Set<string> }> {
  const targets = new Map<string, WatchTarget & { names: Set<string> }>();
  for (const id of objects) {
    const target = { apiVersion: id.group ? `${id.group}/${id.version}` : id.version, kind: id.kind, namespace: id.namespace };
    const key = watchKey(environment, target);
    const found = targets.get(key);
    if (found) found.names.add(id.name);
    else targets.set(key, { ...target, names: new Set([id.name]) });
  }
  return targets;
}

/**
 * The hands on an object that may make drift, from its managedFields: one short token per entry
 * of a manager other than the agent's and the cluster's controllers, outside the status
 * subresource. An entry's time moves whenever its manager writes, so a new token is a new write by
 * another hand; the agent's own applies only move its own entry (or shrink another's, which keeps
 * its time), and leave the tokens as they were. With `statusWrites`, every write of the status
 * subresource (by any manager: a controller saying how the object is) is a token too, so a change
 * of health is checked as soon as it is written.
 */
export function foreignHands(metadata: ObjectMetadata, ownManager: string, statusWrites = false): string {
  const entries = Array.isArray(metadata.managedFields) ? (metadata.managedFields as unknown[]) : [];
  const tokens: string[] = [];
  for (const entry of entries) {
    if (!isRecord(entry)) continue;
    const manager = typeof entry.manager === "string" ? entry.manager : "";
    const field = (value: unknown): string => (typeof value === "string" ? value : "");
    if (statusWrites && entry.subresource === "status") {
      tokens.push(`${manager}|${field(entry.operation)}|status|${field(entry.time)}`);
      continue;
    }
    if (manager === ownManager || DEFAULT_IGNORED_MANAGERS.includes(manager) || entry.subresource === "status") continue;
    tokens.push(`${manager}|${field(entry.operation)}|${field(entry.subresource)}|${field(entry.time)}`);
  }
  return tokens.sort().join("\n");
}

/** What a watch event means for an inventoried object: another hand wrote it, it is gone, or nothing to check. */
export type EventVerdict = "edited" | "deleted" | "quiet";

/**
 * Whether an event (or a listed object, as `ADDED`) on an inventoried object calls for a drift
 * check, against the hands seen on it before (`seen`, undefined when it was not seen yet).
 */
export function eventVerdict(type: "ADDED" | "MODIFIED" | "DELETED", hands: string, seen: string | undefined): EventVerdict {
  if (type === "DELETED") return "deleted";
  const before = new Set(seen ? seen.split("\n") : []);
  const after = hands ? hands.split("\n") : [];
  return after.some((token) => !before.has(token)) ? "edited" : "quiet";
}

/** What a watch does next after its stream ended: resume from its resourceVersion, list again (410 Gone), or wait and retry. */
export type WatchNext = "resume" | "relist" | "backoff";

/** The next step of a watch, from how its last request ended: an `ERROR` event's code, or the request's failure. */
export function nextStep(ended: { errorCode?: number; failure?: unknown }): WatchNext {
  if (ended.errorCode === 410 || (ended.failure instanceof KubeApiError && ended.failure.status === 410)) return "relist";
  if (ended.errorCode !== undefined || ended.failure !== undefined) return "backoff";
  return "resume";
}

/** Log lines of the watcher: fixed messages, details in an object. */
export type WatchLog = (level: "info" | "warn" | "error", message: string, details: Record<string, unknown>) => void;

/** What the watcher needs. */
export interface DriftWatcherOptions {
  cluster: Cluster;
  /** Called once a burst of events on an environment's objects settled: check that environment. */
  onChange: (environment: string, reason: { verdict: Exclude<EventVerdict, "quiet">; object: string }) => void;
  /** The debounce and the back-off wait on it (injected in tests). */
  sleep: (ms: number) => Promise<void>;
  log: WatchLog;
  debounceMs?: number;
  timeoutSeconds?: number;
  /** Whether a write of an object's status calls for a check too (a fleet's agent: a wave bakes healthy). */
  statusWrites?: boolean;
}

/**
 * Watches the kinds each followed environment deploys, one watch per kind and namespace, and
 * calls `onChange` (debounced) when an inventoried object is written by another hand or deleted:
 * drift is seen in seconds rather than at the next poll, which stays as the safety net. A watch
 * keeps only its objects' names and the tokens of the hands on them (see `foreignHands`), never the
 * objects, so its memory grows with names, not manifests.
 */
export class DriftWatcher {
  readonly #options: Required<DriftWatcherOptions>;
  readonly #watches = new Map<string, KindWatch>();
  readonly #pending = new Set<string>();
  readonly #stopping = new AbortController();
  #stopped: Promise<void> | undefined;

  constructor(options: DriftWatcherOptions) {
    this.#options = { debounceMs: DRIFT_DEBOUNCE_MS, timeoutSeconds: WATCH_TIMEOUT_SECONDS, statusWrites: false, ...options };
  }

  /** The running watches' keys (see `watchKey`). */
  get watches(): string[] {
    return [...this.#watches.keys()].sort();
  }

  /**
   * Follows what `environment` now deploys: starts the watches its objects need, stops those no
   * longer needed, and updates the names the rest care about. An empty list stops its watches.
   */
  follow(environment: string, objects: readonly ResourceId[]): void {
    if (this.#stopping.signal.aborted) return;
    const targets = watchTargets(environment, objects);
    for (const [key, watch] of this.#watches)
      if (watch.environment === environment && !targets.has(key)) {
        void watch.stop();
        this.#watches.delete(key);
      }
    for (const [key, { names, ...target }] of targets) {
      const running = this.#watches.get(key);
      if (running) running.follow(names);
      else {
        const watch = new KindWatch(environment, target, names, this.#options, (verdict, object) => {
          this.#changed(environment, verdict, object);
        });
        this.#watches.set(key, watch);
        watch.start();
      }
    }
  }

  /**
   * Drops every watch's connection, as a network failure would: each waits its back-off, then
   * resumes from its last resourceVersion, or lists again with `relist` (as after 410 Gone).
   */
  reconnect(options: { relist?: boolean } = {}): void {
    for (const watch of this.#watches.values()) watch.reconnect(options.relist ?? false);
  }

  /** Stops every watch and waits until they ended; calling it again waits for the same. */
  stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopping.abort();
      const running = [...this.#watches.values()];
      this.#watches.clear();
      this.#stopped = Promise.all(running.map((watch) => watch.stop())).then(() => undefined);
    }
    return this.#stopped;
  }

  /** Events and lists each running watch handled so far, by key: what a test waits for, and what metrics could show. */
  get handled(): Map<string, { lists: number; events: number }> {
    return new Map([...this.#watches].map(([key, watch]) => [key, { lists: watch.lists, events: watch.events }]));
  }

  /** Gathers the events of `debounceMs` into one call of `onChange`. */
  #changed(environment: string, verdict: Exclude<EventVerdict, "quiet">, object: string): void {
    if (this.#pending.has(environment)) return;
    this.#pending.add(environment);
    void pause(this.#options.sleep, this.#options.debounceMs, this.#stopping.signal).then(() => {
      this.#pending.delete(environment);
      if (!this.#stopping.signal.aborted) this.#options.onChange(environment, { verdict, object });
    });
  }
}

/**
 * Sleeps `ms` on `sleep`, ending early when `signal` aborts; the listener goes with the sleep, so
 * the many waits of a long-lived watcher leave nothing on its signal.
 */
function pause(sleep: (ms: number) => Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    void sleep(ms).then(done, done);
  });
}

/** One watch: a kind in a namespace, listed, then watched from the list's resourceVersion on. */
class KindWatch {
  readonly environment: string;
  /** The inventoried names of this kind in this namespace; events on other objects are not looked at. */
  names: Set<string>;
  readonly #target: WatchTarget;
  readonly #options: Required<DriftWatcherOptions>;
  readonly #report: (verdict: Exclude<EventVerdict, "quiet">, object: string) => void;
  /** The tokens of the other hands on each inventoried object seen (see `foreignHands`). */
  readonly #seen = new Map<string, string>();
  readonly #stopping = new AbortController();
  #request: AbortController | undefined;
  #resourceVersion: string | undefined;
  /** Whether the API server refused this watch (no watch verb), which is logged once. */
  #forbidden = false;
  /** Set when `reconnect` dropped the connection: the next step is a failure's, then this. */
  #dropped: "resume" | "relist" | undefined;
  #run: Promise<void> = Promise.resolve();
  /** Lists done, and events on inventoried objects handled. */
  lists = 0;
  events = 0;

  constructor(
    environment: string,
    target: WatchTarget,
    names: Set<string>,
    options: Required<DriftWatcherOptions>,
    report: (verdict: Exclude<EventVerdict, "quiet">, object: string) => void,
  ) {
    this.environment = environment;
    this.#target = target;
    this.names = names;
    this.#options = options;
    this.#report = report;
  }

  start(): void {
    this.#run = this.#loop();
  }

  reconnect(relist: boolean): void {
    this.#dropped = relist ? "relist" : "resume";
    this.#request?.abort();
  }

  /** Cares about `names` from now on, forgetting what it saw of the others. */
  follow(names: Set<string>): void {
    this.names = names;
    for (const name of [...this.#seen.keys()]) if (!names.has(name)) this.#seen.delete(name);
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#request?.abort();
    await this.#run;
  }

  get #subject(): string {
    const { kind, apiVersion, namespace } = this.#target;
    return `${kind} (${apiVersion})${namespace ? ` in ${namespace}` : ""}`;
  }

  /** Whether `stop` was called (a method: a watch request may end in a stop while it is awaited). */
  #isStopped(): boolean {
    return this.#stopping.signal.aborted;
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#isStopped()) {
      let ended: { errorCode?: number; failure?: unknown };
      try {
        if (this.#resourceVersion === undefined) await this.#list();
        ended = await this.#watch();
      } catch (error) {
        ended = { failure: error };
      }
      if (this.#isStopped()) return;
      const dropped = this.#dropped;
      this.#dropped = undefined;
      if (dropped === "relist") this.#resourceVersion = undefined;
      const next = dropped ? "backoff" : nextStep(ended);
      if (next === "relist") {
        this.#options.log("info", "drift watch expired: listing again", { environment: this.environment, watch: this.#subject });
        this.#resourceVersion = undefined;
        continue;
      }
      if (next === "resume") {
        failures = 0;
        continue;
      }
      failures += 1;
      const waitMs = Math.min(WATCH_BACKOFF_MAX_MS, WATCH_BACKOFF_MS * 2 ** (failures - 1));
      if (ended.failure instanceof KubeApiError && ended.failure.status === 403) {
        // Said once per watch: the poll still finds drift here, and the retries pick up a grant made later.
        if (!this.#forbidden)
          this.#options.log("error", "drift watch forbidden: drift here is found by the poll alone", {
            environment: this.environment,
            watch: this.#subject,
            error: errorMessage(ended.failure),
            fix: `grant the agent's ServiceAccount the watch verb on ${this.#target.kind} (see deploy/agent/rbac.yaml)`,
          });
        this.#forbidden = true;
        await pause(this.#options.sleep, WATCH_BACKOFF_MAX_MS, this.#stopping.signal);
        continue;
      }
      this.#options.log("warn", "drift watch failed: retrying", {
        environment: this.environment,
        watch: this.#subject,
        error: dropped
          ? "the connection was dropped"
          : ended.failure === undefined
            ? `watch error ${String(ended.errorCode)}`
            : errorMessage(ended.failure),
        waitMs,
      });
      await pause(this.#options.sleep, waitMs, this.#stopping.signal);
    }
  }

  /**
   * Lists the kind again: objects another hand wrote, or that went, since they were last seen are
   * reported. The first list reports objects other hands wrote at all, since they may have done
   * so before the watch began (between a deploy and its watch's start).
   */
  async #list(): Promise<void> {
    const present = new Set<string>();
    const resourceVersion = await this.#options.cluster.listMetadata(
      this.#target.apiVersion,
      this.#target.kind,
      this.#target.namespace,
      (metadata) => {
        const name = typeof metadata.name === "string" ? metadata.name : "";
        if (!this.names.has(name)) return;
        present.add(name);
        this.#observe("MODIFIED", name, metadata);
      },
    );
    if (resourceVersion === undefined)
      throw new KubeApiError(
        this.#subject,
        404,
        "NotFound",
        `the server does not serve ${this.#target.kind} in ${this.#target.apiVersion}`,
      );
    for (const name of [...this.#seen.keys()])
      if (!present.has(name)) {
        this.#seen.delete(name);
        this.#report("deleted", name);
      }
    this.#resourceVersion = resourceVersion;
    this.lists += 1;
  }

  /** One watch request, from the last resourceVersion; how it ended. */
  async #watch(): Promise<{ errorCode?: number }> {
    const request = new AbortController();
    this.#request = request;
    const signal = AbortSignal.any([request.signal, this.#stopping.signal]);
    let errorCode: number | undefined;
    await this.#options.cluster.watchMetadata(
      { ...this.#target, resourceVersion: this.#resourceVersion ?? "", timeoutSeconds: this.#options.timeoutSeconds },
      (event: WatchEvent) => {
        if (event.type === "ERROR") {
          errorCode = event.code;
          request.abort();
          return;
        }
        if (event.type === "BOOKMARK") {
          if (event.resourceVersion) this.#resourceVersion = event.resourceVersion;
          return;
        }
        const { metadata } = event;
        if (typeof metadata.resourceVersion === "string") this.#resourceVersion = metadata.resourceVersion;
        const name = typeof metadata.name === "string" ? metadata.name : "";
        if (!this.names.has(name)) return;
        this.events += 1;
        this.#observe(event.type, name, metadata);
      },
      signal,
    );
    return errorCode === undefined ? {} : { errorCode };
  }

  /** Records the hands on an inventoried object and reports another hand's write or its deletion. */
  #observe(type: "ADDED" | "MODIFIED" | "DELETED", name: string, metadata: ObjectMetadata): void {
    const hands = foreignHands(metadata, this.#options.cluster.fieldManager, this.#options.statusWrites);
    const verdict = eventVerdict(type, hands, this.#seen.get(name));
    if (type === "DELETED") this.#seen.delete(name);
    else this.#seen.set(name, hands);
    if (verdict !== "quiet") this.#report(verdict, name);
  }
}
