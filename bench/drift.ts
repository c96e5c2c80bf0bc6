// Benchmark: a drift check of 1,001 objects (Sluice's findDrift: read the live object, server-side
// dry-run the applied one, compare) against `kubectl diff --server-side -f` of the same objects,
// on the same kube-apiserver, alternating runs. Both run after the objects were applied by the
// same field manager, with one object changed by hand, so both have one difference to find.
// Then (issue 28, item 6) how soon a hand edit reaches `sluice/drift` on the (fake) GitHub, through
// real `sluice app` and `sluice agent` processes (the built ones; `npm run build` first) with the
// default drift interval, against `kubectl get --watch` seeing the same edit in the same run; and
// the agent's RSS (with deploy/agent's NODE_OPTIONS) while it watches `--watch-objects` objects,
// against `kubectl get --watch` of the same objects.
// Uses the cluster of KUBECONFIG when set (a shared test apiserver), else starts one.
// Usage: npm run bench:drift [-- --runs 3 --apps 250 --edits 20 --watch-objects 10000 --only check|watch]
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, generateKeyPairSync, randomUUID } from "node:crypto";
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
import { freePort } from "../test/env/ports.ts";
import { generateSigningKeys } from "../src/core/signing.ts";
import { deliverWebhook, WEBHOOK_SECRET } from "../test/helpers/app-harness.ts";
import { checkout, tempDir } from "../test/helpers/checkouts.ts";
import { FakeGitHub } from "../test/helpers/fake-github.ts";
import { memoryMb, percentile } from "../test/helpers/figures.ts";
import { shippedRuntimeEnv } from "../test/helpers/manifests.ts";
import { pushPayload } from "../test/helpers/payloads.ts";
import { startSluice, type SluiceProcess } from "../test/helpers/processes.ts";
import { fluxBenchmarkObjects } from "./generate.ts";
import { median } from "./measure.ts";

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    apps: { type: "string", default: "250" },
    edits: { type: "string", default: "20" },
    "watch-objects": { type: "string", default: "10000" },
    // `false`: the same agent with SLUICE_DRIFT_WATCH=false, for its RSS after the same deploy (no edits are timed).
    "drift-watch": { type: "string", default: "true" },
    only: { type: "string" },
  },
});
const runs = Number(values.runs);
const apps = Number(values.apps);
const CONCURRENCY = 16;

// Redis of its own (the agent and the app need one); the caller's apiserver when KUBECONFIG names one.
const callerEnv: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: process.env.KUBECONFIG ?? "" };
delete callerEnv.REDIS_URL;
const env = await startTestEnv({
  env: callerEnv,
  controllers: false,
  log: () => undefined,
});
const work = await mkdtemp(join(tmpdir(), "sluice-bench-drift-"));
try {
  if (values.only !== "watch") await checkBench();
  if (values.only !== "check") {
    const watching = values["drift-watch"] !== "false";
    await watchBench(watching ? Number(values.edits) : 0, Number(values["watch-objects"]), watching);
  }
} finally {
  await env.stop();
  await rm(work, { recursive: true, force: true });
}

/** The drift check and the live preview against `kubectl diff --server-side`. */
async function checkBench(): Promise<void> {
  // A name of its own: a previous run's namespace may still be terminating on a shared apiserver.
  const namespace = `bench-drift-check-${randomUUID().slice(0, 6)}`;
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
  // The apiserver may be a shared one (KUBECONFIG): the objects go with their namespace.
  await run("kubectl", ["--kubeconfig", env.kubeconfigPath, "delete", "namespace", namespace, "--ignore-not-found", "--wait=false"]);
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
}

/**
 * Hand edit → `sluice/drift` on the fake GitHub, through the built `sluice app` and `sluice agent`
 * with the default drift interval (so only the watches can be this quick), p50 over `edits`
 * edits of a 50-object environment, against `kubectl get --watch` printing the same edit; then the
 * agent's RSS once it watches `objects` objects, against `kubectl get --watch` holding the same.
 */
async function watchBench(edits: number, objects: number, watching: boolean): Promise<void> {
  const suffix = randomUUID().slice(0, 6);
  const ns = `bench-drift-${suffix}`;
  const agentNs = `bench-drift-agent-${suffix}`;
  const target = { owner: "bench", repo: `drift-${suffix}`, repoId: 9800, installation: 98 };
  const kubectl = (...args: string[]) => run("kubectl", ["--kubeconfig", env.kubeconfigPath, ...args], { maxBuffer: 64 * 1024 * 1024 });
  await kubectl("create", "namespace", agentNs);
  const github = await new FakeGitHub().start();
  github.addRepo(target.owner, target.repo, target.repoId);
  const appKeys = generateSigningKeys();
  const agentKeys = generateSigningKeys();
  const port = await freePort();
  let app: SluiceProcess | undefined;
  let agent: SluiceProcess | undefined;
  const peers: ChildProcess[] = [];
  /** The repository: `count` ConfigMaps over `spread` namespaces (`ns`, `ns-1`, …). */
  const files = (count: number, spread: number): Record<string, string> => {
    const names = Array.from({ length: spread }, (_, i) => (i === 0 ? ns : `${ns}-${i}`));
    const out: Record<string, string> = {
      ".github/sluice.yml": `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${ns}\n`,
    };
    for (const name of names) out[`manifests/ns-${name}.yaml`] = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;
    for (let i = 0; i < count; i++)
      out[`manifests/cm-${i}.yaml`] =
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${names[i % spread] ?? ns}\ndata:\n  version: "1"\n`;
    return out;
  };
  let nextSha = 1;
  const push = async (count: number, spread: number): Promise<string> => {
    const sha = createHash("sha1").update(`bench-drift-${suffix}-${nextSha++}`).digest("hex");
    await github.addCommit(target.owner, target.repo, sha, await checkout(undefined, files(count, spread)));
    github.setBranch(target.owner, target.repo, "main", sha);
    const { status } = await deliverWebhook(`http://127.0.0.1:${port}`, "push", pushPayload(target, sha));
    if (status !== 200) throw new Error(`push of ${sha} answered ${status}`);
    return sha;
  };
  const until = async (check: () => boolean, what: string, ms = 120_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const deployed = (sha: string) =>
    [...github.checkRuns.values()].some((r) => r.head_sha === sha && r.status === "completed" && !r.name.startsWith("sluice/drift"));
  const driftNames = () =>
    [...github.checkRuns.values()]
      .filter((r) => r.name.startsWith("sluice/drift"))
      .map((r) => JSON.stringify(r.output ?? {}))
      .join("\n");
  /** How many times the agent's watches followed an inventory with at least `watches` watches. */
  const follows = (watches: number): number =>
    (agent?.output() ?? "")
      .split("\n")
      .filter((l) => l.includes('"drift watches follow the inventory"'))
      .filter((l) => ((JSON.parse(l) as { watches?: number }).watches ?? 0) >= watches).length;
  try {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    app = await startSluice(
      "app",
      {
        APP_ID: String(FakeGitHub.APP_ID),
        PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
        WEBHOOK_SECRET,
        REDIS_URL: env.redisUrl,
        SLUICE_PUBLIC_URL: `http://127.0.0.1:${port}`,
        GITHUB_API_URL: github.url,
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        SLUICE_CACHE_DIR: await tempDir("sluice-bench-drift-"),
        SLUICE_JOB_SIGNING_KEY: appKeys.privateKey,
        SLUICE_AGENT_PUBLIC_KEYS: agentKeys.publicKey,
      },
      /sluice app: listening/,
      { built: true },
    );
    // The agent as deploy/agent ships it, drift interval left at its default (180 s).
    const runtime = await shippedRuntimeEnv("agent");
    agent = await startSluice(
      "agent",
      {
        ...runtime,
        REDIS_URL: env.redisUrl,
        KUBECONFIG: env.kubeconfigPath,
        SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
        SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
        SLUICE_AGENT_ENVIRONMENTS: "production",
        SLUICE_AGENT_REPOSITORIES: `${target.owner}/*=${ns}*`,
        SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
        SLUICE_AGENT_NAMESPACE: agentNs,
        SLUICE_AGENT_PROBE_PORT: "0",
        SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
        SLUICE_DRIFT_WATCH: String(watching),
      },
      /sluice agent: serving/,
      { built: true },
    );
    const pid = agent.child.pid ?? 0;
    const idleMb = await memoryMb(pid, "VmRSS");

    const first = await push(50, 1);
    await until(() => deployed(first), `the deploy of ${first}`);
    if (watching) await until(() => follows(2) > 0, "the agent's watches to follow the inventory", 30_000);
    // The peer: kubectl's own watch of the namespace, printing each change as it sees it.
    const seenByKubectl = new Map<string, number>();
    const peer = spawn("kubectl", ["--kubeconfig", env.kubeconfigPath, "-n", ns, "get", "configmaps", "--watch-only", "-o", "name"]);
    peers.push(peer);
    let pending = "";
    peer.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) seenByKubectl.set(line.trim().replace(/^configmap\//, ""), Date.now());
    });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const sluiceMs: number[] = [];
    const kubectlMs: number[] = [];
    for (let i = 0; i < edits; i++) {
      const name = `cm-${i}`;
      const editedAt = Date.now();
      await kubectl("-n", ns, "patch", "configmap", name, "--field-manager", "kubectl-edit", "-p", `{"data":{"version":"hand-${i}"}}`);
      await until(() => driftNames().includes(`/${name}\``), `sluice/drift to name ${name}`, 300_000);
      sluiceMs.push(Date.now() - editedAt);
      await until(() => (seenByKubectl.get(name) ?? 0) >= editedAt, `kubectl get --watch to print ${name}`);
      kubectlMs.push((seenByKubectl.get(name) ?? 0) - editedAt);
    }
    const s = median(sluiceMs);
    const k = median(kubectlMs);
    if (edits > 0) {
      console.log(
        `\nhand edit (kubectl patch, another field manager) → sluice/drift on the fake GitHub, ${edits} edits of a 51-object environment,`,
      );
      console.log(`real \`sluice app\` and \`sluice agent\` (built), SLUICE_DRIFT_INTERVAL_SECONDS at its default (180):`);
      console.log(
        `  sluice: p50 ${(s / 1000).toFixed(2)} s, p95 ${(percentile(sluiceMs, 95) / 1000).toFixed(2)} s (goal p50 ≤ 10 s; the poll alone: 90 s on average)`,
      );
      console.log(`  kubectl get --watch printing the same edit: p50 ${k.toFixed(0)} ms; sluice / kubectl = ${(s / k).toFixed(1)}`);
    }

    if (objects > 0) {
      const spread = 10;
      const big = await push(objects, spread);
      const bigAt = Date.now();
      await until(() => deployed(big), `the deploy of ${objects} objects`, 900_000);
      const deployS = (Date.now() - bigAt) / 1000;
      if (watching) await until(() => follows(spread + 1) > 0, "the agent's watches to follow the big inventory", 60_000);
      // The peer holds a watch of the same objects, across the namespaces they are in.
      const bigPeer = spawn(
        "kubectl",
        [
          "--kubeconfig",
          env.kubeconfigPath,
          "get",
          "configmaps",
          "-A",
          "-l",
          `app.kubernetes.io/managed-by=sluice`,
          "--watch",
          "-o",
          "name",
        ],
        {
          stdio: ["ignore", "ignore", "ignore"],
        },
      );
      peers.push(bigPeer);
      // The watches' lists are done well within this; what the agent holds now is what watching costs.
      await new Promise((resolve) => setTimeout(resolve, 15_000));
      const listedMb = await memoryMb(pid, "VmRSS");
      const bigMs: number[] = [];
      for (let i = 0; i < (watching ? 3 : 0); i++) {
        const name = `cm-${objects - 1 - i}`;
        const where = (objects - 1 - i) % spread === 0 ? ns : `${ns}-${(objects - 1 - i) % spread}`;
        const editedAt = Date.now();
        await kubectl("-n", where, "patch", "configmap", name, "--field-manager", "kubectl-edit", "-p", '{"data":{"version":"hand"}}');
        await until(() => driftNames().includes(`/${name}\``), `sluice/drift to name ${name}`, 300_000);
        bigMs.push(Date.now() - editedAt);
      }
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const watchingMb = await memoryMb(pid, "VmRSS");
      const peakMb = await memoryMb(pid, "VmHWM");
      const kubectlMb = await memoryMb(bigPeer.pid ?? 0, "VmRSS");
      console.log(
        watching
          ? `\nagent watching ${objects} ConfigMaps in ${spread} namespaces (${spread + 1} watches), NODE_OPTIONS=${runtime.NODE_OPTIONS ?? ""}:`
          : `\nagent with SLUICE_DRIFT_WATCH=false after deploying ${objects} ConfigMaps in ${spread} namespaces, NODE_OPTIONS=${runtime.NODE_OPTIONS ?? ""}:`,
      );
      console.log(
        `  RSS ${Math.round(listedMb)} MB ${watching ? "while watching" : "without watches"}, 15 s after the deploy (goal ≤ 200 MB); ${Math.round(watchingMb)} MB after ${bigMs.length} hand edits and the drift checks they started; idle before any deploy ${Math.round(idleMb)} MB; peak ${Math.round(peakMb)} MB (the ${objects}-object deploy, ${deployS.toFixed(0)} s, included)`,
      );
      console.log(
        `  kubectl get --watch of the same objects: RSS ${Math.round(kubectlMb)} MB; sluice / kubectl = ${(listedMb / kubectlMb).toFixed(2)}`,
      );
      if (watching)
        console.log(
          `  hand edit → sluice/drift while watching them: median ${(median(bigMs) / 1000).toFixed(2)} s over ${bigMs.length} edits`,
        );
    }
  } finally {
    for (const peer of peers) peer.kill();
    await agent?.stop();
    await app?.stop();
    await github.stop();
    for (const name of [agentNs, ns, ...Array.from({ length: 9 }, (_, i) => `${ns}-${i + 1}`)])
      await kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false").catch(() => undefined);
  }
}
