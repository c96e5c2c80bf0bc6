// Benchmark: Sluice's apply engine (preflight dry-run of everything, staged server-side apply)
// against `kubectl apply --server-side --force-conflicts -f` of the same 1,000 objects, on the
// same kube-apiserver, alternating runs. A first apply goes to a fresh namespace; the no-op
// re-applies the same objects. Usage: npm run bench:apply [-- --runs 3 --apps 250]
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { stringify } from "yaml";
import { applyAllStaged } from "../src/agent/apply.ts";
import type { Planned } from "../src/agent/preflight.ts";
import { statedId } from "../src/core/identity.ts";
import { Cluster } from "../src/agent/kube/cluster.ts";
import type { KubeObject } from "../src/core/manifest.ts";
import { startTestEnv } from "../test/env/start.ts";
import { fluxBenchmarkObjects } from "./generate.ts";
import { median } from "./measure.ts";

const run = promisify(execFile);
const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, apps: { type: "string", default: "250" } } });
const runs = Number(values.runs);
const apps = Number(values.apps);

// Redis is not used here; pointing REDIS_URL anywhere keeps the starter from starting one.
const env = await startTestEnv({
  env: { ...process.env, KUBECONFIG: "", REDIS_URL: "redis://127.0.0.1:1" },
  controllers: false,
  log: () => undefined,
});
const work = await mkdtemp(join(tmpdir(), "sluice-bench-apply-"));
try {
  const samples = { sluice: { first: [] as number[], noop: [] as number[] }, kubectl: { first: [] as number[], noop: [] as number[] } };
  const sluice = async (set: KubeObject[]): Promise<number> => {
    const cluster = Cluster.connect(env.kubeconfigPath, { fieldManager: "sluice", qps: 500 });
    const started = performance.now();
    await applyAllStaged(
      cluster,
      set.map((object): Planned => ({ id: statedId(object), object })),
      {
        concurrency: 16,
        clock: { now: Date.now, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
        owner: { repositoryId: 1, environment: "bench" },
        allowAdoption: true,
        adoptUnmanaged: true,
        allowPodSecurityLabels: false,
        progress: () => Promise.resolve(),
      },
    );
    const elapsed = performance.now() - started;
    cluster.close();
    return elapsed;
  };
  const kubectl = async (set: KubeObject[], file: string): Promise<number> => {
    await writeFile(file, set.map((o) => stringify(o)).join("---\n"));
    const started = performance.now();
    await run(
      "kubectl",
      ["--kubeconfig", env.kubeconfigPath, "apply", "--server-side", "--force-conflicts", "--field-manager", "kubectl-bench", "-f", file],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    return performance.now() - started;
  };
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (["sluice", "kubectl"] as const) : (["kubectl", "sluice"] as const);
    for (const tool of order) {
      const set = fluxBenchmarkObjects(`bench-${tool}-${i}`, apps);
      const file = join(work, `${tool}-${i}.yaml`);
      const first = tool === "sluice" ? await sluice(set) : await kubectl(set, file);
      const noop = tool === "sluice" ? await sluice(set) : await kubectl(set, file);
      samples[tool].first.push(first);
      samples[tool].noop.push(noop);
    }
  }
  const s = { first: median(samples.sluice.first), noop: median(samples.sluice.noop) };
  const k = { first: median(samples.kubectl.first), noop: median(samples.kubectl.noop) };
  console.log(
    `\n${apps * 4 + 1} objects (${apps} apps: Deployment with 0 replicas, ServiceAccount, Service, Ingress; and a Namespace), ${runs} runs, medians:`,
  );
  console.log(`                 sluice (ms)  kubectl (ms)  sluice / kubectl`);
  console.log(
    `first apply     ${s.first.toFixed(0).padStart(11)}  ${k.first.toFixed(0).padStart(12)}  ${(s.first / k.first).toFixed(2).padStart(16)}`,
  );
  console.log(
    `no-op re-apply  ${s.noop.toFixed(0).padStart(11)}  ${k.noop.toFixed(0).padStart(12)}  ${(s.noop / k.noop).toFixed(2).padStart(16)}`,
  );
} finally {
  await env.stop();
  await rm(work, { recursive: true, force: true });
}
