import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { DEPLOY_REQUEST_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { commentPayload as comment, pullRequestPayload as pullRequest } from "../helpers/payloads.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { HoldableClock } from "../helpers/holdable-clock.ts";

const OWNER = "sluice-test";
const REPO = "web";
const REPO_ID = 4242;
const INSTALLATION = 777;
let nextSha = 1;
const sha = (): string => (nextSha++).toString(16).padStart(40, "a");

let h: AppHarness;
/** The app's write pacing runs on this, so a test can see which writes the pacing did not hold. */
const pacingClock = new HoldableClock();

beforeAll(async () => {
  const appKeys = generateSigningKeys();
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 1,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: generateSigningKeys().publicKey },
    pacingClock,
  });
  h.github.addRepo(OWNER, REPO, REPO_ID);
});
afterAll(async () => {
  await h.stop();
  await removeCheckouts();
});
afterEach(() => {
  // Every request the app sent must be a real GitHub endpoint with a valid body.
  expect(h.github.violations).toEqual([]);
});

/** Registers a commit made of `fixture` plus `changes`; returns its SHA. */
async function commit(fixture: string | undefined, changes: Record<string, string | null> = {}): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, REPO, id, await checkout(fixture, changes));
  return id;
}

const target = { owner: OWNER, repo: REPO, repoId: REPO_ID, installation: INSTALLATION };
function pullRequestPayload(
  action: string,
  number: number,
  base: string,
  head: string,
  extra: { fork?: boolean; draft?: boolean; merged?: boolean } = {},
): Record<string, unknown> {
  return pullRequest(target, action, number, base, head, extra);
}
function commentPayload(number: number, body: string, user = "octocat", type = "User"): Record<string, unknown> {
  return comment(target, number, 50_000 + number * 10 + h.github.comments.length, body, user, type);
}

const previewComment = (number: number) => h.github.comments.filter((c) => c.issue === number && c.body.includes(PREVIEW_MARKER));
const checkRunsFor = (head: string) => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === "sluice/preview");
const completed = async (head: string) => {
  await expect.poll(() => checkRunsFor(head).map((r) => r.status), { timeout: 60_000, interval: 100 }).toEqual(["completed"]);
  return checkRunsFor(head)[0];
};

describe("pull request previews", () => {
  it("comments the diff and completes the check run on the first open", async () => {
    const base = await commit("kustomize-app");
    const head = await commit("kustomize-app", {
      "deploy/overlays/production/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n",
    });
    const { status } = await h.deliver("pull_request", pullRequestPayload("opened", 1, base, head));
    expect(status).toBe(200);
    const run = await completed(head);
    expect(run?.conclusion).toBe("success");
    expect(run?.output?.summary).toContain("| `production` | 0 | 1 | 0 | 3 | changes |");
    expect(run?.output?.summary).toContain("| `staging` | 0 | 0 | 0 | 0 | no changes (inputs unchanged) |");
    expect(run?.details_url).toMatch(new RegExp(`^${h.url}/sluice/diff/`));
    const [comment] = previewComment(1);
    expect(comment?.body).toContain("### Sluice preview");
    expect(comment?.body).toContain(`\`${base.slice(0, 7)}\`…\`${head.slice(0, 7)}\``);
    expect(comment?.body).toContain("-  replicas: 3\n+  replicas: 5");
    // No live preview here (this repository has no default branch to read its gate from): the
    // live section says so per environment, and the git diff is complete all the same.
    expect(comment?.body).toMatch(/#### Live cluster\n\n\*\*`staging`\*\*: no live preview: .*\n\n\*\*`production`\*\*: no live preview: /);
    // Configuration and both commits were read from GitHub: one tarball request per commit.
    expect(
      h.github
        .calls("repos/download-tarball-archive")
        .map((c) => c.params.ref)
        .sort(),
    ).toEqual([base, head].sort());
    expect(h.github.calls("repos/get-content")[0]?.params).toMatchObject({ path: ".github/sluice.yml" });
  });

  it("fetches both commits while it reads the configuration, not after", async () => {
    const base = await commit("kustomize-app");
    const head = await commit("kustomize-app", {
      "deploy/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 7070\n",
    });
    // The configuration waits; the tarballs do not wait for it.
    const release = h.github.pause("repos/get-content");
    try {
      await h.deliver("pull_request", pullRequestPayload("opened", 88, base, head));
      await expect
        .poll(() => h.github.calls("repos/download-tarball-archive").filter((c) => c.params.ref === head).length, { timeout: 30_000 })
        .toBe(1);
    } finally {
      release();
    }
    expect((await completed(head))?.status).toBe("completed");
  });

  it("edits the same comment after a push and never adds a second one", async () => {
    const base = await commit("kustomize-app");
    const first = await commit("kustomize-app", {
      "deploy/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 8080\n",
    });
    await h.deliver("pull_request", pullRequestPayload("opened", 2, base, first));
    await completed(first);
    const second = await commit("kustomize-app", {
      "deploy/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 9090\n",
    });
    await h.deliver("pull_request", pullRequestPayload("synchronize", 2, base, second));
    await completed(second);
    expect(previewComment(2)).toHaveLength(1);
    expect(previewComment(2)[0]?.body).toContain(second.slice(0, 7));
    expect(previewComment(2)[0]?.body).toContain("+    - port: 9090");
    expect(h.github.calls("issues/update-comment").length).toBeGreaterThanOrEqual(1);
    // The base was fetched once and reused from the checkout cache.
    expect(h.github.calls("repos/download-tarball-archive").filter((c) => c.params.ref === base)).toHaveLength(1);
  });

  it("paces writes per installation, not one write a second for the whole app", async () => {
    // Five installations, each opening a pull request at once. GitHub asks for a second between
    // writes of one installation; an app-wide pacing would space these five check runs 4 s apart.
    const others = await Promise.all(
      [1, 2, 3, 4, 5].map(async (i) => {
        const name = `paced-${i}`;
        h.github.addRepo(OWNER, name, REPO_ID + i);
        const [base, head] = [sha(), sha()];
        await h.github.addCommit(OWNER, name, base, await checkout("kustomize-app"));
        await h.github.addCommit(OWNER, name, head, await checkout("kustomize-app"));
        return { target: { owner: OWNER, repo: name, repoId: REPO_ID + i, installation: INSTALLATION + i }, base, head };
      }),
    );
    const created = () =>
      others.filter((o) => h.github.calls("checks/create").some((c) => (c.body as { head_sha?: string }).head_sha === o.head)).length;
    // No pacing wait ends until every check run is there: each is its installation's first write.
    pacingClock.hold();
    const deliveries = others.map((o) => h.deliver("pull_request", pullRequest(o.target, "opened", 1, o.base, o.head)));
    try {
      await expect.poll(created, { timeout: 30_000, interval: 50 }).toBe(others.length);
    } finally {
      pacingClock.release();
    }
    for (const delivery of deliveries) expect((await delivery).status).toBe(200);
    for (const o of others) await completed(o.head);
  });

  it("changes nothing when a webhook is redelivered", async () => {
    const base = await commit("plain-app");
    const head = await commit("plain-app", { "manifests/namespace.yaml": null });
    const payload = pullRequestPayload("opened", 3, base, head);
    await h.deliver("pull_request", payload, "delivery-3");
    await completed(head);
    const before = h.github.requests.length;
    const { status } = await h.deliver("pull_request", payload, "delivery-3");
    expect(status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(h.github.requests.length).toBe(before);
    expect(checkRunsFor(head)).toHaveLength(1);
  });

  it("ends the check run as failed when every attempt at a preview fails, instead of leaving it in progress", async () => {
    const base = await commit("kustomize-app");
    // A head GitHub cannot serve: every attempt fails to fetch it.
    const head = sha();
    await h.deliver("pull_request", pullRequestPayload("opened", 40, base, head));
    const run = await completed(head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.title).toBe("Preview failed");
    expect(run?.output?.summary).toContain("The preview could not be produced");
    expect(h.github.calls("repos/download-tarball-archive").filter((c) => c.params.ref === head)).toHaveLength(3);
  });

  it("fails the check run with annotations on invalid YAML", async () => {
    const base = await commit("plain-app");
    const head = await commit("plain-app", {
      "manifests/apps/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  key: [unclosed\n",
    });
    await h.deliver("pull_request", pullRequestPayload("opened", 4, base, head));
    const run = await completed(head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.annotations).toEqual([
      expect.objectContaining({ path: "manifests/apps/broken.yaml", start_line: 7, annotation_level: "failure" }),
    ]);
    expect(previewComment(4)[0]?.body).toContain("`manifests/apps/broken.yaml:7`");
  });

  it("keeps a huge diff under 65,536 characters with a complete summary and a signed link to the rest", async () => {
    const many = (version: number) =>
      Array.from(
        { length: 400 },
        (_, i) =>
          `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: shop\ndata:\n${Array.from({ length: 12 }, (_, k) => `  key${k}: value-${version}-${i}-${k}`).join("\n")}\n`,
      ).join("---\n");
    const base = await commit("plain-app", { "manifests/many.yaml": many(1) });
    const head = await commit("plain-app", { "manifests/many.yaml": many(2) });
    await h.deliver("pull_request", pullRequestPayload("opened", 5, base, head));
    const run = await completed(head);
    const [comment] = previewComment(5);
    expect(comment?.body.length).toBeLessThanOrEqual(65_536);
    expect(comment?.body).toContain("| `default` | 0 | 400 | 0 | 5 | changes |");
    expect(comment?.body).toMatch(/\*\*\d+ diffs not shown here\*\*/);
    const link = /\[Open the full diff\]\(([^)]+)\)/.exec(comment?.body ?? "")?.[1] ?? "";
    expect(link).toBe(run?.details_url);
    const page = await fetch(link);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("d2h-file-side-diff");
    expect(html).toContain("cm-399");
    const forged = await fetch(link.replace(/sig=[^&]+/, "sig=AAAA"));
    expect(forged.status).toBe(403);
    expect(await forged.text()).toBe("Forbidden\n");
    h.clock.now += 31 * 24 * 3600 * 1000;
    try {
      const expired = await fetch(link);
      expect(expired.status).toBe(410);
      expect(await expired.text()).toBe("Gone\n");
    } finally {
      h.clock.now -= 31 * 24 * 3600 * 1000;
    }
  });

  it("never sends a Secret value to GitHub", async () => {
    const base = await commit("kustomize-app");
    const head = await commit("kustomize-app", {
      "deploy/overlays/production/secret.yaml":
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-credentials\ntype: Opaque\nstringData:\n  DATABASE_PASSWORD: n3w-pa55w0rd-value\n  API_TOKEN: tok_live_4f9a8b7c6d5e\n",
    });
    await h.deliver("pull_request", pullRequestPayload("opened", 6, base, head));
    await completed(head);
    expect(previewComment(6)[0]?.body).toContain("`DATABASE_PASSWORD` changed");
    const sent = JSON.stringify(h.github.requests.map((r) => r.body));
    for (const value of ["n3w-pa55w0rd-value", "correct-horse-battery-staple", "tok_live_4f9a8b7c6d5e"]) {
      expect(sent).not.toContain(value);
      expect(sent).not.toContain(Buffer.from(value).toString("base64"));
    }
  });

  it("previews a pull request from a fork, with the configuration of the base", async () => {
    const base = await commit("kustomize-app");
    const head = await commit("kustomize-app", {
      ".github/sluice.yml": "version: 1\nenvironments:\n  - name: everything\n    path: .\n",
      "deploy/overlays/staging/kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: web-staging\nresources:\n  - ../../base\nnameSuffix: -fork\n",
    });
    await h.deliver("pull_request", pullRequestPayload("opened", 7, base, head, { fork: true }));
    const run = await completed(head);
    expect(run?.output?.summary).toContain("`staging`");
    expect(run?.output?.summary).not.toContain("`everything`");
    expect(
      h.github
        .calls("repos/get-content")
        .filter((c) => c.path.includes(REPO))
        .every((c) => c.params.path === ".github/sluice.yml"),
    ).toBe(true);
    expect(h.github.requests.some((r) => r.path.includes("someone/"))).toBe(false);
  });

  it("shows the newer head when two pushes come in quick succession", async () => {
    const base = await commit("plain-app");
    const heads = [
      await commit("plain-app", { "manifests/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n" }),
      await commit("plain-app", { "manifests/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\n" }),
    ];
    await Promise.all([
      h.deliver("pull_request", pullRequestPayload("opened", 8, base, heads[0] ?? "")),
      h.deliver("pull_request", pullRequestPayload("synchronize", 8, base, heads[1] ?? "")),
    ]);
    await completed(heads[0] ?? "");
    await completed(heads[1] ?? "");
    expect(previewComment(8)).toHaveLength(1);
    expect(previewComment(8)[0]?.body).toContain((heads[1] ?? "").slice(0, 7));
    expect(previewComment(8)[0]?.body).toContain("ConfigMap default/second");
  });

  it("fails the check run naming the file, line and field of an invalid configuration", async () => {
    const base = await commit("plain-app", { ".github/sluice.yml": "version: 1\nenvironments:\n  - name: prod\n    render: jsonnet\n" });
    const head = await commit("plain-app", {
      ".github/sluice.yml": "version: 1\nenvironments:\n  - name: prod\n    render: jsonnet\n",
      "manifests/x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    });
    await h.deliver("pull_request", pullRequestPayload("opened", 9, base, head));
    const run = await completed(head);
    expect(run?.conclusion).toBe("failure");
    expect(run?.annotations[0]).toMatchObject({
      path: ".github/sluice.yml",
      start_line: 4,
      message: expect.stringContaining("environments[0].render: must be one of") as string,
    });
  });

  it("marks the comment when the pull request is merged", async () => {
    const base = await commit("plain-app");
    const head = await commit("plain-app", { "manifests/namespace.yaml": null });
    await h.deliver("pull_request", pullRequestPayload("opened", 10, base, head));
    await completed(head);
    await h.deliver("pull_request", pullRequestPayload("closed", 10, base, head, { merged: true }));
    await expect
      .poll(() => previewComment(10)[0]?.body.startsWith("> [!NOTE]\n> This pull request was merged."), { timeout: 10_000 })
      .toBe(true);
  });
});

describe("pull request commands", () => {
  let deployRequests: Queue;
  beforeAll(() => {
    deployRequests = new Queue(DEPLOY_REQUEST_QUEUE, { connection: h.redis, prefix: QUEUE_PREFIX });
  });
  afterAll(async () => {
    await deployRequests.close();
  });

  /** The deploy requests whose job id starts with `prefix`, whatever state the app's worker has them in. */
  const requestsFor = async (prefix: string) =>
    (await deployRequests.getJobs(["waiting", "active", "completed", "failed", "delayed"])).filter((j) => j.id?.startsWith(prefix)) as {
      data: { request: Record<string, unknown> };
    }[];
  const replies = (number: number) =>
    h.github.comments.filter((c) => c.issue === number && !c.body.includes(PREVIEW_MARKER)).map((c) => c.body);

  async function pullWithConfig(number: number): Promise<{ base: string; head: string }> {
    const base = await commit("kustomize-app");
    const head = await commit("kustomize-app", {
      "deploy/base/deployment.yaml": (await readFile(join(await checkout("kustomize-app"), "deploy/base/deployment.yaml"), "utf8")).replace(
        "1.4.0",
        "1.5.0",
      ),
    });
    h.github.setPull(OWNER, REPO, {
      number,
      base: { sha: base, ref: "main" },
      head: { sha: head, ref: "feature" },
      state: "open",
      draft: false,
      merged: false,
    });
    // Commands read the configuration of the default branch's head.
    h.github.setBranch(OWNER, REPO, "main", base);
    return { base, head };
  }

  it("refuses /sync politely to a commenter without write permission and queues nothing", async () => {
    await pullWithConfig(20);
    h.github.setPermission(OWNER, REPO, "reader", "read");
    await h.deliver("issue_comment", commentPayload(20, "/sync production", "reader"));
    await expect
      .poll(() => replies(20), { timeout: 10_000 })
      .toEqual(["Sorry @reader, `/sync` needs **write** permission on this repository and you have **read**. Nothing was done."]);
    expect(h.github.reactions.at(-1)).toMatchObject({ content: "eyes" });
    expect(await requestsFor(`sync-${REPO_ID}-production-`)).toEqual([]);
  });

  it("answers an unknown environment or command with the help", async () => {
    await pullWithConfig(21);
    await h.deliver("issue_comment", commentPayload(21, "/sync qa"));
    await expect.poll(() => replies(21).length, { timeout: 10_000 }).toBe(1);
    // Invalid commands are answered once a minute per pull request.
    h.clock.now += 61_000;
    await h.deliver("issue_comment", commentPayload(21, "/sluice deploy now"));
    await expect.poll(() => replies(21).length, { timeout: 10_000 }).toBe(2);
    expect(replies(21).join("\n")).toContain("I did not understand that: unknown environment `qa`.");
    expect(replies(21).join("\n")).toContain("I did not understand that: unknown command `/deploy`.");
    expect(replies(21)[0]).toContain("| `/sync [env…]` |");
  });

  it("ignores bots and comments that are not commands", async () => {
    await pullWithConfig(22);
    await h.deliver("issue_comment", commentPayload(22, "/sync", "renovate[bot]", "Bot"));
    await h.deliver("issue_comment", commentPayload(22, "Looks good to me /sync"));
    await h.deliver("issue_comment", commentPayload(22, "/lgtm"));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(replies(22)).toEqual([]);
  });

  it("queues a deploy request for /sync from a writer, and /help lists the environments", async () => {
    await pullWithConfig(23);
    const tracked = await commit("kustomize-app");
    h.github.setBranch(OWNER, REPO, "main", tracked);
    h.github.setPermission(OWNER, REPO, "writer", "maintain");
    await h.deliver("issue_comment", commentPayload(23, "/sync staging", "writer"));
    await expect.poll(() => replies(23).length, { timeout: 10_000 }).toBe(1);
    expect(replies(23)[0]).toMatch(
      new RegExp(
        `- \`staging\`: queued: deploy \`main\` at \`${tracked.slice(0, 7)}\` \\(\\[check run\\]\\(https://github.example/${OWNER}/${REPO}/runs/\\d+\\)\\)\\.`,
      ),
    );
    // The reply links the check run the command created; the deploy job reuses it.
    const runs = [...h.github.checkRuns.values()].filter((r) => r.head_sha === tracked && r.name === "sluice/deploy (staging)");
    expect(runs).toHaveLength(1);
    const [job] = await requestsFor(`sync-${REPO_ID}-staging-${tracked}-comment-`);
    expect(job?.data.request).toMatchObject({
      version: 1,
      environment: "staging",
      sha: tracked,
      reason: "sync",
      requestedBy: "writer",
      pullRequest: 23,
      installationId: INSTALLATION,
      trigger: expect.stringMatching(/^comment-\d+$/) as string,
      checkRunId: runs[0]?.id,
    });
    await h.deliver("issue_comment", commentPayload(23, "/help"));
    await expect.poll(() => replies(23).length, { timeout: 10_000 }).toBe(2);
    expect(replies(23)[1]).toContain("Environments: `staging`, `production`.");
  });

  it("re-runs the preview on /diff", async () => {
    const { head } = await pullWithConfig(24);
    // A new preview restarts the gating check: /diff takes the commands permission.
    h.github.setPermission(OWNER, REPO, "writer", "write");
    await h.deliver("issue_comment", commentPayload(24, "/diff", "writer"));
    // A second /diff within the minute is answered, not rendered: each one used to store a 30-day page.
    // It comes right after the first, not after its render, so the minute has not passed on a slow machine.
    await h.deliver("issue_comment", commentPayload(24, "/diff", "writer"));
    await completed(head);
    expect(previewComment(24)).toHaveLength(1);
    await expect.poll(() => replies(24).length, { timeout: 10_000 }).toBe(2);
    expect(replies(24)[0]).toContain(`queued a new preview of \`${head.slice(0, 7)}\``);
    expect(replies(24)[1]).toContain("a preview was requested less than a minute ago");
    expect(checkRunsFor(head)).toHaveLength(1);
  });

  it("never takes a rollback's target from GitHub Deployments, which anyone with write access can create", async () => {
    const { head } = await pullWithConfig(26);
    h.github.setMergedPull(OWNER, REPO, { number: 26, merge: head, headRef: "feature" });
    h.github.setPermission(OWNER, REPO, "admin-user", "admin");
    // A GitHub Actions job (or any writer) created these; the agent never deployed anything.
    h.github.addDeployment(OWNER, REPO, { sha: sha(), environment: "staging", state: "success" });
    h.github.addDeployment(OWNER, REPO, { sha: head, environment: "staging", state: "success" });
    await h.deliver("issue_comment", commentPayload(26, "/rollback staging", "admin-user"));
    await expect.poll(() => replies(26).length, { timeout: 10_000 }).toBe(1);
    expect(replies(26)[0]).toContain(
      "- `staging`: cannot roll back: the agent has reported no deployed revision of this environment yet; nothing queued.",
    );
    expect(await requestsFor(`rollback-${REPO_ID}-`)).toEqual([]);
    expect(h.github.calls("repos/list-deployments")).toEqual([]);
  });

  it("refuses /sync and /rollback on an open pull request from a fork, even from an admin", async () => {
    const { base, head } = await pullWithConfig(27);
    h.github.setPull(OWNER, REPO, {
      number: 27,
      base: { sha: base, ref: "main" },
      head: { sha: head, ref: "feature" },
      state: "open",
      draft: false,
      merged: false,
      fork: true,
    });
    h.github.setPermission(OWNER, REPO, "admin-user", "admin");
    const queuedBefore = (await requestsFor(`sync-${REPO_ID}-`)).length;
    await h.deliver("issue_comment", commentPayload(27, "/sync staging", "admin-user"));
    await expect.poll(() => replies(27).length, { timeout: 10_000 }).toBe(1);
    // Answers that change nothing are one a minute per pull request.
    h.clock.now += 61_000;
    await h.deliver("issue_comment", commentPayload(27, "/rollback staging to abc1234", "admin-user"));
    await expect.poll(() => replies(27).length, { timeout: 10_000 }).toBe(2);
    expect(replies(27)).toEqual([
      "Sorry @admin-user, `/sync` is not taken on an open pull request from a fork. Nothing was done.",
      "Sorry @admin-user, `/rollback` is not taken on an open pull request from a fork. Nothing was done.",
    ]);
    expect(await requestsFor(`sync-${REPO_ID}-`)).toHaveLength(queuedBefore);
    expect(await requestsFor(`rollback-${REPO_ID}-`)).toEqual([]);
  });

  it("refuses /rollback without a target on a pull request that is not merged", async () => {
    await pullWithConfig(25);
    h.github.setPermission(OWNER, REPO, "admin-user", "admin");
    await h.deliver("issue_comment", commentPayload(25, "/rollback production", "admin-user"));
    await expect.poll(() => replies(25).length, { timeout: 10_000 }).toBe(1);
    expect(replies(25)[0]).toContain("this pull request is not merged, so it has no deploy to roll back");
    expect(await requestsFor(`rollback-${REPO_ID}-`)).toEqual([]);
  });
});
