import { randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { REPORT_QUEUE } from "../../src/core/agent-protocol.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { ManualClock } from "../helpers/manual-clock.ts";
import { pushPayload } from "../helpers/payloads.ts";
import type { RecordedRequest } from "../helpers/fake-github.ts";

// What a merge writes to GitHub, and in which order (issue 28: fewer GitHub writes per deploy).
// The app's write pacing runs on a clock that moves only when the test moves it, so each write
// waits for its turn until the test lets it go: what is asserted is what the app chose to send,
// never how long anything took. The agent and Redis are real; GitHub is faked at the HTTP layer.

const OWNER = "sluice-writes";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const clock = new ManualClock();
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent | undefined;
let reports: Queue;
const agentNamespace = `sluice-system-${randomUUID().slice(0, 6)}`;
const createdNamespaces: string[] = [];
let nextSha = 1;
let nextRepo = 29_000;
const sha = (): string => (nextSha++).toString(16).padStart(40, "e");

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 29,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    pacingClock: clock,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  const settings = await loadAgentSettings({
    REDIS_URL: h.redisUrl,
    KUBECONFIG: inject("kubeconfigPath"),
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: "production",
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_AGENT_REPOSITORIES: `${OWNER}/*`,
    SLUICE_AGENT_NAMESPACES: "writes-*",
    SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
    SLUICE_AGENT_NAMESPACE: agentNamespace,
  });
  agent = await startAgent(settings, { log: () => undefined, now: h.clock.read });
  reports = new Queue(REPORT_QUEUE.name, { connection: h.redis, prefix: REPORT_QUEUE.prefix });
});
afterAll(async () => {
  await reports.close();
  await agent?.stop();
  await h.stop();
  for (const name of [agentNamespace, ...createdNamespaces])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

/** A repository whose `production` environment deploys five objects (a namespace and four ConfigMaps) on pushes to main. */
async function fiveObjectRepository(): Promise<{ name: string; id: number; head: string; installation: number }> {
  const id = nextRepo++;
  const name = `app-${id}`;
  const namespace = `writes-${randomUUID().slice(0, 8)}`;
  createdNamespaces.push(namespace);
  h.github.addRepo(OWNER, name, id);
  const files: Record<string, string> = {
    ".github/sluice.yml": `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${namespace}\n`,
    "manifests/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n`,
  };
  for (let i = 0; i < 4; i++)
    files[`manifests/cm-${i}.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  key: value-${i}\n`;
  const head = sha();
  await h.github.addCommit(OWNER, name, head, await checkout(undefined, files));
  h.github.setBranch(OWNER, name, "main", head);
  // Its own installation: no other test's writes share its pacing.
  return { name, id, head, installation: id };
}

/** The app's writes to GitHub about repository `name` (token requests and reads aside), in the order they arrived. */
function writes(name: string): RecordedRequest[] {
  return h.github.requests.filter((r) => r.method !== "GET" && r.path.startsWith(`/repos/${OWNER}/${name}/`));
}

/** Whether the agent's report `phase` of job `jobId` is on the report queue (applied or not). */
async function reported(jobId: string, phase: string): Promise<boolean> {
  const jobs = await reports.getJobs(["waiting", "active", "delayed", "completed", "prioritized"]);
  return jobs.some((job) => {
    const body = JSON.parse((job.data as { body: string }).body) as { jobId?: string; phase?: string };
    return body.jobId === jobId && body.phase === phase;
  });
}

/** Lets the pacer's next write go, and waits until it reached GitHub. */
async function nextWrite(name: string): Promise<void> {
  const before = writes(name).length;
  const [next = clock.elapsed] = clock.wakeUps;
  clock.advance(next - clock.elapsed);
  await expect.poll(() => writes(name).length, { timeout: 10_000 }).toBe(before + 1);
}

describe("GitHub writes of a deploy", () => {
  it("shows a 5-object merge in progress with its first write, and writes it in five requests, newest state only", async () => {
    const repo = await fiveObjectRepository();
    h.github.setPull(OWNER, repo.name, {
      number: 3,
      base: { sha: sha(), ref: "main" },
      head: { sha: repo.head, ref: "feature" },
      state: "closed",
      draft: false,
      merged: true,
    });
    const target = { owner: OWNER, repo: repo.name, repoId: repo.id, installation: repo.installation };
    expect((await h.deliver("push", pushPayload(target, repo.head))).status).toBe(200);

    // The first write goes out without waiting: the check run, already in progress.
    await expect.poll(() => writes(repo.name).map((w) => w.operationId), { timeout: 30_000 }).toEqual(["checks/create"]);
    expect(writes(repo.name)[0]?.body).toMatchObject({ name: deployCheckName("production"), status: "in_progress" });

    // The agent deploys and reports while the app's next write waits for its turn.
    const jobId = `merge-${repo.id}-production-${repo.head}`;
    await expect.poll(() => reported(jobId, "succeeded"), { timeout: 60_000, interval: 200 }).toBe(true);
    await nextWrite(repo.name);
    // Every report is applied: each object's newest state waits for one turn, the comment for the one after.
    await expect.poll(() => clock.wakeUps, { timeout: 30_000, interval: 100 }).toEqual([2_000, 3_000, 4_000]);
    await nextWrite(repo.name);
    await nextWrite(repo.name);
    await nextWrite(repo.name);

    const sent = writes(repo.name);
    expect(sent.map((w) => w.operationId)).toEqual([
      "checks/create",
      "repos/create-deployment",
      "repos/create-deployment-status",
      "checks/update",
      "issues/create-comment",
    ]);
    expect(sent[2]?.body).toMatchObject({ state: "success", auto_inactive: true });
    expect(sent[3]?.body).toMatchObject({
      status: "completed",
      conclusion: "success",
      output: { title: expect.stringMatching(/^Deployed/) as string },
    });
    expect(sent[4]?.body).toMatchObject({ body: expect.stringMatching(new RegExp(`^🚀 Deployed \`${repo.head.slice(0, 7)}\``)) as string });
    expect(clock.wakeUps).toEqual([]);
  });
});
