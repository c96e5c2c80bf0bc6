import { randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { RunningAgent } from "../../src/agent/start.ts";
import { PROMOTION_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import type { AppHarness } from "../helpers/app-harness.ts";
import { checkRunActionPayload, commentPayload, pushPayload } from "../helpers/payloads.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { botReplies, reachPromotionChecks, startPromotionAgent, startPromotionHarness } from "../helpers/promotion-agent.ts";
import { FakeGitHub, type FakeCheckRun } from "../helpers/fake-github.ts";

// The approval gate played against: an approval must count only for the deploy the approver saw,
// and the four-eyes rule must hold for every change a deploy brings, not only its newest commit.
// What is asserted is whether the app counts an approval; an agent applies the promotion line's
// upstream environment (`dev`, branch release), whose healthy deploys soak commits for `live`.

const OWNER = "sluice-gate-attack";
const REPO = "shop";
const REPO_ID = 9400;
const target = { owner: OWNER, repo: REPO, repoId: REPO_ID, installation: 62 };
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const suffix = randomUUID().slice(0, 6);
const ns = { dev: `deploy-gate-attack-dev-${suffix}`, live: `deploy-gate-attack-live-${suffix}` };
const SOAK_MS = 10 * 60_000;
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent;
let promotions: Queue;
let nextSha = 1;
let nextComment = 80_000;
const sha = (): string => (nextSha++).toString(16).padStart(40, "d");
const config = `version: 1
environments:
  - name: production
    path: envs/production
    namespace: deploy-gate-attack
    approval: { required: 1, from: maintain, notAuthor: true }
  - name: dev
    path: envs/dev
    namespace: ${ns.dev}
    branch: release
  - name: live
    path: envs/live
    namespace: ${ns.live}
    branch: release
    promotion: { after: dev, soak: 10m }
    approval: { required: 1, from: maintain, notAuthor: true }
`;
const cm = (version: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`;
const files = (version: string): Record<string, string> => ({
  ".github/sluice.yml": config,
  "envs/production/cm.yaml": cm(version),
  "envs/dev/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns.dev}\n`,
  "envs/dev/cm.yaml": cm(version),
  "envs/live/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns.live}\n`,
  "envs/live/cm.yaml": cm(version),
});

/** Merges pull request `number`, written by `author`, as a new commit of `version` on `branch`. */
async function merge(number: number, version: string, author: string, branch = "main"): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, REPO, id, await checkout(undefined, files(version)));
  h.github.setBranch(OWNER, REPO, branch, id);
  h.github.setMergedPull(OWNER, REPO, { number, merge: id, branch, author });
  await h.deliver("push", pushPayload(target, id, `refs/heads/${branch}`));
  return id;
}

const runs = (commit: string, env = "production"): FakeCheckRun[] =>
  [...h.github.checkRuns.values()].filter((r) => r.head_sha === commit && r.name === deployCheckName(env));
const titleOf = (commit: string, env = "production"): string | undefined => runs(commit, env).at(-1)?.output?.title ?? undefined;

const replies = (number: number): string[] => botReplies(h, number);

beforeAll(async () => {
  h = await startPromotionHarness({
    database: 18,
    repository: { owner: OWNER, repo: REPO, repoId: REPO_ID },
    config,
    keys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    firstCommit: sha(),
  });
  for (const login of ["mallory", "carol", "maya"]) h.github.setPermission(OWNER, REPO, login, "maintain");
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  const agentNamespace = `sluice-gate-attack-${suffix}`;
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  agent = await startPromotionAgent(h, {
    kubeconfigPath: inject("kubeconfigPath"),
    appPublicKey: appKeys.publicKey,
    agentPrivateKey: agentKeys.privateKey,
    environments: ["dev", "live"],
    owner: OWNER,
    namespace: agentNamespace,
  });
  promotions = new Queue(PROMOTION_QUEUE, { connection: { url: h.redisUrl }, prefix: QUEUE_PREFIX });
});

afterAll(async () => {
  await promotions.close();
  await agent.stop();
  await h.stop();
  for (const name of [...Object.values(ns), `sluice-gate-attack-${suffix}`])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});

afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

describe("approval gate attacks", { timeout: 120_000 }, () => {
  const shas: Record<string, string> = {};

  it("an Approve button pressed on a replaced deploy's check run does not approve the newer deploy", async () => {
    shas.a = await merge(1, "a", "carol");
    await expect.poll(() => titleOf(shas.a ?? ""), { timeout: 30_000 }).toBe("Waiting for approval (0 of 1)");
    const stale = runs(shas.a).at(-1);
    shas.b = await merge(2, "b", "carol");
    await expect.poll(() => titleOf(shas.b ?? ""), { timeout: 30_000 }).toBe("Waiting for approval (0 of 1)");
    await expect.poll(() => titleOf(shas.a ?? ""), { timeout: 30_000 }).toMatch(/^Not deployed/);
    // maya saw a's check run (from a notification, or an open tab) and presses its Approve button.
    await h.deliver(
      "check_run",
      checkRunActionPayload(
        target,
        { id: stale?.id ?? 0, name: deployCheckName("production"), head_sha: shas.a, output: {} },
        FakeGitHub.APP_ID,
        "approve",
        "maya",
      ),
    );
    const audit = (): string => runs(shas.a ?? "").at(-1)?.output?.summary ?? "";
    await expect.poll(audit, { timeout: 30_000 }).toMatch(/pressed by @maya/);
    expect(audit()).toMatch(/pressed by @maya: Sorry @maya, your approval of `production` is not counted.*no longer waits for approval/s);
    expect(titleOf(shas.b)).toBe("Waiting for approval (0 of 1)");
  });

  it("the author of a change a newer merge carries along cannot approve the deploy that brings it", async () => {
    // b waits; mallory merges c, then carol merges d: the waiting deploy is now d, which brings c.
    shas.c = await merge(3, "c", "mallory");
    await expect.poll(() => titleOf(shas.c ?? ""), { timeout: 30_000 }).toBe("Waiting for approval (0 of 1)");
    shas.d = await merge(4, "d", "carol");
    await expect.poll(() => titleOf(shas.d ?? ""), { timeout: 30_000 }).toBe("Waiting for approval (0 of 1)");
    await h.deliver("issue_comment", commentPayload(target, 4, nextComment++, "/approve production", "mallory"));
    await expect.poll(() => replies(4).length, { timeout: 30_000 }).toBe(1);
    expect(replies(4)[0]).toMatch(/^Sorry @mallory, your approval of `production` is not counted.*mallory authored the pull request/s);
    expect(titleOf(shas.d)).toBe("Waiting for approval (0 of 1)");
    // Someone who wrote and merged none of it may.
    await h.deliver("issue_comment", commentPayload(target, 4, nextComment++, "/approve production", "maya"));
    await expect.poll(() => replies(4).length, { timeout: 30_000 }).toBe(2);
    expect(replies(4)[1]).toMatch(/^@maya approved the deploy of `\w{7}` to `production`: 1 of 1 approval; deploying now\.$/);
  });

  it("the author of a commit promoted along with a newer one cannot approve the promotion that brings it", async () => {
    // mallory's e and carol's f soak together in dev; live takes the newest, f, which contains e.
    shas.e = await merge(5, "e", "mallory", "release");
    await expect.poll(() => titleOf(shas.e ?? "", "dev"), { timeout: 60_000 }).toMatch(/^Deployed/);
    shas.f = await merge(6, "f", "carol", "release");
    await expect.poll(() => titleOf(shas.f ?? "", "dev"), { timeout: 60_000 }).toMatch(/^Deployed/);
    await expect.poll(() => titleOf(shas.f ?? "", "live"), { timeout: 60_000 }).toMatch(/^Soaking in dev/);
    await reachPromotionChecks(h, promotions, h.clock.now + SOAK_MS + 60_000);
    await expect.poll(() => titleOf(shas.f ?? "", "live"), { timeout: 60_000 }).toBe("Waiting for approval (0 of 1)");
    await h.deliver("issue_comment", commentPayload(target, 6, nextComment++, "/approve live", "mallory"));
    await expect.poll(() => replies(6).length, { timeout: 30_000 }).toBe(1);
    expect(replies(6)[0]).toMatch(/^Sorry @mallory, your approval of `live` is not counted.*mallory authored the pull request/s);
    expect(titleOf(shas.f)).toBeUndefined();
    expect(titleOf(shas.f, "live")).toBe("Waiting for approval (0 of 1)");
  });
});
