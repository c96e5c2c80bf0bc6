import { applyOrder, stageOf } from "../core/apply-order.ts";
import { mapBounded, type Clock } from "../core/clock.ts";
import { computeHealth, type HealthStatus } from "../core/health.ts";
import { objectName } from "../core/identity.ts";
import type { Claims } from "../core/inventory.ts";
import type { KubeObject } from "../core/manifest.ts";
import type { ObjectResult } from "../core/agent-protocol.ts";
import { asError, ChangeSet, entry, type StageResult } from "./change-set.ts";
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
 * Applies a set of objects the careful way and returns what it did, per object written: a
 * server-side dry-run of everything first (nothing is written if any object would fail), then the
 * definitions stage (CRDs, Namespaces, classes), waited for until usable, then the objects that
 * had to wait for them dry-run in turn, then the rest kind by kind, writing only what the dry-run
 * says would change. Each stage returns its own entries, appended here; an error part-way comes
 * back with the entries of what was already written, never instead of them.
 * A dry-run refusal comes back as a PermanentDeployError naming each refused object.
 */
export async function applyAllStaged(cluster: Cluster, objects: readonly Planned[], options: ApplyOptions): Promise<StageResult> {
  const ordered = applyOrder(objects);
  const changes = new ChangeSet();
  const done = (error?: Error): StageResult => ({
    changes: changes.entries(ordered.map((o) => o.id)).filter((e) => changes.get(e)),
    ...(error ? { error } : {}),
  });
  const progress = (note: string): Promise<void> => options.progress(changes.size, ordered.length, note);
  try {
    const checked = await preflightStage(cluster, ordered, objects, options);
    if ("error" in checked) return checked;
    await options.beforeWrites?.(claimsOf(checked.writes));
    const definitions = checked.writes.filter((w) => stageOf(w.planned.id) === "definitions");
    const defined = await applyAll(cluster, definitions, options);
    changes.append(defined.changes);
    if (defined.error) return done(defined.error);
    if (definitions.length > 0) {
      // What the rest may need exists first: a definition that fails ends the deploy; the error comes back with the writes so far.
      await progress(`waiting for ${definitions.length} definitions to be established`);
      await waitEstablished(
        cluster,
        definitions.map((d) => d.planned.object),
        options,
      );
    }
    const rest = await lateWrites(cluster, checked.writes, changes, options);
    if ("error" in rest) return done(rest.error);
    await progress("applying");
    for (const group of byKind(rest.writes)) {
      const applied = await applyAll(cluster, group, options);
      changes.append(applied.changes);
      if (applied.error) return done(applied.error);
      await progress("applying");
    }
    return done();
  } catch (error) {
    return done(asError(error));
  }
}

/**
 * The first dry-run of everything. When any object is refused, the stage's entries say which
 * failed and that the rest were skipped, and its error names each refusal.
 */
async function preflightStage(
  cluster: Cluster,
  ordered: readonly Planned[],
  objects: readonly Planned[],
  options: ApplyOptions,
): Promise<{ writes: Write[] } | Required<StageResult>> {
  const started = options.clock.now();
  const live = await listLive(cluster, ordered, options.concurrency);
  const deferred = await waitsForDefinitions(cluster, ordered, live);
  const preflight = await preflightAll(cluster, ordered, { ...options, live, deferred });
  const refused = refusals(preflight);
  if (refused.length === 0) return { writes: preflight as Write[] };
  const changes = new ChangeSet();
  changes.append(
    preflight.map((item) => {
      const error = "error" in item ? item.error.message : undefined;
      return entry(
        item.planned.id,
        error ? "failed" : "skipped",
        "unknown",
        options.clock.now() - started,
        error ?? "not applied: preflight failed",
      );
    }),
  );
  const results = changes.entries(objects.map((o) => o.id));
  const message = `server-side dry-run failed for ${refused.length} of ${ordered.length} objects; nothing was written:\n${refused.join("\n")}`;
  return { changes: results, error: new PermanentDeployError(message, results) };
}

/**
 * The resources, with those that had to wait for the definitions dry-run now. A refusal then is
 * permanent and names the definitions already written.
 */
async function lateWrites(
  cluster: Cluster,
  writes: readonly Write[],
  written: ChangeSet,
  options: ApplyOptions,
): Promise<{ writes: Write[] } | { error: Error }> {
  const rest = writes.filter((w) => stageOf(w.planned.id) === "resources");
  const waited = rest.filter((w) => w.verdict === "deferred");
  const late = await preflightAll(
    cluster,
    waited.map((w) => w.planned),
    options,
  );
  const lateRefused = refusals(late);
  if (lateRefused.length > 0) {
    const definitions = written.entries(writes.filter((w) => stageOf(w.planned.id) === "definitions").map((w) => w.planned.id));
    return {
      error: new PermanentDeployError(
        `server-side dry-run failed after the definitions were applied:\n${lateRefused.join("\n")}`,
        definitions,
      ),
    };
  }
  const lateWrites = late as Write[];
  if (lateWrites.length > 0) await options.beforeWrites?.(claimsOf(lateWrites));
  const after = new Map(lateWrites.map((w) => [w.planned, w]));
  return { writes: rest.map((w) => after.get(w.planned) ?? w) };
}

/**
 * Writes what the preflight says would change, at most `concurrency` at once, and returns each
 * outcome. After an error no further write starts; those under way finish and are returned too.
 */
async function applyAll(cluster: Cluster, writes: readonly Write[], options: ApplyOptions): Promise<StageResult> {
  const changes: ObjectResult[] = [];
  let error: Error | undefined;
  await mapBounded(writes, options.concurrency, async (write) => {
    if (error) return;
    try {
      changes.push(await applyOne(cluster, write, options));
    } catch (failure) {
      error ??= asError(failure);
    }
  });
  return error ? { changes, error } : { changes };
}

/** Writes one object (deleting it first when it must be recreated) and says what that did. */
async function applyOne(cluster: Cluster, { planned, verdict }: Write, options: ApplyOptions): Promise<ObjectResult> {
  const begin = options.clock.now();
  if (verdict === "recreate") {
    await cluster.delete(planned.object);
    await waitGone(cluster, planned.object, options);
  }
  if (verdict !== "unchanged") await cluster.apply(planned.object);
  const action = verdict === "create" || verdict === "recreate" ? "created" : verdict === "configure" ? "configured" : "unchanged";
  return entry(planned.id, action, "unknown", options.clock.now() - begin);
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
