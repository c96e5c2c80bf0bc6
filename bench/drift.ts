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
import { Cluster } from "../src/agent/kube/cluster.ts";
import type { Planned } from "../src/agent/preflight.ts";
import { statedId } from "../src/core/identity.ts";
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
  const planned = set.map((object): Planned => ({ id: statedId(object), object }));
  const cluster = Cluster.connect(env.kubeconfigPath, { fieldManager: "sluice", qps: 500 });
  await applyAllStaged(cluster, planned, {
    concurrency: CONCURRENCY,
    clock: { now: Date.now, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    owner: { repositoryId: 1, environment: "bench" },
    allowAdoption: true,
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
  cluster.close();
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
