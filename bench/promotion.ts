// Benchmark: how soon a promotion applies once it is due, over warm `sluice app` and `sluice agent`
// processes (issue 26: production applies within 1 s of the soak's end or the approval, p50 over 20
// promotions). Each of `--promotions` merges of `--objects` ConfigMaps goes to three environments:
// `dev` deploys at once (the peer: a plain merge's push → live, same objects, same run), `staging`
// is promoted after dev with a soak of `--soak` (soak end → live; the soak's end is the moment the
// app queued its delayed promotion check for, read from the job's id `promotion-<repository>-<ms>`),
// and `production` waits for a maintainer's `/approve production` (the comment's delivery → live).
// Live: the agent has written every ConfigMap of the environment at the merge's version, as a watch
// sees it. GitHub is the test suite's fake (which answers at once).
// Usage: npm run bench:promotion [-- --promotions 20] [--objects 5] [--soak 2s]
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { KubeConfig, Watch } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { deployCheckName } from "../src/core/check-names.ts";
import { parseDuration } from "../src/core/duration.ts";
import { generateSigningKeys } from "../src/core/signing.ts";
import { PROMOTION_QUEUE } from "../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../src/app/state/redis-keys.ts";
import { deliverWebhook } from "../test/helpers/app-harness.ts";
import { checkout } from "../test/helpers/checkouts.ts";
import { FakeGitHub } from "../test/helpers/fake-github.ts";
import { commentPayload, pushPayload } from "../test/helpers/payloads.ts";
import { percentile } from "../test/helpers/figures.ts";
import { shippedRuntimeEnv } from "../test/helpers/manifests.ts";
import { startSluice, type SluiceProcess } from "../test/helpers/processes.ts";
import { freePort } from "../test/env/ports.ts";
import { startTestEnv } from "../test/env/start.ts";
import { startBuiltApp } from "./built-app.ts";
import { median } from "./measure.ts";

const { values } = parseArgs({
  options: {
    promotions: { type: "string", default: "20" },
    objects: { type: "string", default: "5" },
    soak: { type: "string", default: "2s" },
  },
});
const promotionCount = Number(values.promotions);
const objectCount = Number(values.objects);
const soakMs = parseDuration(values.soak);
if (soakMs === undefined) throw new Error(`--soak must be a duration such as 2s, not ${JSON.stringify(values.soak)}`);
if (!(promotionCount > 0) || !(objectCount > 0))
  throw new Error(`--promotions and --objects must be positive, not ${values.promotions} and ${values.objects}`);
const target = { owner: "bench", repo: "promotion", repoId: 9910, installation: 99 };
const ENVS = ["dev", "staging", "production"] as const;
type Env = (typeof ENVS)[number];
const ns = { dev: "bench-promo-dev", staging: "bench-promo-staging", production: "bench-promo-production" } satisfies Record<Env, string>;
const AUTHOR = "carol";
const APPROVER = "maya";

/** What gates each environment: none for dev, a soak after dev for staging, a maintainer's approval for production. */
const gates: Record<Env, string> = {
  dev: "",
  staging: `    promotion: { after: dev, soak: ${values.soak} }\n`,
  production: "    approval: { required: 1, from: maintain, notAuthor: true }\n",
};
const config = `version: 1\nenvironments:\n${ENVS.map((e) => `  - name: ${e}\n    path: envs/${e}\n    namespace: ${ns[e]}\n${gates[e]}`).join("")}`;
function files(version: number): Record<string, string> {
  const out: Record<string, string> = { ".github/sluice.yml": config };
  for (const env of ENVS) {
    out[`envs/${env}/namespace.yaml`] = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns[env]}\n`;
    for (let i = 0; i < objectCount; i++)
      out[`envs/${env}/cm-${i}.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  version: "${version}"\n`;
  }
  return out;
}

const env = await startTestEnv({ env: { ...process.env, KUBECONFIG: "" }, controllers: false, log: () => undefined });
const github = await new FakeGitHub().start();
github.addRepo(target.owner, target.repo, target.repoId);
github.setPermission(target.owner, target.repo, AUTHOR, "maintain");
github.setPermission(target.owner, target.repo, APPROVER, "maintain");
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const port = await freePort();
const promotions = new Queue(PROMOTION_QUEUE, { connection: { url: env.redisUrl }, prefix: QUEUE_PREFIX });
let app: SluiceProcess | undefined;
let agent: SluiceProcess | undefined;
let stopWatch: (() => void) | undefined;

let nextSha = 1;
/** Merges pull request `number` as a commit of `version` and pushes main there; returns the commit and when the push was sent. */
async function merge(version: number, number: number): Promise<{ sha: string; sentAt: number }> {
  const sha = createHash("sha1").update(`bench-promotion-${nextSha++}`).digest("hex");
  await github.addCommit(target.owner, target.repo, sha, await checkout(undefined, files(version)));
  github.setMergedPull(target.owner, target.repo, { number, merge: sha, author: AUTHOR });
  github.setBranch(target.owner, target.repo, "main", sha);
  const sentAt = Date.now();
  const { status } = await deliverWebhook(`http://127.0.0.1:${port}`, "push", pushPayload(target, sha));
  if (status !== 200) throw new Error(`push of version ${version} answered ${status}`);
  return { sha, sentAt };
}
let nextComment = 90_000;
/** `/approve production` on pull request `number` by the maintainer who did not write it; returns when it was sent. */
async function approve(number: number): Promise<number> {
  const sentAt = Date.now();
  const payload = commentPayload(target, number, nextComment++, "/approve production", APPROVER);
  const { status } = await deliverWebhook(`http://127.0.0.1:${port}`, "issue_comment", payload);
  if (status !== 200) throw new Error(`approval on pull request ${number} answered ${status}`);
  return sentAt;
}
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// When each environment had all its ConfigMaps at a version, as a watch on every namespace sees it.
const written = new Map<string, Set<string>>();
const liveAt = new Map<string, number>();
const liveKey = (e: Env, version: number) => `${ns[e]}/${version}`;
const live = (e: Env, version: number) => liveAt.get(liveKey(e, version));
/** The moments of the promotion checks the app queued (from their ids), the finished ones included (kept an hour). */
async function checkMoments(): Promise<number[]> {
  const jobs = await promotions.getJobs(["delayed", "waiting", "active", "completed"]);
  return jobs.map((job) => Number(/^promotion-\d+-(\d+)$/.exec(job.id ?? "")?.[1] ?? Number.NaN)).filter((at) => Number.isFinite(at));
}
/** When the app logged `msg` for the commit in the environment (pino's `time`), or undefined. */
function loggedAt(msg: string, environment: Env, sha: string): number | undefined {
  for (const line of app?.output().split("\n") ?? []) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { msg?: string; time?: number; environment?: string; sha?: string };
    if (entry.msg === msg && entry.environment === environment && entry.sha === sha) return entry.time;
  }
  return undefined;
}

try {
  app = await startBuiltApp({
    redisUrl: env.redisUrl,
    githubUrl: github.url,
    port,
    jobSigningKey: appKeys.privateKey,
    agentPublicKeys: agentKeys.publicKey,
    cachePrefix: "sluice-bench-promotion-",
  });
  agent = await startSluice(
    "agent",
    {
      ...(await shippedRuntimeEnv("agent")),
      REDIS_URL: env.redisUrl,
      KUBECONFIG: env.kubeconfigPath,
      SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
      SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
      SLUICE_AGENT_ENVIRONMENTS: ENVS.join(","),
      SLUICE_AGENT_REPOSITORIES: `${target.owner}/*`,
      SLUICE_AGENT_NAMESPACES: "bench-promo-*",
      SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
      SLUICE_AGENT_NAMESPACE: "default",
      SLUICE_AGENT_PROBE_PORT: "0",
      SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
      SLUICE_DRIFT_INTERVAL_SECONDS: "0",
    },
    /sluice agent: serving/,
    { built: true },
  );
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfigPath);
  const request = await new Watch(kc).watch(
    "/api/v1/configmaps",
    {},
    (_type, object: { metadata?: { name?: string; namespace?: string }; data?: { version?: string } }) => {
      const key = `${object.metadata?.namespace ?? ""}/${object.data?.version ?? ""}`;
      const names = written.get(key) ?? new Set<string>();
      names.add(object.metadata?.name ?? "");
      written.set(key, names);
      if (names.size === objectCount && !liveAt.has(key)) liveAt.set(key, Date.now());
    },
    () => undefined,
  );
  stopWatch = () => {
    request.abort();
  };

  const plain: number[] = [];
  const soaked: number[] = [];
  const decided: number[] = [];
  const soakStartLag: number[] = [];
  const overhead: number[] = [];
  const writesBefore: number[] = [];
  const approved: number[] = [];
  // Round 0 warms everything up (namespaces, checkouts, connections) and is not counted.
  for (let v = 0; v <= promotionCount; v++) {
    const number = 100 + v;
    const { sha, sentAt } = await merge(v, number);
    await until(() => live("dev", v) !== undefined, `dev at version ${v}`);
    await until(() => live("staging", v) !== undefined, `staging at version ${v}`);
    // The soak's end: the last promotion check the app queued before it promoted the commit (the
    // checks between the push and it are the push's own and the one for dev's deploy ending, both earlier).
    const promotedAt = loggedAt("commit promoted", "staging", sha);
    if (promotedAt === undefined) throw new Error(`the app did not log "commit promoted" for staging at ${sha}`);
    const soakEnd = Math.max(...(await checkMoments()).filter((at) => at > sentAt && at <= promotedAt));
    if (!Number.isFinite(soakEnd)) throw new Error(`no promotion check was queued between the push of ${sha} and its promotion`);
    // Production waits for its approval; the check run says so before the approval is given.
    await until(
      () =>
        [...github.checkRuns.values()].some(
          (r) =>
            r.head_sha === sha && r.name === deployCheckName("production") && r.output?.title?.startsWith("Waiting for approval") === true,
        ),
      `production waiting for approval of version ${v}`,
    );
    const approvedAt = await approve(number);
    await until(() => live("production", v) !== undefined, `production at version ${v}`);
    if (v === 0) continue;
    plain.push((live("dev", v) ?? 0) - sentAt);
    soaked.push((live("staging", v) ?? 0) - soakEnd);
    decided.push(promotedAt - soakEnd);
    soakStartLag.push(soakEnd - soakMs - (live("dev", v) ?? 0));
    overhead.push((live("staging", v) ?? 0) - (live("dev", v) ?? 0) - soakMs);
    writesBefore.push(
      github.requests.filter(
        (r) =>
          r.at >= (live("dev", v) ?? 0) &&
          r.at <= soakEnd - soakMs &&
          r.method !== "GET" &&
          r.operationId !== "apps/create-installation-access-token",
      ).length,
    );
    approved.push((live("production", v) ?? 0) - approvedAt);
  }
  const figure = (values: readonly number[]) => `p50 ${Math.round(median(values))} ms, p95 ${Math.round(percentile(values, 95))} ms`;
  const peer = median(plain);
  console.log(`${promotionCount} merges of ${objectCount} ConfigMaps (and their namespace) to each of dev, staging and production:`);
  console.log(`  peer, a plain merge (dev): push → live ${figure(plain)}`);
  console.log(
    `  promotion (staging, soak ${values.soak} after dev): soak end → live ${figure(soaked)} (goal p50 ≤ 1000 ms); p50 / plain push → live = ${(median(soaked) / peer).toFixed(2)}`,
  );
  console.log(`    of which soak end → the app's "commit promoted": ${figure(decided)}`);
  console.log(
    `    dev live → staging live, beyond the soak: ${figure(overhead)}; of which dev live → the soak's start (the app records dev's deploy end once its GitHub writes are out): ${figure(soakStartLag)}, after a median ${median(writesBefore)} GitHub writes`,
  );
  console.log(
    `  approval (production, /approve by a maintainer): comment → live ${figure(approved)} (goal p50 ≤ 1000 ms); p50 / plain push → live = ${(median(approved) / peer).toFixed(2)}`,
  );
  if (github.violations.length > 0) console.log(`fake GitHub saw requests GitHub would refuse:\n  ${github.violations.join("\n  ")}`);
} finally {
  stopWatch?.();
  await promotions.close();
  await agent?.stop();
  await app?.stop();
  await github.stop();
  await env.stop();
}
