import { createHash, randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { InventoryStore } from "../../src/agent/inventory-store.ts";
import { Cluster } from "../../src/agent/kube/cluster.ts";
import { checkout } from "../helpers/checkouts.ts";
import { startStack, type Stack } from "../helpers/e2e-stack.ts";
import { pushPayload } from "../helpers/payloads.ts";

// SIGKILL the agent at ten points of a 300-object deploy, from the first applies to prune and the
// health wait; each time a new agent takes the job over, and the deploy converges: the right
// objects with the right content, pruned ones gone, the inventory complete, the check run green.

const OWNER = "sluice-kill";
const REPO = "fleet";
const target = { owner: OWNER, repo: REPO, repoId: 9300, installation: 43 };
const suffix = randomUUID().slice(0, 6);
const ns = `kill-${suffix}`;
const agentNamespace = `sluice-kill-${suffix}`;
const OBJECTS = 300;
const KILLS = 10;
let stack: Stack | undefined;
let cluster: Cluster;
let nextSha = 1;
const sha = (): string => createHash("sha1").update(`kill-${suffix}-${nextSha++}`).digest("hex");
const s = (): Stack => {
  if (!stack) throw new Error("the stack is not running");
  return stack;
};

const config = `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${ns}\n    prune: true\n`;
/** Version `v`: 300 ConfigMaps, ten of them new and ten of the previous version's gone (pruned). */
function files(v: number): Record<string, string> {
  const out: Record<string, string> = {
    ".github/sluice.yml": config,
    "manifests/namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
    // Health is waited for: a Deployment that has nothing to run is current once observed.
    "manifests/web.yaml": `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 0\n  selector:\n    matchLabels: { app: web }\n  template:\n    metadata:\n      labels: { app: web }\n      annotations: { version: "${v}" }\n    spec:\n      containers:\n        - name: web\n          image: registry.invalid/web:1\n`,
  };
  for (let i = v * 10; i < v * 10 + OBJECTS; i++)
    out[`manifests/cm-${i}.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  version: "${v}"\n`;
  return out;
}

async function push(v: number): Promise<string> {
  const id = sha();
  await s().github.addCommit(OWNER, REPO, id, await checkout(undefined, files(v)));
  s().github.setBranch(OWNER, REPO, "main", id);
  await s().deliver("push", pushPayload(target, id));
  return id;
}

const run = (commit: string) =>
  [...s().github.checkRuns.values()].find((r) => r.head_sha === commit && r.name === "sluice/deploy (production)");

/** The ConfigMaps in the namespace, by name, with their version. */
async function live(): Promise<Map<string, string>> {
  const list = await cluster.list("v1", "ConfigMap", ns).catch(() => []);
  const named = list.map((o) => ({
    name: String((o.metadata as { name?: string } | undefined)?.name),
    data: o.data as Record<string, string> | undefined,
  }));
  return new Map(named.filter((o) => o.name.startsWith("cm-")).map((o) => [o.name, String(o.data?.version)]));
}

/** Where a deploy of version `v` was when the agent died, read from the cluster itself. */
async function phaseOf(v: number): Promise<string> {
  const objects = await live();
  const applied = [...objects.values()].filter((version) => version === String(v)).length;
  const stale = [...objects.keys()].filter((name) => Number(name.slice(3)) < v * 10).length;
  if (applied < OBJECTS) return `apply (${applied} of ${OBJECTS} applied)`;
  if (stale > 0) return `prune (${stale} left to prune)`;
  return "health wait or report";
}

beforeAll(async () => {
  stack = await startStack({
    ...target,
    database: 11,
    environments: ["production"],
    namespaces: "kill-*",
    agentNamespace,
    cleanup: [ns],
    agent: { SLUICE_AGENT_LOCK_SECONDS: "3", SLUICE_DRIFT_INTERVAL_SECONDS: "0", SLUICE_HEALTH_TIMEOUT_SECONDS: "60" },
  });
  cluster = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 100 });
});

afterAll(async () => {
  cluster.close();
  await stack?.stop();
});

afterEach((context) => {
  expect(stack?.github.violations).toEqual([]);
  if (context.task.result?.state === "fail") console.error(stack?.output());
});

describe("the agent killed mid-deploy", { timeout: 900_000 }, () => {
  it(`converges after SIGKILL at ${KILLS} points of a ${OBJECTS}-object deploy`, async () => {
    // A deploy nobody kills, to know how long the agent's part takes.
    const first = await push(0);
    await expect.poll(() => run(first)?.conclusion, { timeout: 120_000, interval: 100 }).toBe("success");
    const agentMs = Number(/"message":"deploy succeeded"[^\n]*"ms":(\d+)/.exec(s().agent?.output() ?? "")?.[1] ?? 0);
    expect(agentMs).toBeGreaterThan(0);
    const results: string[] = [];
    for (let v = 1; v <= KILLS; v++) {
      const commit = await push(v);
      // Once the agent has started on it (its first object of this version is in the cluster), at
      // points spread over the time a deploy takes: applies, prune, health wait, the last report.
      await expect
        .poll(async () => [...(await live()).values()].some((version) => version === String(v)), { timeout: 60_000, interval: 20 })
        .toBe(true);
      const delay = Math.round((agentMs * (v - 1)) / KILLS);
      await new Promise((resolve) => setTimeout(resolve, delay));
      const agent = s().agent;
      if (!agent) throw new Error("no agent");
      agent.child.kill("SIGKILL");
      await expect.poll(() => agent.child.signalCode, { timeout: 10_000 }).toBe("SIGKILL");
      const phase = await phaseOf(v);
      const restarted = performance.now();
      await s().startAgent();
      await expect.poll(() => run(commit)?.conclusion, { timeout: 120_000, interval: 200 }).toBe("success");
      const objects = await live();
      const expected = new Map(Array.from({ length: OBJECTS }, (_, k) => [`cm-${v * 10 + k}`, String(v)]));
      expect(objects).toEqual(expected);
      const inventory = await new InventoryStore(cluster, agentNamespace).read(target.repoId, "production");
      expect(inventory?.revisions[0]?.jobId).toBe(`merge-${target.repoId}-production-${commit}`);
      expect(inventory?.objects.length).toBe(OBJECTS + 2);
      results.push(
        `kill ${v} ${delay} ms into the deploy, during ${phase}: converged ${Math.round((performance.now() - restarted) / 1000)} s after the restart`,
      );
    }
    for (const line of results) console.log(`agent killed: ${line}`);
    console.log(`agent killed: ${KILLS}/${KILLS} converged (an unkilled deploy took the agent ${agentMs} ms)`);
    // Nothing is left failed or stuck on the queue.
    const failed = await s().redis.zcard("{sluice-production}:deploy-production:failed");
    expect(failed).toBe(0);
  });
});
