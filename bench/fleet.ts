// Benchmark: one environment on many clusters (issue 27), simulated by in-process agents, one per
// cluster, against namespaces of one apiserver (each agent keeps its inventory in a namespace of
// its own and applies the same objects). A merge rolls out in three waves with no bake: the first
// cluster, then the next nine, then the rest. The peer, in the same run: the same objects merged to
// an environment on one cluster, served by one more agent. Figures: push → the rollout's end and
// push → the last wave's first report, against push → the single-cluster deploy's end; GitHub
// writes per deploy for each; Redis keys per cluster; the check run's summary size. Then a pull
// request's live preview giving three answers (three clusters' agents stopped, two refusing the
// namespace by policy): pull request opened → every answer in the comment, its size and writes.
// Usage: npm run bench:fleet [-- --clusters 100] [--rounds 3] [--objects 5]
import { parseArgs } from "node:util";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { agentHeartbeatKey } from "../src/core/agent-protocol.ts";
import { deployCheckName } from "../src/core/check-names.ts";
import { targetName } from "../src/core/fleet.ts";
import { generateSigningKeys } from "../src/core/signing.ts";
import type { RunningAgent } from "../src/agent/start.ts";
import { DeployRecords } from "../src/app/deploy/deploy-records.ts";
import { RedisMac } from "../src/app/state/redis-mac.ts";
import { startHarness, WEBHOOK_SECRET } from "../test/helpers/app-harness.ts";
import { checkout } from "../test/helpers/checkouts.ts";
import { pullRequestPayload, pushPayload } from "../test/helpers/payloads.ts";
import { startPromotionAgent } from "../test/helpers/promotion-agent.ts";
import { startTestEnv } from "../test/env/start.ts";
import { median } from "./measure.ts";

const { values } = parseArgs({
  options: {
    clusters: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    objects: { type: "string", default: "5" },
  },
});
const clusterCount = Number(values.clusters);
const rounds = Number(values.rounds);
const objectCount = Number(values.objects);
if (!(clusterCount >= 11) || !(rounds > 0) || !(objectCount > 0))
  throw new Error(
    `--clusters must be at least 11, --rounds and --objects positive; got ${values.clusters}, ${values.rounds}, ${values.objects}`,
  );
const target = { owner: "bench", repo: "fleet", repoId: 9920, installation: 98 };
const clusters = Array.from({ length: clusterCount }, (_, i) => `c-${String(i).padStart(3, "0")}`);
const NS = { production: "deploy-bench-fleet", single: "deploy-bench-single" } as const;
type Env = keyof typeof NS;
const config = `version: 1
environments:
  - name: production
    path: envs/production
    namespace: ${NS.production}
    waves: [[c-000], ["c-00*"], ["*"]]
  - name: single
    path: envs/single
    namespace: ${NS.single}
    branch: peer
`;
function files(version: number): Record<string, string> {
  const out: Record<string, string> = { ".github/sluice.yml": config };
  for (const env of ["production", "single"] as const) {
    out[`envs/${env}/namespace.yaml`] = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS[env]}\n`;
    for (let i = 0; i < objectCount; i++)
      out[`envs/${env}/cm-${i}.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  version: "${version}"\n`;
  }
  return out;
}

const testEnv = await startTestEnv({ env: { ...process.env, KUBECONFIG: "" }, controllers: false, log: () => undefined });
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const h = await startHarness({
  redisUrl: testEnv.redisUrl,
  kustomize: testEnv.tools.kustomize,
  helm: testEnv.tools.helm,
  database: 0,
  deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
});
const agents: RunningAgent[] = [];
try {
  h.github.addRepo(target.owner, target.repo, target.repoId);
  let nextSha = 1;
  const sha = (): string => (nextSha++).toString(16).padStart(40, "b");
  const first = sha();
  await h.github.addCommit(target.owner, target.repo, first, await checkout(undefined, files(0)));
  h.github.setBranch(target.owner, target.repo, "main", first);
  h.github.setBranch(target.owner, target.repo, "peer", first);
  const kc = new KubeConfig();
  kc.loadFromFile(testEnv.kubeconfigPath);
  const kube = KubernetesObjectApi.makeApiClient(kc);
  const agentOptions = (namespace: string, cluster?: string) => ({
    kubeconfigPath: testEnv.kubeconfigPath,
    appPublicKey: appKeys.publicKey,
    agentPrivateKey: agentKeys.privateKey,
    owner: target.owner,
    namespace,
    ...(cluster ? { cluster, environments: ["production"] } : { environments: ["single"] }),
  });
  for (const [index, cluster] of [...clusters, undefined].entries()) {
    const namespace = `bench-fleet-agent-${index}`;
    await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    agents.push(await startPromotionAgent(h, agentOptions(namespace, cluster)));
  }
  // Every agent announces its cluster as it starts; the rollout's globs match those the app heard of.
  for (let waited = 0; (await h.redis.hlen("sluice:fleet-clusters:production")) < clusterCount; waited += 100) {
    if (waited > 120_000)
      throw new Error(`only ${await h.redis.hlen("sluice:fleet-clusters:production")} of ${clusterCount} clusters announced themselves`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const records = new DeployRecords(h.redis, new RedisMac(WEBHOOK_SECRET), {
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  });
  const writes = (): number => h.github.requests.filter((r) => r.method !== "GET").length;
  const title = (commit: string, env: Env): string | undefined =>
    [...h.github.checkRuns.values()].filter((r) => r.head_sha === commit && r.name === deployCheckName(env)).at(-1)?.output?.title ??
    undefined;
  async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
    for (let waited = 0; !(await done()); waited += 20) {
      if (waited > 300_000) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  /** Pushes a new commit to `branch`; returns it and when it was pushed. */
  async function push(branch: string, version: number): Promise<{ commit: string; at: number }> {
    const commit = sha();
    await h.github.addCommit(target.owner, target.repo, commit, await checkout(undefined, files(version)));
    h.github.setBranch(target.owner, target.repo, branch, commit);
    const at = performance.now();
    await h.deliver("push", pushPayload(target, commit, `refs/heads/${branch}`));
    return { commit, at };
  }
  const figures = {
    single: [] as number[],
    fleet: [] as number[],
    lastWave: [] as number[],
    singleWrites: [] as number[],
    fleetWrites: [] as number[],
  };
  let summaryBytes = 0;
  for (let round = 1; round <= rounds; round++) {
    let before = writes();
    const peer = await push("peer", round);
    await until(() => /^Deployed/.test(title(peer.commit, "single") ?? ""), "the single-cluster deploy");
    figures.single.push(performance.now() - peer.at);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    figures.singleWrites.push(writes() - before);
    before = writes();
    const merge = await push("main", round);
    let lastWaveAt: number | undefined;
    await until(async () => {
      if (lastWaveAt === undefined) {
        const record = await records.load(`merge-${target.repoId}-production-${merge.commit}`);
        if (
          record?.rollout &&
          record.rollout.wave === record.rollout.waves.length - 1 &&
          Object.keys(record.rollout.clusters).some((c) => record.rollout?.waves.at(-1)?.includes(c))
        )
          lastWaveAt = performance.now();
      }
      return /^Deployed to/.test(title(merge.commit, "production") ?? "");
    }, "the rollout");
    figures.fleet.push(performance.now() - merge.at);
    figures.lastWave.push((lastWaveAt ?? performance.now()) - merge.at);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    figures.fleetWrites.push(writes() - before);
    summaryBytes = Buffer.byteLength(
      [...h.github.checkRuns.values()].filter((r) => r.head_sha === merge.commit).at(-1)?.output?.summary ?? "",
    );
  }
  // A pull request previewed on every cluster, giving three answers: three clusters' agents are
  // stopped (their heartbeats gone), two run with a policy that does not allow the namespace, the
  // rest would apply the change.
  for (const agent of agents.splice(clusterCount - 5, 5)) await agent.stop();
  // Their heartbeats would lapse within a minute; gone at once here.
  await h.redis.del(...clusters.slice(-3).map((c) => agentHeartbeatKey(targetName("production", c))));
  for (const [i, cluster] of clusters.slice(-5, -3).entries())
    agents.push(
      await startPromotionAgent(h, { ...agentOptions(`bench-fleet-agent-${clusterCount - 5 + i}`, cluster), namespaces: "other-*" }),
    );
  h.github.setPermission(target.owner, target.repo, "Codertocat", "write");
  const base = h.github.branch(target.owner, target.repo, "main") ?? "";
  const head = sha();
  await h.github.addCommit(target.owner, target.repo, head, await checkout(undefined, files(rounds + 1)));
  const writesBefore = writes();
  const opened = performance.now();
  await h.deliver("pull_request", pullRequestPayload(target, "opened", 7, base, head));
  const comment = (): string => h.github.comments.find((c) => c.issue === 7)?.body ?? "";
  await until(() => /on \d+ of \d+ clusters, .*would change live/.test(comment()) && !comment().includes("waiting"), "every live answer");
  const previewMs = performance.now() - opened;
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const previewWrites = writes() - writesBefore;
  const commentBytes = Buffer.byteLength(comment());
  const answers = (comment().match(/^\*\*`production`\*\* on .*$/gm) ?? []).map((line) => line.replace(/, `c-\d+`.*?:/, ", …:"));
  const keysOf = async (pattern: string): Promise<number> => {
    let cursor = "0";
    let count = 0;
    do {
      const [next, keys] = await h.redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      count += keys.length;
    } while (cursor !== "0");
    return count;
  };
  const perCluster = (await keysOf("{sluice-production@*}:*")) / clusterCount;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`fleet: ${clusterCount} clusters in 3 waves (1, 9, ${clusterCount - 10}), ${objectCount} objects, ${rounds} rounds, medians`);
  console.log(`  push → rollout ended (every cluster deployed): ${seconds(median(figures.fleet))}`);
  console.log(`  push → the last wave's first report:           ${seconds(median(figures.lastWave))}`);
  console.log(`  peer, push → deployed on one cluster:          ${seconds(median(figures.single))}`);
  console.log(`  ratio, rollout ÷ one cluster:                  ${(median(figures.fleet) / median(figures.single)).toFixed(2)}×`);
  console.log(
    `  GitHub writes per deploy: ${median(figures.fleetWrites)} for ${clusterCount} clusters, ${median(figures.singleWrites)} for one`,
  );
  console.log(`  Redis keys per cluster: ${perCluster.toFixed(1)}; check run summary at ${clusterCount} clusters: ${summaryBytes} bytes`);
  console.log(
    `  live preview on ${clusterCount} clusters (3 agents stopped, 2 refusing): opened → every answer in the comment ${seconds(previewMs)}; comment ${commentBytes} bytes, ${previewWrites} GitHub writes, ${answers.length} distinct answers:`,
  );
  for (const answer of answers) console.log(`    ${answer}`);
} finally {
  for (const agent of agents) await agent.stop();
  await h.stop();
  await testEnv.stop();
}
