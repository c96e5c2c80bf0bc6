import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { EnvironmentStates } from "../../src/app/deploy/environment-states.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import type { History } from "../../src/core/agent-protocol.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { startHarness, WEBHOOK_SECRET, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { commentPayload, type PayloadTarget } from "../helpers/payloads.ts";

// `/rollback` opens a revert pull request through the Git Data API. GitHub refuses a GitHub App
// any commit or branch write that changes a file under .github/workflows/ unless it has the
// `workflows` permission, which Sluice does not ask for: such a revert is refused up front with a
// reply that names the files, and GitHub's own refusal (a check raced) gets the same reply.

const OWNER = "acme";
const INSTALLATION = 88;
const WORKFLOW_REFUSAL =
  "refusing to allow a GitHub App to create or update workflow `.github/workflows/ci.yml` without `workflows` permission";
let h: AppHarness;
let states: EnvironmentStates;
let nextRepo = 2400;
let nextSha = 1;
let nextComment = 70_000;
const sha = (): string => (nextSha++).toString(16).padStart(40, "c");

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 24,
    deployKeys: { jobSigningKey: generateSigningKeys().privateKey, agentPublicKeys: generateSigningKeys().publicKey },
  });
  states = new EnvironmentStates(h.redis, new RedisMac(WEBHOOK_SECRET));
});
afterAll(async () => {
  await h.stop();
  await removeCheckouts();
});
afterEach(() => {
  // Every request the app sent must be a real GitHub endpoint with a valid body.
  expect(h.github.violations).toEqual([]);
});

const config = (repo: PayloadTarget) =>
  `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ns-${String(repo.repoId)}\n    branch: main\n`;
const configMap = (value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: "${value}"\n`;
const workflow = (step: string) => `name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ${step}\n`;

/**
 * A repository whose pull request #1 merged `merged` on top of `before`; production's agent
 * reported both deploys, and `alice` may run commands. Returns the repository and both SHAs.
 */
async function mergedPull(before: Record<string, string>, merged: Record<string, string>) {
  const repo: PayloadTarget = { owner: OWNER, repo: `svc-${randomUUID().slice(0, 6)}`, repoId: nextRepo++, installation: INSTALLATION };
  h.github.addRepo(OWNER, repo.repo, repo.repoId);
  h.github.setPermission(OWNER, repo.repo, "alice", "write");
  const a = sha();
  const b = sha();
  await h.github.addCommit(OWNER, repo.repo, a, await checkout(undefined, { ".github/sluice.yml": config(repo), ...before }));
  await h.github.addCommit(OWNER, repo.repo, b, await checkout(undefined, { ".github/sluice.yml": config(repo), ...merged }), [a]);
  h.github.setBranch(OWNER, repo.repo, "main", b);
  h.github.setMergedPull(OWNER, repo.repo, { number: 1, merge: b, base: a, headRef: "feature" });
  const at = new Date(h.clock.now).toISOString();
  const history: History = {
    revisions: [
      { sha: b, jobId: `merge-${b}`, digest: "0".repeat(64), appliedAt: at, reason: "merge" },
      { sha: a, jobId: `merge-${a}`, digest: "0".repeat(64), appliedAt: at, reason: "merge" },
    ],
  };
  await states.observe(repo.repoId, "production", { history, at, released: false });
  return { repo, a, b };
}

/** `alice` comments `/rollback` on the merged pull request; returns Sluice's reply. */
async function rollback(repo: PayloadTarget): Promise<string> {
  await h.deliver("issue_comment", commentPayload(repo, 1, nextComment++, "/rollback", "alice"));
  const replies = () => h.github.comments.filter((c) => c.repo === repo.repo && c.issue === 1 && c.body.startsWith("@alice"));
  await expect.poll(() => replies().length, { timeout: 30_000, interval: 100 }).toBe(1);
  return replies()[0]?.body ?? "";
}

/** The Git Data writes (commits, branches) and pull requests the app made in `repo`. */
function writes(repo: PayloadTarget): string[] {
  return h.github.requests
    .filter((r) => r.params.repo === repo.repo)
    .filter((r) => ["git/create-commit", "git/create-ref", "git/update-ref", "pulls/create"].includes(r.operationId))
    .map((r) => r.operationId);
}

describe("/rollback whose revert would change .github/workflows/", () => {
  it("refuses to write the revert, names the workflow files and says what to do; the rollback still deploys and holds", async () => {
    const { repo, a } = await mergedPull(
      { "manifests/cm.yaml": configMap("v1"), ".github/workflows/ci.yml": workflow("make test") },
      { "manifests/cm.yaml": configMap("v2"), ".github/workflows/ci.yml": workflow("make check") },
    );

    const reply = await rollback(repo);

    expect(reply).toContain(`- \`production\`: queued: roll back to \`${a.slice(0, 7)}\``);
    expect(reply).toContain(
      `- no revert pull request: putting \`main\` back to \`${a.slice(0, 7)}\` would change \`.github/workflows/ci.yml\`; Sluice does not write workflow files`,
    );
    expect(reply).toContain(`\`git restore --source=${a} --staged --worktree .\``);
    expect(reply).toContain("`/sync` releases `production`");
    expect(writes(repo)).toEqual([]);
    const state = await states.load(repo.repoId, "production");
    expect(state.hold?.sha).toBe(a);
    expect(state.revertPulls).toEqual([]);
  });

  it("names every workflow file the revert adds, changes or deletes, and no other file", async () => {
    const { repo } = await mergedPull(
      {
        "manifests/cm.yaml": configMap("v1"),
        ".github/workflows/ci.yml": workflow("make test"),
        ".github/workflows/old.yml": workflow("old"),
      },
      {
        "manifests/cm.yaml": configMap("v2"),
        ".github/workflows/ci.yml": workflow("make test"),
        ".github/workflows/release/publish.yml": workflow("publish"),
        ".github/CODEOWNERS": "* @acme/team\n",
      },
    );

    const reply = await rollback(repo);

    // Back to A deletes publish.yml and restores old.yml; ci.yml is the same on both sides.
    expect(reply).toContain("would change `.github/workflows/old.yml` and `.github/workflows/release/publish.yml`; Sluice");
    expect(reply).not.toContain("ci.yml");
    expect(reply).not.toContain("CODEOWNERS");
    expect(writes(repo)).toEqual([]);
  });
});

describe("/rollback whose revert leaves .github/workflows/ as it is", () => {
  it("opens the revert pull request, having read only the trees on the way to .github/workflows/", async () => {
    const { repo, a, b } = await mergedPull(
      { "manifests/cm.yaml": configMap("v1"), ".github/workflows/ci.yml": workflow("make test") },
      { "manifests/cm.yaml": configMap("v2"), ".github/workflows/ci.yml": workflow("make test"), ".github/CODEOWNERS": "* @acme/team\n" },
    );

    const reply = await rollback(repo);

    const pull = h.github.pullsCreated.find((p) => p.head === `sluice/revert-${b}`);
    expect(pull).toBeDefined();
    expect(reply).toContain(`- revert pull request [#${String(pull?.number)}]`);
    expect(writes(repo)).toEqual(["git/create-commit", "git/create-ref", "pulls/create"]);
    const revert = h.github.commit(OWNER, repo.repo, h.github.branch(OWNER, repo.repo, `sluice/revert-${b}`) ?? "");
    expect(revert?.tree).toBe(h.github.commit(OWNER, repo.repo, a)?.tree);
    // The check reads each side's root and .github trees, never a whole repository's listing:
    // the workflows directories are the same tree, so neither is listed.
    const trees = h.github.calls("git/get-tree").filter((r) => r.params.repo === repo.repo);
    expect(trees).toHaveLength(4);
  });

  it("gives the same clear reply when GitHub itself refuses the write for a workflow file (403)", async () => {
    const { repo, a } = await mergedPull({ "manifests/cm.yaml": configMap("v1") }, { "manifests/cm.yaml": configMap("v2") });
    h.github.failNext("git/create-ref", {
      status: 403,
      body: { message: WORKFLOW_REFUSAL, documentation_url: "https://docs.github.com/rest/git/refs#create-a-reference" },
    });

    const reply = await rollback(repo);

    expect(reply).toContain(
      `- no revert pull request: putting \`main\` back to \`${a.slice(0, 7)}\` would change \`.github/workflows/ci.yml\`; Sluice does not write workflow files`,
    );
    expect(writes(repo)).toEqual(["git/create-commit", "git/create-ref"]);
    const state = await states.load(repo.repoId, "production");
    expect(state.hold?.sha).toBe(a);
  });

  it("says so too when GitHub refuses to move an existing revert branch (422) without naming the file", async () => {
    const { repo, a, b } = await mergedPull({ "manifests/cm.yaml": configMap("v1") }, { "manifests/cm.yaml": configMap("v2") });
    // An earlier rollback of the same merge left its branch, which this one moves (forced).
    h.github.setBranch(OWNER, repo.repo, `sluice/revert-${b}`, b);
    h.github.failNext("git/update-ref", {
      status: 422,
      body: { message: "refusing to allow a GitHub App to create or update workflow without `workflows` permission" },
    });

    const reply = await rollback(repo);

    expect(reply).toContain(
      `- no revert pull request: putting \`main\` back to \`${a.slice(0, 7)}\` would change files under \`.github/workflows/\`; Sluice does not write workflow files`,
    );
    expect(writes(repo)).toEqual(["git/create-commit", "git/create-ref", "git/update-ref"]);
    expect(h.github.branch(OWNER, repo.repo, `sluice/revert-${b}`)).toBe(b);
  });
});
