import { randomUUID } from "node:crypto";
import { ApiException, KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { deployCheckName } from "../../src/core/check-names.ts";
import { PIPELINE_MARKER } from "../../src/core/pipeline-comment.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import type { RunningAgent } from "../../src/agent/start.ts";
import { PROMOTION_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import type { AppHarness } from "../helpers/app-harness.ts";
import { botReplies, reachPromotionChecks, startPromotionAgent, startPromotionHarness } from "../helpers/promotion-agent.ts";
import { commentPayload, pushPayload } from "../helpers/payloads.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import type { FakeCheckRun } from "../helpers/fake-github.ts";

// Promotion on the real apiserver and Redis, GitHub faked: dev → staging → production with soaks,
// production's approval, a freeze on another branch. The app's clock is the harness's: a soak's
// end is reached by moving the clock and running the promotion check the app queued for it.

const OWNER = "sluice-promo";
const REPO = "shop";
const REPO_ID = 9300;
const target = { owner: OWNER, repo: REPO, repoId: REPO_ID, installation: 61 };
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const suffix = randomUUID().slice(0, 6);
const ENVS = ["dev", "staging", "production", "eu"] as const;
type Env = (typeof ENVS)[number];
const ns = Object.fromEntries(ENVS.map((e) => [e, `deploy-promo-${e}-${suffix}`])) as Record<Env, string>;
const SOAK_MS = 10 * 60_000;
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent;
let promotions: Queue;
let nextSha = 1;
let nextComment = 70_000;
const sha = (): string => (nextSha++).toString(16).padStart(40, "e");
/** The freeze of `eu`: from the harness clock's start (2026-11-27 12:00 UTC) for two hours. */
const config = `version: 1
environments:
  - name: dev
    path: envs/dev
    namespace: ${ns.dev}
  - name: staging
    path: envs/staging
    namespace: ${ns.staging}
    promotion: { after: dev, soak: 10m }
  - name: production
    path: envs/production
    namespace: ${ns.production}
    promotion: { after: staging, soak: 10m }
    approval: { required: 1, from: maintain, notAuthor: true }
  - name: eu
    path: envs/eu
    namespace: ${ns.eu}
    branch: release
    freeze:
      - { from: "2026-11-27T11:00", until: "2026-11-27T14:00", timezone: UTC, reason: "quarter close" }
`;

function files(version: string, broken = false): Record<string, string> {
  const out: Record<string, string> = { ".github/sluice.yml": config };
  for (const env of ENVS) {
    out[`envs/${env}/ns.yaml`] = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns[env]}\n`;
    out[`envs/${env}/cm.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`;
    // An object in a namespace that does not exist: the apiserver refuses it, and the deploy fails.
    if (broken)
      out[`envs/${env}/lost.yaml`] =
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lost\n  namespace: deploy-promo-nowhere-${suffix}\n`;
  }
  return out;
}

/** Merges pull request `number` (by `author`) as a new commit of `version` and pushes `branch` there. */
async function merge(
  number: number,
  version: string,
  options: { branch?: string; author?: string; broken?: boolean } = {},
): Promise<string> {
  const branch = options.branch ?? "main";
  const id = sha();
  await h.github.addCommit(OWNER, REPO, id, await checkout(undefined, files(version, options.broken)));
  h.github.setBranch(OWNER, REPO, branch, id);
  h.github.setMergedPull(OWNER, REPO, { number, merge: id, branch, author: options.author ?? "carol" });
  await h.deliver("push", pushPayload(target, id, `refs/heads/${branch}`));
  return id;
}

const runs = (commit: string, env: Env): FakeCheckRun[] =>
  [...h.github.checkRuns.values()].filter((r) => r.head_sha === commit && r.name === deployCheckName(env));
const titleOf = (commit: string, env: Env): string | undefined => runs(commit, env).at(-1)?.output?.title ?? undefined;
const deployed = (commit: string, env: Env) =>
  expect.poll(() => titleOf(commit, env), { timeout: 60_000, interval: 200 }).toMatch(/^Deployed/);

async function liveVersion(env: Env): Promise<string | undefined> {
  try {
    const live = (await kube.read({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: ns[env] } })) as {
      data?: Record<string, string>;
    };
    return live.data?.version;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

/** The promotion checks the app has queued for later, by the moment they are for. */
async function delayedChecks(): Promise<number[]> {
  const jobs = await promotions.getDelayed();
  return jobs.map((j) => Number(/-(\d+)$/.exec(j.id ?? "")?.[1] ?? 0)).sort((a, b) => a - b);
}

/** Moves the app's clock to `at` and runs, now, the promotion checks queued for moments up to it (and those they queue). */
const reach = (at: number): Promise<void> => reachPromotionChecks(h, promotions, at);

async function comment(number: number, body: string, user: string): Promise<void> {
  await h.deliver("issue_comment", commentPayload(target, number, nextComment++, body, user));
}
const replies = (number: number): string[] => botReplies(h, number);
/** The pipeline comments on pull request `number`: there is one, edited as its commit moves. */
const pipelineComments = (number: number): string[] =>
  h.github.comments.filter((c) => c.issue === number && c.body.startsWith(PIPELINE_MARKER)).map((c) => c.body);
/** The one pipeline comment of pull request `number`, once it says what `expected` matches. */
async function pipelineSays(number: number, expected: RegExp): Promise<void> {
  await expect.poll(() => pipelineComments(number).at(-1), { timeout: 30_000 }).toMatch(expected);
  expect(pipelineComments(number)).toHaveLength(1);
}

beforeAll(async () => {
  h = await startPromotionHarness({
    database: 16,
    repository: { owner: OWNER, repo: REPO, repoId: REPO_ID },
    config,
    keys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    firstCommit: sha(),
  });
  h.github.setPermission(OWNER, REPO, "carol", "maintain");
  h.github.setPermission(OWNER, REPO, "mallory", "write");
  h.github.setPermission(OWNER, REPO, "maya", "maintain");
  h.github.setPermission(OWNER, REPO, "ada", "admin");
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  const agentNamespace = `sluice-promo-${suffix}`;
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  agent = await startPromotionAgent(h, {
    kubeconfigPath: inject("kubeconfigPath"),
    appPublicKey: appKeys.publicKey,
    agentPrivateKey: agentKeys.privateKey,
    environments: ENVS,
    owner: OWNER,
    namespace: agentNamespace,
  });
  promotions = new Queue(PROMOTION_QUEUE, { connection: { url: h.redisUrl }, prefix: QUEUE_PREFIX });
});

afterAll(async () => {
  await promotions.close();
  await agent.stop();
  await h.stop();
  for (const name of [...Object.values(ns), `sluice-promo-${suffix}`])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});

afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

describe("promotion", { timeout: 240_000 }, () => {
  const shas: Record<string, string> = {};
  /** When a's soak in dev ends. */
  let aSoaked = 0;

  it("holds a merge during a freeze, applies the newest when the freeze ends, and an admin's override applies at once", async () => {
    // The harness clock starts at 12:00 UTC on Friday 27 November 2026, inside eu's freeze (11:00–14:00).
    expect(h.clock.now).toBeLessThan(Date.UTC(2026, 10, 27, 13, 0));
    shas.e1 = await merge(7, "e1", { branch: "release" });
    await expect.poll(() => titleOf(shas.e1 ?? "", "eu"), { timeout: 30_000 }).toBe("Frozen until Friday 14:00 UTC");
    shas.e2 = await merge(8, "e2", { branch: "release" });
    await expect.poll(() => titleOf(shas.e2 ?? "", "eu"), { timeout: 30_000 }).toBe("Frozen until Friday 14:00 UTC");
    await expect.poll(() => titleOf(shas.e1 ?? "", "eu"), { timeout: 30_000 }).toMatch(/^Not deployed/);
    expect(await liveVersion("eu")).toBeUndefined();
    // A writer cannot override; an admin can, and the deploy applies at once, recorded.
    await comment(8, "/sync eu --override-freeze customer outage", "carol");
    await expect.poll(() => replies(8).length, { timeout: 30_000 }).toBe(1);
    expect(replies(8)[0]).toMatch(/needs \*\*admin\*\* permission/);
    await comment(8, "/sync eu --override-freeze customer outage", "ada");
    await expect.poll(() => liveVersion("eu"), { timeout: 60_000 }).toBe("e2");
    expect(replies(8)[1]).toMatch(/^@ada overrode the freeze of `eu`.*Reason: customer outage/s);
    // A merge after the override waits again, and applies when the freeze ends.
    shas.e3 = await merge(9, "e3", { branch: "release" });
    await expect.poll(() => titleOf(shas.e3 ?? "", "eu"), { timeout: 30_000 }).toBe("Frozen until Friday 14:00 UTC");
    expect(await delayedChecks()).toContain(Date.UTC(2026, 10, 27, 14, 0));
    await reach(Date.UTC(2026, 10, 27, 14, 0));
    await deployed(shas.e3, "eu");
    expect(await liveVersion("eu")).toBe("e3");
  });

  it("deploys a merge to dev at once; staging and production wait with check runs that say what for", async () => {
    const before = h.clock.now;
    shas.a = await merge(1, "a");
    await deployed(shas.a, "dev");
    expect(await liveVersion("dev")).toBe("a");
    await expect.poll(() => titleOf(shas.a ?? "", "staging"), { timeout: 30_000 }).toMatch(/^Soaking in dev: ends \d\d:\d\d UTC$/);
    expect(titleOf(shas.a, "production")).toBe("Waiting for staging");
    expect(runs(shas.a, "staging").map((r) => r.status)).toEqual(["queued"]);
    // The merged pull request shows where its commit is, in one comment; its deploys comment nothing themselves.
    await pipelineSays(
      1,
      /\*\*Pipeline of `\w{7}`:\*\* `dev` ✓ deployed \d\d:\d\d UTC · `staging` soaking in dev: ends \d\d:\d\d UTC · `production` waiting for staging$/,
    );
    expect(h.github.comments.filter((c) => c.issue === 1 && c.body.includes("Deployed"))).toEqual([]);
    // Someone deletes it: the next change makes it again (one comment still).
    h.github.comments.splice(
      h.github.comments.findIndex((c) => c.issue === 1 && c.body.startsWith(PIPELINE_MARKER)),
      1,
    );
    // The soak's end is a check queued in Redis, for the moment dev's deploy ended plus the soak.
    await expect.poll(delayedChecks, { timeout: 30_000 }).toHaveLength(1);
    const checks = await delayedChecks();
    aSoaked = checks[0] ?? 0;
    expect(aSoaked).toBeGreaterThanOrEqual(before + SOAK_MS);
    expect(aSoaked).toBeLessThanOrEqual(h.clock.now + SOAK_MS);
    expect(await liveVersion("staging")).toBeUndefined();
  });

  it("does not restart a soak for newer merges: staging takes each commit once it has soaked, the newest first", async () => {
    // Merges every 4 minutes, faster than the soak: with a clock that restarts, staging would starve.
    h.clock.now = aSoaked - SOAK_MS + 4 * 60_000;
    shas.b = await merge(2, "b");
    await deployed(shas.b, "dev");
    await expect.poll(() => titleOf(shas.b ?? "", "staging"), { timeout: 30_000 }).toMatch(/^Soaking in dev/);
    h.clock.now = aSoaked - SOAK_MS + 8 * 60_000;
    shas.c = await merge(3, "c");
    await deployed(shas.c, "dev");
    await expect.poll(() => titleOf(shas.c ?? "", "staging"), { timeout: 30_000 }).toMatch(/^Soaking in dev/);
    // Only the soonest soak's end is queued: each check queues the next.
    await expect.poll(delayedChecks, { timeout: 30_000 }).toEqual([aSoaked]);
    // a's soak ends first: staging gets a, while b and c soak on.
    await reach(aSoaked);
    await deployed(shas.a ?? "", "staging");
    expect(await liveVersion("staging")).toBe("a");
    expect(titleOf(shas.b, "staging")).toMatch(/^Soaking in dev/);
    // b's soak ends 10 minutes after its own deploy, not after c's: staging takes b, not c.
    await expect.poll(async () => (await delayedChecks()).length, { timeout: 30_000 }).toBeGreaterThan(0);
    const [bSoaked = 0] = await delayedChecks();
    expect(bSoaked).toBeLessThan(aSoaked + 6 * 60_000);
    await reach(bSoaked);
    await deployed(shas.b, "staging");
    expect(await liveVersion("staging")).toBe("b");
    expect(titleOf(shas.c, "staging")).toMatch(/^Soaking in dev/);
    // Production soaks a and b in staging meanwhile.
    await expect.poll(() => titleOf(shas.b ?? "", "production"), { timeout: 30_000 }).toMatch(/^Soaking in staging/);
  });

  it("holds production for approval: the author's and merger's approvals are refused, a maintainer's deploys it", async () => {
    const stagingA = runs(shas.a ?? "", "staging").at(-1);
    expect(stagingA?.conclusion).toBe("success");
    // The waiting deploy's Deployment status is still on its way to GitHub (held here until the
    // end) when the approval comes: the deploy goes all the same, for the write waits its turn
    // outside the deploy's lock.
    const releaseStatuses = h.github.pause("repos/create-deployment-status");
    try {
      // Past the soak of a and b in staging: production takes the newest that soaked, b.
      await reach(h.clock.now + SOAK_MS + 60_000);
      await expect.poll(() => titleOf(shas.b ?? "", "production"), { timeout: 60_000 }).toBe("Waiting for approval (0 of 1)");
      expect(titleOf(shas.a ?? "", "production")).toMatch(/^Not deployed: \w{7} went instead$/);
      const waiting = runs(shas.b ?? "", "production").at(-1);
      expect(waiting?.actions?.map((a) => a.identifier)).toEqual(["approve"]);
      await pipelineSays(
        2,
        /`staging` ✓ deployed \d\d:\d\d UTC · `production` waiting for approval\n\nApprove with .*`\/approve production`/,
      );
      // carol wrote pull request 2 (Codertocat merged it); mallory lacks maintain.
      await comment(2, "/approve production", "carol");
      await comment(2, "/approve production", "mallory");
      await expect.poll(() => replies(2).length, { timeout: 30_000 }).toBe(2);
      expect(replies(2)[0]).toMatch(/^Sorry @carol, your approval of `production` is not counted.*carol authored the pull request/);
      expect(replies(2)[1]).toMatch(/^Sorry @mallory, .*maintain/);
      expect(await liveVersion("production")).toBeUndefined();
      await comment(2, "/approve production", "maya");
      await expect.poll(() => liveVersion("production"), { timeout: 60_000, interval: 200 }).toBe("b");
    } finally {
      releaseStatuses();
    }
    await deployed(shas.b ?? "", "production");
    expect(replies(2)[2]).toMatch(/^@maya approved the deploy of `\w{7}` to `production`: 1 of 1 approval; deploying now\.$/);
    // Both merged pull requests' commits are live everywhere now: a by b, which contains it.
    for (const number of [1, 2])
      await pipelineSays(number, /`production` ✓ deployed \d\d:\d\d UTC\n\n✅ Deployed to every environment: dev, staging, production\.$/);
  });

  it("stops the line at a failed dev deploy until a fix deploys there", async () => {
    shas.bad = await merge(4, "bad", { broken: true });
    await expect.poll(() => titleOf(shas.bad ?? "", "dev"), { timeout: 60_000 }).toMatch(/^(Failed|Rejected)/);
    await expect
      .poll(() => titleOf(shas.bad ?? "", "staging"), { timeout: 30_000 })
      .toBe(`Stopped: dev failed to deploy ${shas.bad.slice(0, 7)}`);
    // However long it waits, nothing of the failed commit reaches staging.
    await reach(h.clock.now + 2 * SOAK_MS);
    expect(titleOf(shas.bad, "staging")).toMatch(/^Stopped/);
    await pipelineSays(4, /`dev` ✗ failed · `staging` stopped: dev failed to deploy \w{7} · `production` waiting for staging$/);
    shas.fix = await merge(5, "fix");
    await deployed(shas.fix, "dev");
    // A minute past the soak of the fix, whose deploy the app saw end a moment after its check run said so.
    await expect.poll(() => titleOf(shas.fix ?? "", "staging"), { timeout: 30_000 }).toMatch(/^Soaking in dev/);
    await expect.poll(async () => (await delayedChecks()).length, { timeout: 30_000 }).toBeGreaterThan(0);
    await reach(h.clock.now + SOAK_MS + 60_000);
    await deployed(shas.fix, "staging");
    expect(await liveVersion("staging")).toBe("fix");
    expect(titleOf(shas.bad, "staging")).toMatch(/^Not deployed/);
  });

  it("/promote skips the rest of a soak, recorded with who and why; without the permission it is refused", async () => {
    shas.d = await merge(6, "d");
    await deployed(shas.d, "dev");
    await expect.poll(() => titleOf(shas.d ?? "", "staging"), { timeout: 30_000 }).toMatch(/^Soaking in dev/);
    await comment(6, "/promote staging hotfix for the checkout bug", "carol");
    await deployed(shas.d, "staging");
    expect(replies(6).at(-1)).toMatch(
      /^@carol promoted `\w{7}` to `staging`, skipping the rest of its soak in `dev`; deploying now\. Reason: hotfix for the checkout bug$/,
    );
    h.github.setPermission(OWNER, REPO, "reader", "read");
    await comment(6, "/promote production because", "reader");
    await expect.poll(() => replies(6).length, { timeout: 30_000 }).toBe(2);
    expect(replies(6).at(-1)).toMatch(/^Sorry @reader, `\/promote` needs \*\*write\*\* permission/);
  });
});
