import { applyOrder, stageOf } from "../core/apply-order.ts";
import { computeHealth, type HealthStatus } from "../core/health.ts";
import { displayName, splitApiVersion, type ResourceId } from "../core/identity.ts";
import { FORCE_ANNOTATION, labelValue, ownerOf, ownershipLabels, REPOSITORY_ANNOTATION } from "../core/inventory.ts";
import { isRecord, type KubeObject } from "../core/manifest.ts";
import { canonicalJson } from "../core/normalize.ts";
import type { ObjectResult } from "../core/agent-protocol.ts";
import { PermanentDeployError } from "./errors.ts";
import { KubeApiError, subjectOf, type Cluster } from "./kube/cluster.ts";

/** One object to apply, with its identity. */
export interface Planned {
  id: ResourceId;
  object: KubeObject;
}

/** Identity of an object as sent by the app (namespace already resolved, empty when cluster-scoped). */
export function idOf(object: KubeObject): ResourceId {
  const { group, version } = splitApiVersion(String(object.apiVersion));
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  return { group, version, kind: String(object.kind), namespace: typeof metadata.namespace === "string" ? metadata.namespace : "", name: String(metadata.name) };
}

/** Adds Sluice's ownership labels (by repository id) and the repository's name as an annotation, to a copy. */
export function withOwnership(object: KubeObject, repository: { id: number; owner: string; name: string }, environment: string): KubeObject {
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const labels = isRecord(metadata.labels) ? metadata.labels : {};
  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  return {
    ...object,
    metadata: { ...metadata, labels: { ...labels, ...ownershipLabels(repository.id, environment) }, annotations: { ...annotations, [REPOSITORY_ANNOTATION]: `${repository.owner}/${repository.name}` } },
  };
}

/** Why applying over a live object would take it from another owner, or undefined when it would not. */
function ownedElsewhere(live: KubeObject | undefined, owner: ApplyOptions["owner"]): string | undefined {
  const metadata = live && isRecord(live.metadata) ? live.metadata : {};
  const found = ownerOf(isRecord(metadata.labels) ? metadata.labels : {});
  if (!found || (found.repositoryId === String(owner.repositoryId) && found.environment === labelValue(owner.environment))) return undefined;
  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  const name = typeof annotations[REPOSITORY_ANNOTATION] === "string" ? `${annotations[REPOSITORY_ANNOTATION]} (id ${found.repositoryId})` : `repository id ${found.repositoryId}`;
  return `owned by ${name}, environment ${found.environment}; the agent does not take objects over unless SLUICE_AGENT_ALLOW_ADOPTION is true`;
}

function annotation(object: KubeObject | undefined, key: string): string | undefined {
  const metadata = object && isRecord(object.metadata) ? object.metadata : {};
  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  return typeof annotations[key] === "string" ? annotations[key] : undefined;
}

/** What decides whether a write would change anything: the object without server bookkeeping, and who owns which fields. */
function comparable(object: KubeObject): string {
  const metadata = isRecord(object.metadata) ? { ...object.metadata } : {};
  const managed = Array.isArray(metadata.managedFields) ? (metadata.managedFields as unknown[]).filter(isRecord).map((m) => ({ manager: m.manager, operation: m.operation, fieldsV1: m.fieldsV1, subresource: m.subresource })) : [];
  delete metadata.managedFields;
  delete metadata.resourceVersion;
  return canonicalJson({ ...object, metadata, managedFields: managed });
}

/** Runs `work` over `items` with at most `limit` at once, in order of start. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Options of one apply. */
export interface ApplyOptions {
  concurrency: number;
  /** Called as objects are written: n of N. */
  progress: (applied: number, total: number, note: string) => Promise<void>;
  /** The time, for durations. */
  now: () => number;
  /** Who applies: objects another repository or environment owns are refused unless adoption is allowed. */
  owner: { repositoryId: number; environment: string };
  allowAdoption: boolean;
}

interface Preflight {
  planned: Planned;
  verdict: "create" | "configure" | "unchanged" | "recreate" | "deferred";
}

/**
 * Applies a set of objects the careful way: server-side dry-run of everything first (nothing is
 * written if any object would fail), then CRDs, Namespaces and classes, waited for, then the rest
 * in a stable kind order with webhooks last, writing only what the dry-run says would change.
 */
export class Applier {
  readonly #cluster: Cluster;
  /** Live objects listed for the preflight, by key; undefined means read one by one. */
  #live: Map<string, KubeObject> | undefined;

  constructor(cluster: Cluster) {
    this.#cluster = cluster;
  }

  async #listLive(objects: readonly Planned[], concurrency: number): Promise<Map<string, KubeObject>> {
    const groups = new Map<string, { apiVersion: string; kind: string; namespace: string }>();
    for (const { id, object } of objects) groups.set(`${String(object.apiVersion)}|${id.kind}|${id.namespace}`, { apiVersion: String(object.apiVersion), kind: id.kind, namespace: id.namespace });
    const lists = await mapBounded([...groups.values()], concurrency, (g) => this.#cluster.list(g.apiVersion, g.kind, g.namespace));
    const live = new Map<string, KubeObject>();
    for (const item of lists.flat()) live.set(key(idOf(item)), item);
    return live;
  }

  /**
   * What cannot be dry-run before stage one: objects of kinds whose CRD this set brings and the
   * server does not serve yet, and objects in namespaces this set creates. Decided once per kind
   * and namespace, from the listing and discovery.
   */
  async #waitsForDefinitions(ordered: readonly Planned[], live: ReadonlyMap<string, KubeObject>): Promise<(id: ResourceId) => boolean> {
    const newNamespaces = new Set(ordered.filter((p) => p.id.kind === "Namespace" && !live.has(key(p.id))).map((p) => p.id.name));
    const definedHere = new Set(ordered.filter((p) => p.id.kind === "CustomResourceDefinition").map((p) => {
      const spec = isRecord(p.object.spec) ? p.object.spec : {};
      const names = isRecord(spec.names) ? spec.names : {};
      return `${String(spec.group)}/${String(names.kind)}`;
    }));
    const unserved = new Set<string>();
    const checked = new Set<string>();
    for (const { id, object } of ordered) {
      const kind = `${id.group}/${id.kind}`;
      if (!definedHere.has(kind) || checked.has(kind)) continue;
      checked.add(kind);
      if ((await this.#cluster.namespaced(String(object.apiVersion), id.kind)) === undefined) unserved.add(kind);
    }
    return (id) => unserved.has(`${id.group}/${id.kind}`) || newNamespaces.has(id.namespace);
  }

  /** Applies `objects`; returns one result per object, in the order given. */
  async apply(objects: readonly Planned[], options: ApplyOptions): Promise<ObjectResult[]> {
    const ordered = applyOrder(objects);

    // 1. Preflight: dry-run everything that can be dry-run before anything is written. The live
    // objects are listed once per kind and namespace rather than read one by one.
    const started = options.now();
    this.#live = await this.#listLive(ordered, options.concurrency);
    const deferred = await this.#waitsForDefinitions(ordered, this.#live);
    const preflight = await mapBounded(ordered, options.concurrency, (planned) => this.#preflight(planned, deferred, options));
    const failures = preflight.filter((p): p is Preflight & { error: KubeApiError } => "error" in p);
    if (failures.length > 0) {
      throw new PermanentDeployError(
        `server-side dry-run failed for ${failures.length} of ${ordered.length} objects; nothing was written:\n${failures.map((f) => `- ${f.error.message}`).join("\n")}`,
        preflight.map((p) => result(p.planned.id, "error" in p ? "failed" : "skipped", "unknown", options.now() - started, "error" in p ? p.error.message : "not applied: preflight failed")),
      );
    }
    const results = new Map<string, ObjectResult>();
    let applied = 0;
    const total = ordered.length;
    const write = async (item: Preflight): Promise<void> => {
      const begin = options.now();
      const verdict = item.verdict;
      if (verdict === "recreate") {
        await this.#cluster.delete(item.planned.object);
        await this.#waitGone(item.planned.object);
      }
      if (verdict !== "unchanged") await this.#cluster.apply(item.planned.object);
      applied += 1;
      results.set(key(item.planned.id), result(item.planned.id, verdict === "create" || verdict === "recreate" ? "created" : verdict === "configure" ? "configured" : "unchanged", "unknown", options.now() - begin));
    };

    // 2. Definitions first, then wait for them to be usable.
    const definitions = (preflight as Preflight[]).filter((p) => stageOf(p.planned.id) === "definitions");
    await mapBounded(definitions, options.concurrency, write);
    if (definitions.length > 0) {
      await options.progress(applied, total, `waiting for ${definitions.length} definitions to be established`);
      await this.#waitEstablished(definitions.map((d) => d.planned.object));
    }
    // 3. Objects deferred for new definitions are dry-run now, before any of them is written.
    const rest = (preflight as Preflight[]).filter((p) => stageOf(p.planned.id) === "resources");
    const waiting = rest.filter((p) => p.verdict === "deferred");
    this.#live = undefined;
    const late = await mapBounded(waiting, options.concurrency, (p) => this.#preflight(p.planned, () => false, options));
    const lateFailures = late.filter((p): p is Preflight & { error: KubeApiError } => "error" in p);
    if (lateFailures.length > 0) {
      throw new PermanentDeployError(`server-side dry-run failed after the definitions were applied:\n${lateFailures.map((f) => `- ${f.error.message}`).join("\n")}`, [...results.values()]);
    }
    late.forEach((p, index) => {
      const item = waiting[index];
      if (item) item.verdict = p.verdict;
    });
    // 4. The rest, kind group by kind group, so what others need exists first.
    await options.progress(applied, total, "applying");
    let group: Preflight[] = [];
    const flush = async () => {
      await mapBounded(group, options.concurrency, write);
      group = [];
      await options.progress(applied, total, "applying");
    };
    for (const item of rest) {
      if (group.length > 0 && group[0]?.planned.id.kind !== item.planned.id.kind) await flush();
      group.push(item);
    }
    if (group.length > 0) await flush();
    return objects.map((p) => results.get(key(p.id)) ?? result(p.id, "skipped", "unknown", 0));
  }

  async #preflight(planned: Planned, deferred: (id: ResourceId) => boolean, options: ApplyOptions): Promise<Preflight | (Preflight & { error: KubeApiError })> {
    const { id, object } = planned;
    // Its definition or namespace is created by this very deploy: dry-run after stage one.
    if (deferred(id)) return { planned, verdict: "deferred" };
    const live = this.#live ? this.#live.get(key(id)) : await this.#cluster.get(object);
    const elsewhere = options.allowAdoption ? undefined : ownedElsewhere(live, options.owner);
    if (elsewhere) return { planned, verdict: "configure", error: new KubeApiError(displayName(id), 409, "OwnedElsewhere", elsewhere) };
    try {
      const dry = await this.#cluster.apply(object, { dryRun: true });
      const verdict = !live ? "create" : comparable(dry) === comparable(live) ? "unchanged" : "configure";
      return { planned, verdict };
    } catch (error) {
      if (!(error instanceof KubeApiError) || error.transient) throw error;
      if (error.immutable && annotation(object, FORCE_ANNOTATION) === "enabled") return { planned, verdict: "recreate" };
      const hint = error.immutable ? ` (annotate it with ${FORCE_ANNOTATION}: enabled to let Sluice recreate it)` : "";
      return { planned, verdict: "create", error: new KubeApiError(displayName(id), error.status, error.reason, `dry-run failed: ${error.message.replace(/^[^:]*: /, "")}${hint}`) };
    }
  }

  async #waitEstablished(objects: readonly KubeObject[], timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (const object of objects) {
      for (;;) {
        const live = await this.#cluster.get(object);
        const health = live ? computeHealth(live) : { status: "in-progress", message: "not found" } satisfies HealthStatus;
        if (health.status === "current") break;
        if (health.status === "failed") throw new PermanentDeployError(`${subjectOf(object)} failed: ${health.message}`);
        if (performance.now() > deadline) throw new Error(`${subjectOf(object)} was not ready within ${timeoutMs} ms: ${health.message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async #waitGone(object: KubeObject, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (await this.#cluster.get(object)) {
      if (performance.now() > deadline) throw new Error(`${subjectOf(object)} was not deleted within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function key(id: ResourceId): string {
  return `${id.group}/${id.kind}/${id.namespace}/${id.name}`;
}

/** A result record for one object. */
export function result(id: ResourceId, action: ObjectResult["action"], health: ObjectResult["health"], durationMs: number, message?: string): ObjectResult {
  return { ...id, action, health, durationMs, ...(message ? { message } : {}) };
}
