import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PREVIEW_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { agentQueue } from "../../src/core/agent-protocol.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { pullRequestPayload, pushPayload } from "../helpers/payloads.ts";

// GitHub delivers at least once: the same delivery comes again (the Redeliver button, a timeout on
// its side), at once or later, and a second hook can send the same event under another id. Each
// must leave exactly one of everything.

const target = { owner: "redelivery", repo: "shop", repoId: 7400, installation: 74 };
const config = "version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: shop\n";
const cm = (value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: "${value}"\n`;
const base = "1".repeat(40);
const head = "2".repeat(40);
let h: AppHarness;

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 5,
    deployKeys: { jobSigningKey: generateSigningKeys().privateKey, agentPublicKeys: generateSigningKeys().publicKey },
  });
  h.github.addRepo(target.owner, target.repo, target.repoId);
  await h.github.addCommit(
    target.owner,
    target.repo,
    base,
    await checkout(undefined, { ".github/sluice.yml": config, "manifests/app.yaml": cm("1") }),
  );
  await h.github.addCommit(
    target.owner,
    target.repo,
    head,
    await checkout(undefined, { ".github/sluice.yml": config, "manifests/app.yaml": cm("2") }),
  );
  h.github.setBranch(target.owner, target.repo, "main", base);
});

afterAll(async () => {
  await h.stop();
  await removeCheckouts();
});

/** Sends `payload` three times at once and three times one after another, under `ids(i)`. */
async function sixTimes(event: string, payload: unknown, ids: (i: number) => string): Promise<void> {
  const statuses = await Promise.all([0, 1, 2].map((i) => h.deliver(event, payload, ids(i)).then((r) => r.status)));
  for (const i of [3, 4, 5]) statuses.push((await h.deliver(event, payload, ids(i))).status);
  expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
}

async function jobsOf(queue: Queue): Promise<string[]> {
  const jobs = await queue.getJobs(["waiting", "active", "delayed", "completed", "failed", "prioritized"]);
  return jobs.map((j) => j.id ?? "");
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 2_000));

describe("redelivered webhooks", { timeout: 120_000 }, () => {
  it("a pull_request delivered six times, at once and in sequence, makes one preview job, one comment and one check run", async () => {
    const delivery = randomUUID();
    await sixTimes("pull_request", pullRequestPayload(target, "opened", 3, base, head), () => delivery);
    await expect.poll(() => h.github.comments.filter((c) => c.body.includes(PREVIEW_MARKER)).length, { timeout: 60_000 }).toBe(1);
    await settle();
    const previews = new Queue(PREVIEW_QUEUE, { connection: h.redis, prefix: QUEUE_PREFIX });
    try {
      const jobs = (await jobsOf(previews)).filter((id) => id.includes(head));
      const comments = h.github.comments.filter((c) => c.body.includes(PREVIEW_MARKER)).length;
      const runs = [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === "sluice/preview").length;
      console.log(`redelivery: 6 deliveries of one pull_request → ${jobs.length} preview job, ${comments} comment, ${runs} check run`);
      expect([jobs.length, comments, runs]).toEqual([1, 1, 1]);
    } finally {
      await previews.close();
    }
  });

  it("a push delivered six times, under one id and under six, queues one deploy job per environment and commit, with one check run and one Deployment", async () => {
    h.github.setBranch(target.owner, target.repo, "main", head);
    const payload = pushPayload(target, head);
    const delivery = randomUUID();
    await sixTimes("push", payload, () => delivery);
    await sixTimes("push", payload, () => randomUUID());
    const agents = new Queue(agentQueue("production").name, { connection: h.redis, prefix: agentQueue("production").prefix });
    try {
      await expect.poll(async () => (await jobsOf(agents)).filter((id) => id.includes(head)).length, { timeout: 60_000 }).toBe(1);
      await settle();
      const jobs = (await jobsOf(agents)).filter((id) => id.includes(head));
      const runs = [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === "sluice/deploy (production)").length;
      const deployments = h.github.deploymentsCreated.filter((d) => d.ref === head).length;
      console.log(
        `redelivery: 12 deliveries of one push (6 under one id, 6 under their own) → ${jobs.length} deploy job, ${runs} check run, ${deployments} Deployment`,
      );
      expect([jobs.length, runs, deployments]).toEqual([1, 1, 1]);
    } finally {
      await agents.close();
    }
  });
});
