// Benchmark: a drift check of 1,001 objects (Sluice's findDrift: read the live object, server-side
// dry-run the applied one, compare) against `kubectl diff --server-side -f` of the same objects,
// on the same kube-apiserver, alternating runs. Both run after the objects were applied by the
// same field manager, with one object changed by hand, so both have one difference to find.
// Usage: npm run bench:drift [-- --runs 3 --apps 250]
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { stringify } from "yaml";
import { applyAllStaged } from "../src/agent/apply.ts";
import { findDrift } from "../src/agent/drift.ts";
import { InventoryStore } from "../src/agent/inventory-store.ts";
import { previewLive, type LivePreviewDeps } from "../src/agent/live-preview.ts";
import { objectsDigest, type LivePreviewRequest } from "../src/core/agent-protocol.ts";
import { canonicalJson } from "../src/core/normalize.ts";
import { parseRepositoryRules } from "../src/core/policy.ts";
import { Cluster } from "../src/agent/kube/cluster.ts";
import { withOwnership } from "../src/agent/ownership.ts";
import type { Planned } from "../src/agent/preflight.ts";
import { resourceKey, statedId } from "../src/core/identity.ts";
import { startTestEnv } from "../test/env/start.ts";
import { fluxBenchmarkObjects } from "./generate.ts";
import { median } from "./measure.ts";

const run = promisify(execFile);
const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, apps: { type: "string", default: "250" } } });
const runs = Number(values.runs);
const apps = Number(values.apps);
const CONCURRENCY = 16;

const env = await startTestEnv({
  env: { ...process.env, KUBECONFIG: "", REDIS_URL: "redis://127.0.0.1:1" },
  controllers: false,
  log: () => undefined,
});
const work = await mkdtemp(join(tmpdir(), "sluice-bench-drift-"));
try {
  const namespace = "bench-drift";
  const set = fluxBenchmarkObjects(namespace, apps);
  // Applied as a deploy applies them: with Sluice's ownership labels.
  const planned = set.map((object): Planned => ({
    id: statedId(object),
    object: withOwnership(object, { id: 1, owner: "bench", name: "bench" }, "bench"),
  }));
  const cluster = Cluster.connect(env.kubeconfigPath, { fieldManager: "sluice", qps: 500 });
  await applyAllStaged(cluster, planned, {
    concurrency: CONCURRENCY,
    clock: { now: Date.now, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    owner: { repositoryId: 1, environment: "bench" },
    allowAdoption: true,
    adoptUnmanaged: true,
    allowPodSecurityLabels: false,
    progress: () => Promise.resolve(),
  });
  // One change by hand, so there is drift to find.
  await run("kubectl", ["--kubeconfig", env.kubeconfigPath, "-n", namespace, "label", "service", "app-0", "edited=by-hand"]);
  await run("kubectl", [
    "--kubeconfig",
    env.kubeconfigPath,
    "-n",
    namespace,
    "patch",
    "deployment",
    "app-0",
    "-p",
    '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"ghcr.io/example/app:hotfix"}]}}}}',
  ]);
  const file = join(work, "objects.yaml");
  await writeFile(file, set.map((o) => stringify(o)).join("---\n"));
  const samples = { sluice: [] as number[], kubectl: [] as number[] };
  let found = 0;
  const sluice = async (): Promise<number> => {
    const started = performance.now();
    found = (await findDrift(cluster, planned, [], CONCURRENCY)).length;
    return performance.now() - started;
  };
  const kubectl = async (): Promise<number> => {
    const started = performance.now();
    // Exit status 1 means "differences found", which is expected here.
    await run(
      "kubectl",
      ["--kubeconfig", env.kubeconfigPath, "diff", "--server-side", "--force-conflicts", "--field-manager", "sluice", "-f", file],
      { maxBuffer: 64 * 1024 * 1024 },
    ).catch((error: unknown) => {
      if ((error as { code?: number }).code !== 1) throw error;
    });
    return performance.now() - started;
  };
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (["sluice", "kubectl"] as const) : (["kubectl", "sluice"] as const);
    for (const tool of order) samples[tool].push(tool === "sluice" ? await sluice() : await kubectl());
  }
  // A live preview of a head that changes one object, against the same kubectl diff.
  const head = set.map((o) =>
    o.kind === "Deployment" && (o.metadata as { name: string }).name === "app-1"
      ? { ...o, spec: { ...(o.spec as object), replicas: 2 } }
      : o,
  );
  const baseline = new Map(set.map((o) => [resourceKey(statedId(o)), canonicalJson(o)]));
  const request: LivePreviewRequest = {
    version: 1,
    id: "bench",
    repository: { owner: "bench", name: "bench", id: 1 },
    installationId: 1,
    environment: "bench",
    pullRequest: 1,
    headSha: "b".repeat(40),
    seq: 1,
    settings: { namespace, prune: true },
    signedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 600_000).toISOString(),
    digest: objectsDigest(head),
    objects: { inline: head },
  };
  const liveDeps: LivePreviewDeps = {
    redis: undefined as unknown as LivePreviewDeps["redis"],
    cluster,
    inventories: new InventoryStore(cluster, "default"),
    appKey: undefined as unknown as LivePreviewDeps["appKey"],
    policy: {
      rules: parseRepositoryRules(`bench/*=${namespace}`, []),
      clusterKinds: ["Namespace"],
      allowAdoption: true,
      adoptUnmanaged: true,
      allowPodSecurityLabels: false,
      environments: ["bench"],
      maxJobAgeMs: 600_000,
    },
    concurrency: CONCURRENCY,
    now: Date.now,
    baseline: () => Promise.resolve(baseline),
  };
  const headFile = join(work, "head.yaml");
  await writeFile(headFile, head.map((o) => stringify(o)).join("---\n"));
  const previewSamples = { sluice: [] as number[], kubectl: [] as number[] };
  let changed = 0;
  for (let i = 0; i < runs; i++) {
    let started = performance.now();
    changed = (await previewLive(liveDeps, request)).changes.length;
    previewSamples.sluice.push(performance.now() - started);
    started = performance.now();
    await run(
      "kubectl",
      ["--kubeconfig", env.kubeconfigPath, "diff", "--server-side", "--force-conflicts", "--field-manager", "sluice", "-f", headFile],
      {
        maxBuffer: 64 * 1024 * 1024,
      },
    ).catch((error: unknown) => {
      if ((error as { code?: number }).code !== 1) throw error;
    });
    previewSamples.kubectl.push(performance.now() - started);
  }
  cluster.close();
  const p = median(previewSamples.sluice);
  const pk = median(previewSamples.kubectl);
  console.log(
    `\nlive preview of a head that changes one object (${changed} live changes found): ${p.toFixed(0)} ms; kubectl diff --server-side of the head: ${pk.toFixed(0)} ms (${(p / pk).toFixed(2)}×; goal: adds ≤ 3 s)`,
  );
  const s = median(samples.sluice);
  const k = median(samples.kubectl);
  console.log(
    `\n${set.length} objects (${apps} apps in the flux-benchmark shape), one changed by hand; ${runs} alternating runs, medians:`,
  );
  console.log(`sluice drift check (${found} drifted, concurrency ${CONCURRENCY}, 500 QPS): ${s.toFixed(0)} ms`);
  console.log(`kubectl diff --server-side -f:                       ${k.toFixed(0)} ms`);
  console.log(`sluice / kubectl: ${(s / k).toFixed(2)} (goal ≤ 0.2)`);
} finally {
  await env.stop();
  await rm(work, { recursive: true, force: true });
}
