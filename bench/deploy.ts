// Benchmark: the latency of a merge, from the signed `push` delivery to the agent's first write to
// the apiserver, over warm `sluice app` and `sluice agent` processes (50-object plain repository,
// 20 pushes), with where the time goes (from the app's log); what GitHub shows of a 5-object merge
// (push → the check run in progress, push → done, and the app's GitHub writes per deploy, over 10
// pushes); and the agent's memory idle and during a 1,000-object deploy. The peer, run in the same
// invocation: `kubectl apply --server-side` of the same objects. GitHub is the test suite's fake
// (which answers at once; the app still paces its writes as it does against GitHub).
// Usage: npm run bench:deploy [-- --pushes 20] [--small-pushes 10] [--big-objects 1000] [--agent-node-options "..."] (default: deploy/agent's)
import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { parseArgs, promisify } from "node:util";
import { KubeConfig, Watch } from "@kubernetes/client-node";
import { generateSigningKeys } from "../src/core/signing.ts";
import { deliverWebhook, WEBHOOK_SECRET } from "../test/helpers/app-harness.ts";
import { checkout, tempDir } from "../test/helpers/checkouts.ts";
import { FakeGitHub } from "../test/helpers/fake-github.ts";
import { pushPayload } from "../test/helpers/payloads.ts";
import { memoryMb, percentile } from "../test/helpers/figures.ts";
import { shippedRuntimeEnv } from "../test/helpers/manifests.ts";
import { startSluice, type SluiceProcess } from "../test/helpers/processes.ts";
import { freePort } from "../test/env/ports.ts";
import { startTestEnv } from "../test/env/start.ts";
import { median } from "./measure.ts";

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    pushes: { type: "string", default: "20" },
    "small-pushes": { type: "string", default: "10" },
    "big-objects": { type: "string", default: "1000" },
    "agent-node-options": { type: "string" },
  },
});
const pushes = Number(values.pushes);
const smallPushes = Number(values["small-pushes"]);
const bigObjects = Number(values["big-objects"]);
const target = { owner: "bench", repo: "deploy", repoId: 9900, installation: 99 };
const ns = "bench-deploy";

const env = await startTestEnv({ env: { ...process.env, KUBECONFIG: "" }, controllers: false, log: () => undefined });
const github = await new FakeGitHub().start();
github.addRepo(target.owner, target.repo, target.repoId);
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const port = await freePort();
let app: SluiceProcess | undefined;
let agent: SluiceProcess | undefined;

const config = `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${ns}\n`;
function files(version: number, count: number): Record<string, string> {
  const out: Record<string, string> = {
    ".github/sluice.yml": config,
    "manifests/namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  };
  for (let i = 0; i < count; i++)
    out[`manifests/cm-${i}.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  version: "${version}"\n`;
  return out;
}
let nextSha = 1;
/** Pushes a commit of `count` ConfigMaps; with `pull`, the commit is the head of a merged pull request, which the deploy comments on. */
async function push(version: number, count: number, pull?: number): Promise<{ sha: string; sentAt: number }> {
  const sha = createHash("sha1").update(`bench-${nextSha++}`).digest("hex");
  await github.addCommit(target.owner, target.repo, sha, await checkout(undefined, files(version, count)));
  if (pull !== undefined)
    github.setPull(target.owner, target.repo, {
      number: pull,
      base: { sha, ref: "main" },
      head: { sha, ref: `feature-${pull}` },
      state: "closed",
      draft: false,
      merged: true,
    });
  github.setBranch(target.owner, target.repo, "main", sha);
  const sentAt = Date.now();
  const { status } = await deliverWebhook(`http://127.0.0.1:${port}`, "push", pushPayload(target, sha));
  if (status !== 200) throw new Error(`push answered ${status}`);
  return { sha, sentAt };
}
const done = (sha: string) => [...github.checkRuns.values()].find((r) => r.head_sha === sha && r.status === "completed");
/** The Deployment of a commit once its last status is final (success, failure, inactive). */
const deploymentDone = (sha: string): boolean => {
  const deployment = github.deploymentsCreated.find((d) => d.ref === sha);
  const state = github.deploymentStatuses.filter((s) => s.deploymentId === deployment?.id).at(-1)?.state;
  return state === "success" || state === "failure" || state === "inactive";
};
/** The app's writes to GitHub (token requests aside) that arrived from `from` on, as the fake recorded them. */
const writesSince = (from: number) =>
  github.requests.filter((r) => r.at >= from && r.method !== "GET" && r.operationId !== "apps/create-installation-access-token");
/** When the fake first saw the commit's check run written in `statuses` (its create or an update), or NaN. */
function checkRunShown(sha: string, statuses: readonly string[], since: number): number {
  const run = [...github.checkRuns.values()].find((r) => r.head_sha === sha);
  const shown = writesSince(since).find(
    (r) =>
      statuses.includes(String((r.body as { status?: string }).status)) &&
      ((r.operationId === "checks/create" && (r.body as { head_sha?: string }).head_sha === sha) ||
        (r.operationId === "checks/update" && r.params.check_run_id === String(run?.id))),
  );
  return shown?.at ?? Number.NaN;
}
async function until(check: () => boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
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
      SLUICE_CACHE_DIR: await tempDir("sluice-bench-deploy-"),
      SLUICE_JOB_SIGNING_KEY: appKeys.privateKey,
      SLUICE_AGENT_PUBLIC_KEYS: agentKeys.publicKey,
    },
    /sluice app: listening/,
    { built: true },
  );
  // The agent as deploy/agent ships it: the built command line, with the manifest's runtime tuning.
  const runtime = await shippedRuntimeEnv("agent");
  if (values["agent-node-options"] !== undefined) runtime.NODE_OPTIONS = values["agent-node-options"];
  const nodeOptions = runtime.NODE_OPTIONS ?? "";
  agent = await startSluice(
    "agent",
    {
      ...runtime,
      REDIS_URL: env.redisUrl,
      KUBECONFIG: env.kubeconfigPath,
      SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
      SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
      SLUICE_AGENT_ENVIRONMENTS: "production",
      SLUICE_AGENT_REPOSITORIES: `${target.owner}/*=${ns}`,
      SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
      SLUICE_AGENT_NAMESPACE: "default",
      SLUICE_AGENT_PROBE_PORT: "0",
      SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
      SLUICE_DRIFT_INTERVAL_SECONDS: "0",
    },
    /sluice agent: serving/,
    { built: true },
  );
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const idleMb = await memoryMb(agent.child.pid ?? 0, "VmRSS");
  // The agent's first write of each version, seen by a watch on the namespace.
  const firstWrite = new Map<string, number>();
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfigPath);
  const warm = await push(0, 50);
  await until(() => done(warm.sha) !== undefined);
  await new Watch(kc).watch(
    `/api/v1/namespaces/${ns}/configmaps`,
    {},
    (_type, object: { data?: { version?: string } }) => {
      const version = object.data?.version;
      if (version !== undefined && !firstWrite.has(version)) firstWrite.set(version, Date.now());
    },
    () => undefined,
  );
  const latencies: number[] = [];
  const sent = new Map<string, { sentAt: number; wroteAt: number }>();
  for (let v = 1; v <= pushes; v++) {
    const { sha, sentAt } = await push(v, 50);
    await until(() => firstWrite.has(String(v)));
    const wroteAt = firstWrite.get(String(v)) ?? 0;
    latencies.push(wroteAt - sentAt);
    sent.set(sha, { sentAt, wroteAt });
    await until(() => done(sha) !== undefined);
  }
  // Where the time goes, from the app's own log (pino's `time`, with the commit on each line).
  const lines = app
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { msg?: string; time?: number; sha?: string });
  const at = (msg: string, sha: string) => lines.find((l) => l.msg === msg && l.sha === sha)?.time ?? Number.NaN;
  const segments = { webhook: [] as number[], prepare: [] as number[], agent: [] as number[] };
  for (const [sha, { sentAt, wroteAt }] of sent) {
    segments.webhook.push(at("push deploys queued", sha) - sentAt);
    segments.prepare.push(at("deploy job queued", sha) - at("push deploys queued", sha));
    segments.agent.push(wroteAt - at("deploy job queued", sha));
  }
  // A 5-object merge of a pull request (a namespace and four ConfigMaps) as GitHub shows it: when
  // the check run shows the deploy in progress, when it shows it done, and how many writes the app
  // made for it (the comment on the pull request too). The first small push prunes the 50-object
  // set, so it only warms up.
  const small = { inProgress: [] as number[], done: [] as number[], writes: [] as number[] };
  for (let v = 0; v <= smallPushes; v++) {
    const { sha, sentAt } = await push(10_000 + v, 4, 100 + v);
    const commented = () => github.comments.some((c) => c.issue === 100 + v);
    await until(() => done(sha) !== undefined && deploymentDone(sha) && commented());
    // Nothing else of this deploy is left to write once both show it final and the pull request has
    // its comment. Merges come seconds apart: the next starts once the installation's write pacing
    // is idle again (a second after the last write), not in the turn the comment left.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    if (v === 0) continue;
    small.inProgress.push(checkRunShown(sha, ["in_progress", "completed"], sentAt) - sentAt);
    small.done.push(checkRunShown(sha, ["completed"], sentAt) - sentAt);
    small.writes.push(writesSince(sentAt).length);
  }
  // The peer: kubectl's server-side apply of the same 50 objects, in this invocation.
  const dir = await tempDir("sluice-bench-kubectl-");
  await writeFile(`${dir}/all.yaml`, Object.values(files(999, 50)).slice(1).join("---\n"));
  const kubectlMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await run("kubectl", [
      "--kubeconfig",
      env.kubeconfigPath,
      "apply",
      "--server-side",
      "--field-manager",
      "bench",
      "--force-conflicts",
      "-f",
      `${dir}/all.yaml`,
    ]);
    kubectlMs.push(performance.now() - started);
  }
  // The peer of the 5-object merge: kubectl's server-side apply of the same 5 objects.
  await writeFile(`${dir}/small.yaml`, Object.values(files(998, 4)).slice(1).join("---\n"));
  const kubectlSmallMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await run("kubectl", [
      "--kubeconfig",
      env.kubeconfigPath,
      "apply",
      "--server-side",
      "--field-manager",
      "bench",
      "--force-conflicts",
      "-f",
      `${dir}/small.yaml`,
    ]);
    kubectlSmallMs.push(performance.now() - started);
  }
  // The agent's memory during a 1,000-object deploy.
  let bigMs = Number.NaN;
  if (bigObjects > 0) {
    const big = await push(pushes + 1, bigObjects);
    await until(() => done(big.sha) !== undefined, 300_000);
    bigMs = Date.now() - big.sentAt;
  }
  const peakMb = await memoryMb(agent.child.pid ?? 0, "VmHWM");
  const p50 = median(latencies);
  const p95 = percentile(latencies, 95);
  console.log(
    `push → agent's first apiserver write, ${pushes} pushes of 50 objects: p50 ${Math.round(p50)} ms, p95 ${Math.round(p95)} ms (goal ≤ 500 / ≤ 1000 ms)`,
  );
  console.log(
    `  kubectl apply --server-side of the same 50 objects: median ${Math.round(median(kubectlMs))} ms; p50 / kubectl = ${(p50 / median(kubectlMs)).toFixed(2)}`,
  );
  console.log(
    `  medians: delivery → deploy requested ${Math.round(median(segments.webhook))} ms; request → signed job queued (configuration, tarball, render; the check run and Deployment are written after) ${Math.round(median(segments.prepare))} ms; job queued → first write (pick-up, verify, preflight dry-run) ${Math.round(median(segments.agent))} ms`,
  );
  const kubectlSmall = median(kubectlSmallMs);
  const smallFigure = (label: string, values: readonly number[], goal: number) =>
    `  push → GitHub shows the deploy ${label}: p50 ${Math.round(median(values))} ms, p95 ${Math.round(percentile(values, 95))} ms (goal ≤ ${goal} ms); p50 / kubectl = ${(median(values) / kubectlSmall).toFixed(1)}`;
  console.log(`5-object merge, ${smallPushes} pushes, as GitHub shows it:`);
  console.log(smallFigure("in progress (check run)", small.inProgress, 1_500));
  console.log(smallFigure("done (check run completed)", small.done, 6_000));
  console.log(
    `  GitHub writes per deploy: median ${median(small.writes)}, max ${Math.max(...small.writes)}; kubectl apply --server-side of the same 5 objects: median ${Math.round(kubectlSmall)} ms`,
  );
  console.log(
    `agent RSS (built, NODE_OPTIONS=${nodeOptions}): idle ${Math.round(idleMb)} MB (goal ≤ 120), peak ${Math.round(peakMb)} MB through a ${bigObjects}-object deploy (goal ≤ 150), which took ${(bigMs / 1000).toFixed(1)} s`,
  );
} finally {
  await agent?.stop();
  await app?.stop();
  await github.stop();
  await env.stop();
}
