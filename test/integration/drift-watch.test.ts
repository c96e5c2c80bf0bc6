import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { DriftWatcher, watchKey } from "../../src/agent/drift-watch.ts";
import { Cluster } from "../../src/agent/kube/cluster.ts";
import type { ResourceId } from "../../src/core/identity.ts";
import { ManualClock } from "../helpers/manual-clock.ts";

// The drift watches against the real kube-apiserver (issue 28): what the agent applies as its own
// field manager is quiet, a hand edit (kubectl, another manager) or a deletion is one debounced
// change, a dropped connection resumes from the last resourceVersion, and the watches follow the
// inventory. The debounce and back-off wait on a manual clock, so nothing here depends on timing.

const run = promisify(execFile);
const suffix = randomUUID().slice(0, 8);
const namespace = `drift-watch-${suffix}`;
const other = `drift-watch-other-${suffix}`;
const environment = `drift-watch-${suffix}`;
let cluster: Cluster;

/** kubectl against the test apiserver: how people edit by hand. */
async function kubectl(...args: string[]): Promise<void> {
  await run("kubectl", ["--kubeconfig", inject("kubeconfigPath"), ...args]);
}

function configMap(name: string, ns: string, version: string) {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data: { version } };
}

function id(kind: string, name: string, ns: string): ResourceId {
  return { group: "", version: "v1", kind, namespace: ns, name };
}

/** A watcher on a manual clock that records the changes it reports. */
function watcher(): { watcher: DriftWatcher; clock: ManualClock; changes: { environment: string; verdict: string; object: string }[] } {
  const clock = new ManualClock();
  const changes: { environment: string; verdict: string; object: string }[] = [];
  const w = new DriftWatcher({
    cluster,
    sleep: clock.sleep,
    log: () => undefined,
    onChange: (env, reason) => changes.push({ environment: env, ...reason }),
  });
  running.push(w);
  return { watcher: w, clock, changes };
}
const running: DriftWatcher[] = [];

/** What the watch of ConfigMaps in `ns` handled so far. */
function handled(w: DriftWatcher, ns: string): { lists: number; events: number } {
  return w.handled.get(watchKey(environment, { apiVersion: "v1", kind: "ConfigMap", namespace: ns })) ?? { lists: 0, events: 0 };
}

/** Waits until the ConfigMap watch in `ns` handled more than `events` events (or lists). */
async function eventsAfter(w: DriftWatcher, ns: string, events: number, what: "events" | "lists" = "events"): Promise<void> {
  await expect.poll(() => handled(w, ns)[what], { timeout: 30_000, interval: 20 }).toBeGreaterThan(events);
}

beforeAll(async () => {
  cluster = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice", qps: 100 });
  for (const name of [namespace, other]) await cluster.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop()));
});

afterAll(async () => {
  for (const name of [namespace, other]) await cluster.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
  cluster.close();
});

describe("drift watches", () => {
  it("report a hand edit once per burst, and stay quiet through the agent's own applies (a forced one over the edit too)", async () => {
    await cluster.apply(configMap("web", namespace, "1"));
    await cluster.apply(configMap("api", namespace, "1"));
    const { watcher: w, clock, changes } = watcher();
    w.follow(environment, [id("ConfigMap", "web", namespace), id("ConfigMap", "api", namespace)]);
    await eventsAfter(w, namespace, 0, "lists");
    expect(changes).toEqual([]);

    // The agent's own apply: an event, and nothing to check.
    let seen = handled(w, namespace).events;
    await cluster.apply(configMap("web", namespace, "2"));
    await eventsAfter(w, namespace, seen);
    expect(clock.wakeUps).toEqual([]);

    // A burst of hand edits on two objects: one debounce, then one change.
    seen = handled(w, namespace).events;
    await kubectl("-n", namespace, "patch", "configmap", "web", "-p", '{"data":{"version":"hand"}}');
    await kubectl("-n", namespace, "label", "configmap", "api", "edited=by-hand");
    await eventsAfter(w, namespace, seen + 1);
    expect(clock.wakeUps).toEqual([1_000]);
    expect(changes).toEqual([]);
    clock.advance(1_000);
    await expect.poll(() => changes.length).toBe(1);
    expect(changes[0]).toEqual({ environment, verdict: "edited", object: "web" });

    // The agent applying its version back over the hand edit (a deploy, a heal): quiet again.
    seen = handled(w, namespace).events;
    await cluster.apply(configMap("web", namespace, "3"));
    await eventsAfter(w, namespace, seen);
    expect(clock.wakeUps).toEqual([]);
    expect(changes).toHaveLength(1);
  });

  it("report an inventoried object deleted, and not one that is not inventoried", async () => {
    await cluster.apply(configMap("gone", namespace, "1"));
    await cluster.apply(configMap("stray", namespace, "1"));
    const { watcher: w, clock, changes } = watcher();
    w.follow(environment, [id("ConfigMap", "gone", namespace)]);
    await eventsAfter(w, namespace, 0, "lists");

    // One stream, in order: once the second deletion is handled, the first was.
    const seen = handled(w, namespace).events;
    await kubectl("-n", namespace, "delete", "configmap", "stray");
    await kubectl("-n", namespace, "delete", "configmap", "gone");
    await eventsAfter(w, namespace, seen);
    expect(handled(w, namespace).events).toBe(seen + 1);
    expect(clock.wakeUps).toEqual([1_000]);
    clock.advance(1_000);
    await expect.poll(() => changes).toEqual([{ environment, verdict: "deleted", object: "gone" }]);
  });

  it("resume from the last resourceVersion after the connection drops, missing no edit made meanwhile", async () => {
    await cluster.apply(configMap("resumed", namespace, "1"));
    await cluster.apply(configMap("resumed-untouched", namespace, "1"));
    const { watcher: w, clock, changes } = watcher();
    w.follow(environment, [id("ConfigMap", "resumed", namespace), id("ConfigMap", "resumed-untouched", namespace)]);
    await eventsAfter(w, namespace, 0, "lists");

    const before = handled(w, namespace).events;
    w.reconnect();
    // The watch waits out its back-off on the clock; the edit lands while it is disconnected.
    await expect.poll(() => clock.wakeUps, { timeout: 30_000, interval: 20 }).toEqual([1_000]);
    await kubectl("-n", namespace, "patch", "configmap", "resumed", "-p", '{"data":{"version":"hand"}}');
    clock.advance(1_000);

    await expect.poll(() => clock.wakeUps, { timeout: 30_000, interval: 20 }).toEqual([2_000]);
    clock.advance(1_000);
    await expect.poll(() => changes).toEqual([{ environment, verdict: "edited", object: "resumed" }]);
    // Resumed where it was, neither listed again nor sent the objects afresh (a watch from no
    // resourceVersion starts with an ADDED for each): the one edit.
    expect(handled(w, namespace).lists).toBe(1);
    expect(handled(w, namespace).events).toBe(before + 1);
  });

  it("list again when the resourceVersion is given up (as after 410 Gone), reporting what changed and went meanwhile", async () => {
    await cluster.apply(configMap("relisted", namespace, "1"));
    await cluster.apply(configMap("relisted-gone", namespace, "1"));
    const { watcher: w, clock, changes } = watcher();
    w.follow(environment, [id("ConfigMap", "relisted", namespace), id("ConfigMap", "relisted-gone", namespace)]);
    await eventsAfter(w, namespace, 0, "lists");

    w.reconnect({ relist: true });
    await expect.poll(() => clock.wakeUps, { timeout: 30_000, interval: 20 }).toEqual([1_000]);
    await kubectl("-n", namespace, "delete", "configmap", "relisted-gone");
    clock.advance(1_000);

    await eventsAfter(w, namespace, 1, "lists");
    await expect.poll(() => clock.wakeUps, { timeout: 30_000, interval: 20 }).toEqual([2_000]);
    clock.advance(1_000);
    await expect.poll(() => changes).toEqual([{ environment, verdict: "deleted", object: "relisted-gone" }]);
  });

  it("follow the inventory: start the watches new kinds and namespaces need, stop those gone", async () => {
    await cluster.apply(configMap("first", namespace, "1"));
    await cluster.apply(configMap("second", other, "1"));
    await cluster.apply({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: `drift-watch-${suffix}` },
      rules: [],
    });
    const clusterRole: ResourceId = {
      group: "rbac.authorization.k8s.io",
      version: "v1",
      kind: "ClusterRole",
      namespace: "",
      name: `drift-watch-${suffix}`,
    };
    const { watcher: w, clock, changes } = watcher();
    w.follow(environment, [id("ConfigMap", "first", namespace)]);
    expect(w.watches).toEqual([watchKey(environment, { apiVersion: "v1", kind: "ConfigMap", namespace })]);

    w.follow(environment, [id("ConfigMap", "first", namespace), id("ConfigMap", "second", other), clusterRole]);
    expect(w.watches).toEqual(
      [
        watchKey(environment, { apiVersion: "v1", kind: "ConfigMap", namespace }),
        watchKey(environment, { apiVersion: "v1", kind: "ConfigMap", namespace: other }),
        watchKey(environment, { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", namespace: "" }),
      ].sort(),
    );
    await eventsAfter(w, other, 0, "lists");
    const roleWatch = watchKey(environment, { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", namespace: "" });
    await expect.poll(() => w.handled.get(roleWatch)?.lists ?? 0, { timeout: 30_000, interval: 20 }).toBe(1);

    // A cluster-scoped kind is watched cluster-wide: a hand edit of the ClusterRole is seen.
    await kubectl("label", "clusterrole", `drift-watch-${suffix}`, "edited=by-hand");
    await expect.poll(() => clock.wakeUps, { timeout: 30_000, interval: 20 }).toEqual([1_000]);
    clock.advance(1_000);
    await expect.poll(() => changes).toEqual([{ environment, verdict: "edited", object: `drift-watch-${suffix}` }]);

    w.follow(environment, [id("ConfigMap", "second", other)]);
    expect(w.watches).toEqual([watchKey(environment, { apiVersion: "v1", kind: "ConfigMap", namespace: other })]);
    w.follow(environment, []);
    expect(w.watches).toEqual([]);
    await cluster.delete({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: `drift-watch-${suffix}` } });
  });
});
