import { randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { examplePayload, startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { pushPayload } from "../helpers/payloads.ts";

// GitHub's merge queue, end to end: the app and an agent on the real Redis and apiserver, GitHub
// faked (and checked against its OpenAPI description). A `merge_group` delivery gets
// `sluice/preview` on the queue's commit, with the agent's live dry-run in it, as a pull request's
// head would, and no comment anywhere.

const OWNER = "queue-test";
const INSTALLATION = 71;
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent;
const agentNamespace = `sluice-mq-${randomUUID().slice(0, 6)}`;
const cleanup: KubernetesObject[] = [];
let nextSha = 1;
let nextRepo = 9100;
let nextPull = 300;
const sha = (): string => (nextSha++).toString(16).padStart(40, "c");

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 27,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    env: { SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS: "20" },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  agent = await startAgent(
    await loadAgentSettings({
      REDIS_URL: h.redisUrl,
      KUBECONFIG: inject("kubeconfigPath"),
      SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
      SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
      SLUICE_AGENT_ENVIRONMENTS: "production",
      SLUICE_AGENT_PROBE_PORT: "0",
      SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
      SLUICE_AGENT_REPOSITORIES: `${OWNER}/*=mq-*`,
      SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
      SLUICE_AGENT_NAMESPACE: agentNamespace,
      SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
    }),
    { log: () => undefined, now: h.clock.read },
  );
});
afterAll(async () => {
  await agent.stop();
  await h.stop();
  for (const object of [...cleanup, { apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } }])
    await kube.delete(object).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  // Every request the app sent must be a real GitHub endpoint with a valid body.
  expect(h.github.violations).toEqual([]);
});

interface Repo {
  owner: string;
  repo: string;
  repoId: number;
  installation: number;
  namespace: string;
}

/** A repository whose `alice` may ask for live previews, and the namespace its production environment deploys to. */
function repository(): Repo {
  const repoId = nextRepo++;
  const namespace = `mq-${randomUUID().slice(0, 8)}`;
  cleanup.push({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  h.github.addRepo(OWNER, `svc-${repoId}`, repoId);
  h.github.setPermission(OWNER, `svc-${repoId}`, "alice", "write");
  return { owner: OWNER, repo: `svc-${repoId}`, repoId, installation: INSTALLATION, namespace };
}

const config = (repo: Repo) =>
  `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${repo.namespace}\n    branch: main\n`;
const namespace = (repo: Repo) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${repo.namespace}\n`;
const configMap = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  key: "${value}"\n`;

async function commit(repo: Repo, files: Record<string, string>): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, repo.repo, id, await checkout(undefined, files));
  return id;
}

/** A new repository whose main is a commit with ConfigMap `a`, not deployed; its files but `a`. */
async function onMain(): Promise<{ repo: Repo; files: Record<string, string>; base: string }> {
  const repo = repository();
  const files = { ".github/sluice.yml": config(repo), "manifests/ns.yaml": namespace(repo) };
  const base = await commit(repo, { ...files, "manifests/a.yaml": configMap("a", "1") });
  h.github.setBranch(OWNER, repo.repo, "main", base);
  return { repo, files, base };
}

/** `head` on main, deployed to production by the agent. */
async function deployed(repo: Repo, head: string): Promise<void> {
  h.github.setBranch(OWNER, repo.repo, "main", head);
  await h.deliver("push", pushPayload(repo, head));
  const run = () => [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === deployCheckName("production"));
  await expect.poll(() => run()?.conclusion, { timeout: 90_000, interval: 200 }).toBe("success");
}

/** An open pull request by `alice` (from a branch of the repository itself unless `fork`), as `pulls/get` returns it. */
function openPull(repo: Repo, base: string, fork = false): number {
  const number = nextPull++;
  // The fake's type has no author; GitHub's pull request has one, and the live preview reads it.
  const pull = {
    number,
    base: { sha: base, ref: "main" },
    head: { sha: sha(), ref: `feature-${number}` },
    state: "open" as const,
    draft: false,
    merged: false,
    user: { login: "alice" },
    fork,
  };
  h.github.setPull(OWNER, repo.repo, pull);
  return number;
}

/** GitHub's `merge_group.checks_requested` example, pointed at `repo`: the queue tests `pullRequest` at `head` on top of `base`. */
function mergeGroupPayload(repo: Repo, pullRequest: number, base: string, head: string): Record<string, unknown> {
  const payload = examplePayload("merge_group", "checks_requested");
  const repository = payload.repository as Record<string, unknown>;
  Object.assign(repository, {
    id: repo.repoId,
    name: repo.repo,
    full_name: `${repo.owner}/${repo.repo}`,
    owner: { ...(repository.owner as object), login: repo.owner },
  });
  payload.installation = { id: repo.installation, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzE=" };
  const group = payload.merge_group as Record<string, unknown>;
  Object.assign(group, {
    head_sha: head,
    head_ref: `refs/heads/gh-readonly-queue/main/pr-${pullRequest}-${"d".repeat(40)}`,
    base_sha: base,
    base_ref: "refs/heads/main",
    head_commit: { ...(group.head_commit as object), id: head },
  });
  return payload;
}

const previewRuns = (head: string) => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === "sluice/preview");
const completedRun = async (head: string) => {
  await expect.poll(() => previewRuns(head).map((r) => r.status), { timeout: 90_000, interval: 200 }).toEqual(["completed"]);
  return previewRuns(head)[0];
};

describe("merge queue", () => {
  it("previews the queue's commit against its parent on sluice/preview, live answers included, and comments nowhere", async () => {
    const repo = repository();
    const files = { ".github/sluice.yml": config(repo), "manifests/ns.yaml": namespace(repo) };
    const base = await commit(repo, { ...files, "manifests/settings.yaml": configMap("settings", "v1") });
    await deployed(repo, base);
    const head = await commit(repo, {
      ...files,
      ".github/sluice.yml": `${config(repo)}  - name: canary\n    path: manifests\n    namespace: ${repo.namespace}-canary\n    branch: main\n`,
      "manifests/settings.yaml": configMap("settings", "v2"),
    });
    const pullRequest = openPull(repo, base);
    const comments = h.github.comments.length;

    const { status } = await h.deliver("merge_group", mergeGroupPayload(repo, pullRequest, base, head));

    expect(status).toBe(200);
    const run = await completedRun(head);
    expect(run?.conclusion).toBe("success");
    expect(run?.external_id).toBe(`merge-group-pr-${pullRequest}`);
    expect(run?.output?.summary).toContain("| `production` | 0 | 1 | 0 |");
    const text = run?.output?.text ?? "";
    expect(text).toContain(`[pull request #${pullRequest}](https://github.example/${OWNER}/${repo.repo}/pull/${pullRequest})`);
    expect(text).toContain(`ConfigMap ${repo.namespace}/settings`);
    expect(text).toContain("-  key: v1\n+  key: v2");
    // The agent's dry-run against the live cluster, as a pull request's preview shows it.
    expect(text).toContain("**`production`**: 1 object would change live, 0 would be pruned, 0 would be refused");
    expect(text).toContain(`🟡 live configure <code>ConfigMap ${repo.namespace}/settings</code>`);
    expect(run?.details_url).toMatch(new RegExp(`^${h.url}/sluice/diff/`));
    // Nothing is written on the queued pull request, nor on any other.
    expect(h.github.comments.length).toBe(comments);
    // The group's parent says what is previewed, as a pull request's base does: not the environment the commit adds.
    expect(run?.output?.summary).not.toContain("canary");
  });

  it("sends nothing to a cluster for a queued pull request from a fork, and still previews the commit", async () => {
    const { repo, files, base } = await onMain();
    const head = await commit(repo, { ...files, "manifests/a.yaml": configMap("a", "2") });
    const pullRequest = openPull(repo, base, true);

    await h.deliver("merge_group", mergeGroupPayload(repo, pullRequest, base, head));

    const run = await completedRun(head);
    expect(run?.conclusion).toBe("success");
    expect(run?.output?.text).toContain("pull requests from forks never send their content to a cluster");
    expect(run?.output?.text).toContain("-  key: '1'\n+  key: '2'");
  });

  it("sends nothing to a cluster for a group that holds pull requests queued ahead of its own", async () => {
    const { repo, files, base } = await onMain();
    // The group queued ahead: its commit is this group's parent, not the head of main.
    const ahead = await commit(repo, { ...files, "manifests/a.yaml": configMap("a", "2") });
    const head = await commit(repo, { ...files, "manifests/a.yaml": configMap("a", "3") });
    const pullRequest = openPull(repo, base);

    await h.deliver("merge_group", mergeGroupPayload(repo, pullRequest, ahead, head));

    const run = await completedRun(head);
    expect(run?.conclusion).toBe("success");
    // (GitHub would link a bare #number: the text escapes it.)
    expect(run?.output?.text).toContain(`the merge queue's commit also holds the pull requests queued ahead of \\#\u200b${pullRequest}`);
    expect(run?.output?.text).toContain("only a group built on the head of main is sent to a cluster");
    expect(run?.output?.text).toContain("-  key: '2'\n+  key: '3'");
  });

  it("makes no second check run when GitHub delivers the same group again", async () => {
    const { repo, files, base } = await onMain();
    const head = await commit(repo, { ...files, "manifests/a.yaml": configMap("a", "2") });
    const pullRequest = openPull(repo, base);
    const payload = mergeGroupPayload(repo, pullRequest, base, head);
    const delivery = randomUUID();
    await h.deliver("merge_group", payload, delivery);
    await completedRun(head);

    // The same delivery again, then the same group in a new delivery.
    await h.deliver("merge_group", payload, delivery);
    const again = await h.deliver("merge_group", payload);

    expect(again.status).toBe(200);
    expect(previewRuns(head)).toHaveLength(1);
    expect(h.github.calls("checks/create").filter((c) => (c.body as { head_sha?: string }).head_sha === head)).toHaveLength(1);
  });

  it("fails sluice/preview on the file and line of a broken manifest or configuration in the queue's commit, and stays up", async () => {
    const { repo, files, base } = await onMain();
    const brokenManifest = await commit(repo, {
      ...files,
      "manifests/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  key: [unclosed\n",
    });
    const brokenConfig = await commit(repo, {
      ...files,
      ".github/sluice.yml": `${config(repo)}    prune: sometimes\n`,
      "manifests/a.yaml": configMap("a", "2"),
    });
    const pullRequest = openPull(repo, base);

    await h.deliver("merge_group", mergeGroupPayload(repo, pullRequest, base, brokenManifest));
    await h.deliver("merge_group", mergeGroupPayload(repo, openPull(repo, base), base, brokenConfig));

    const manifestRun = await completedRun(brokenManifest);
    expect(manifestRun?.conclusion).toBe("failure");
    expect(manifestRun?.annotations).toContainEqual(
      expect.objectContaining({ path: "manifests/a.yaml", start_line: 7, message: expect.stringContaining("invalid YAML") as unknown }),
    );
    expect(manifestRun?.output?.summary).toContain("manifests/a.yaml");
    // The base's configuration governs the preview; the group's own is what the branch gets once merged.
    const configRun = await completedRun(brokenConfig);
    expect(configRun?.conclusion).toBe("failure");
    expect(configRun?.output?.title).toBe(".github/sluice.yml in the merge queue's commit is invalid");
    expect(configRun?.annotations).toContainEqual(expect.objectContaining({ path: ".github/sluice.yml", start_line: 7 }));
    // A delivery that is not a merge queue's is refused, naming the field and its value; the app keeps serving.
    const odd = mergeGroupPayload(repo, pullRequest, base, brokenManifest);
    (odd.merge_group as Record<string, unknown>).head_ref = "refs/heads/not-a-queue-branch";
    expect((await h.deliver("merge_group", odd)).status).toBeGreaterThanOrEqual(400);
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    // `destroyed` needs nothing and is not an error.
    const destroyed = { ...mergeGroupPayload(repo, pullRequest, base, brokenManifest), action: "destroyed", reason: "dequeued" };
    expect((await h.deliver("merge_group", destroyed)).status).toBe(200);
    expect(previewRuns(brokenManifest)).toHaveLength(1);
  });
});
