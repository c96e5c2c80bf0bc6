import { applyOrder, stageOf } from "../core/apply-order.ts";
import { mapBounded, type Clock } from "../core/clock.ts";
import { computeHealth, type HealthStatus } from "../core/health.ts";
import { objectName } from "../core/identity.ts";
import type { Claims } from "../core/inventory.ts";
import type { KubeObject } from "../core/manifest.ts";
import { ChangeSet, entry } from "./change-set.ts";
import { PermanentDeployError } from "./errors.ts";
import type { Cluster } from "./kube/cluster.ts";
import {
  listLive,
  preflightAll,
  waitsForDefinitions,
  type Claimed,
  type Planned,
  type Preflight,
  type PreflightOptions,
  type Verdict,
} from "./preflight.ts";

/** Options of one staged apply. */
export interface ApplyOptions extends PreflightOptions {
  /** Called as objects are written: n of N. */
  progress: (applied: number, total: number, note: string) => Promise<void>;
  clock: Clock;
  /** How long definitions may take to become usable, and recreated objects to go. */
  settleTimeoutMs?: number;
  /**
   * Told what the objects about to be written adopt and create, before the first of them is
   * written, so the record of what Sluice did not make is kept even if the deploy then fails.
   */
  beforeWrites?: (claims: Claims) => Promise<void>;
}

/** A preflight that passed: the object, what writing it does, and to whom it then belongs. */
interface Write {
  planned: Planned;
  verdict: Verdict;
  claim: Claimed;
}

/**
 * Applies a set of objects the careful way and returns what it did, per object in the order
 * given: a server-side dry-run of everything first (nothing is written if any object would
 * fail), then the definitions stage (CRDs, Namespaces, classes), waited for until usable, then
 * the objects that had to wait for them dry-run in turn, then the rest kind by kind, writing only
 * what the dry-run says would change.
 * @throws PermanentDeployError when a dry-run refuses an object, naming each one
 */
export async function applyAllStaged(cluster: Cluster, objects: readonly Planned[], options: ApplyOptions): Promise<ChangeSet> {
  const ordered = applyOrder(objects);
  const started = options.clock.now();
  const live = await listLive(cluster, ordered, options.concurrency);
  const deferred = await waitsForDefinitions(cluster, ordered, live);
  const preflight = await preflightAll(cluster, ordered, { ...options, live, deferred });
  const changes = new ChangeSet();
  const refused = refusals(preflight);
  if (refused.length > 0) {
    for (const item of preflight) {
      const error = "error" in item ? item.error.message : undefined;
      changes.add(
        entry(
          item.planned.id,
          error ? "failed" : "skipped",
          "unknown",
          options.clock.now() - started,
          error ?? "not applied: preflight failed",
        ),
      );
    }
    throw new PermanentDeployError(
      `server-side dry-run failed for ${refused.length} of ${ordered.length} objects; nothing was written:\n${refused.join("\n")}`,
      changes.entries(objects.map((o) => o.id)),
    );
  }
  const writes = preflight as Write[];
  await options.beforeWrites?.(claimsOf(writes));
  const counter = { applied: 0, total: ordered.length };

  const definitions = writes.filter((w) => stageOf(w.planned.id) === "definitions");
  await applyAll(cluster, definitions, changes, counter, options);
  if (definitions.length > 0) {
    await options.progress(counter.applied, counter.total, `waiting for ${definitions.length} definitions to be established`);
    await waitEstablished(
      cluster,
      definitions.map((d) => d.planned.object),
      options,
    );
  }

  const rest = writes.filter((w) => stageOf(w.planned.id) === "resources");
  const waited = rest.filter((w) => w.verdict === "deferred");
  const late = await preflightAll(
    cluster,
    waited.map((w) => w.planned),
    options,
  );
  const lateRefused = refusals(late);
  if (lateRefused.length > 0) {
    throw new PermanentDeployError(
      `server-side dry-run failed after the definitions were applied:\n${lateRefused.join("\n")}`,
      changes.entries(definitions.map((d) => d.planned.id)),
    );
  }
  const lateWrites = late as Write[];
  if (lateWrites.length > 0) await options.beforeWrites?.(claimsOf(lateWrites));
  const after = new Map(lateWrites.map((w) => [w.planned, w]));
  const resources = rest.map((w) => after.get(w.planned) ?? w);

  await options.progress(counter.applied, counter.total, "applying");
  for (const group of byKind(resources)) {
    await applyAll(cluster, group, changes, counter, options);
    await options.progress(counter.applied, counter.total, "applying");
  }
  return changes;
}

/** Writes what the preflight says would change, at most `concurrency` at once, adding each outcome to `changes`. */
async function applyAll(
  cluster: Cluster,
  writes: readonly Write[],
  changes: ChangeSet,
  counter: { applied: number },
  options: ApplyOptions,
): Promise<void> {
  await mapBounded(writes, options.concurrency, async ({ planned, verdict }) => {
    const begin = options.clock.now();
    if (verdict === "recreate") {
      await cluster.delete(planned.object);
      await waitGone(cluster, planned.object, options);
    }
    if (verdict !== "unchanged") await cluster.apply(planned.object);
    counter.applied += 1;
    const action = verdict === "create" || verdict === "recreate" ? "created" : verdict === "configure" ? "configured" : "unchanged";
    changes.add(entry(planned.id, action, "unknown", options.clock.now() - begin));
  });
}

/** Which of the writes adopt an object someone else made, and which create one. */
function claimsOf(writes: readonly Write[]): Claims {
  return {
    adopted: writes.filter((w) => w.claim === "adopt").map((w) => w.planned.id),
    created: writes.filter((w) => w.claim === "create").map((w) => w.planned.id),
  };
}

function refusals(preflight: readonly Preflight[]): string[] {
  return preflight.flatMap((p) => ("error" in p ? [`- ${p.error.message}`] : []));
}

/** Consecutive runs of one kind, so what others need exists first. */
function byKind(writes: readonly Write[]): Write[][] {
  const groups: Write[][] = [];
  for (const write of writes) {
    const last = groups.at(-1);
    if (last?.[0]?.planned.id.kind === write.planned.id.kind) last.push(write);
    else groups.push([write]);
  }
  return groups;
}

const POLL_MS = 100;

/** Waits until each definition is established (kstatus); a failed one ends the deploy for good. */
async function waitEstablished(cluster: Cluster, objects: readonly KubeObject[], options: ApplyOptions): Promise<void> {
  const timeoutMs = options.settleTimeoutMs ?? 60_000;
  const deadline = options.clock.now() + timeoutMs;
  for (const object of objects) {
    for (;;) {
      const live = await cluster.get(object);
      const health: HealthStatus = live ? computeHealth(live) : { status: "in-progress", message: "not found" };
      if (health.status === "current") break;
      if (health.status === "failed") throw new PermanentDeployError(`${objectName(object)} failed: ${health.message}`);
      if (options.clock.now() > deadline) throw new Error(`${objectName(object)} was not ready within ${timeoutMs} ms: ${health.message}`);
      await options.clock.sleep(POLL_MS);
    }
  }
}

/** Waits until a deleted object is gone, before it is created again. */
async function waitGone(cluster: Cluster, object: KubeObject, options: ApplyOptions): Promise<void> {
  const timeoutMs = options.settleTimeoutMs ?? 60_000;
  const deadline = options.clock.now() + timeoutMs;
  while (await cluster.get(object)) {
    if (options.clock.now() > deadline) throw new Error(`${objectName(object)} was not deleted within ${timeoutMs} ms`);
    await options.clock.sleep(POLL_MS);
  }
}
