import { createHash, randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { deployCheckName } from "../../src/core/check-names.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { PREVIEW_CHECK } from "../../src/app/preview/preview-service.ts";
import { deliverWebhook } from "../helpers/app-harness.ts";
import { checkout } from "../helpers/checkouts.ts";
import { startStack, type Stack } from "../helpers/e2e-stack.ts";
import { pullRequestPayload, pushPayload } from "../helpers/payloads.ts";
import type { SluiceProcess } from "../helpers/processes.ts";

// Two app replicas and two agents on one Redis (a server, or a cluster), with webhooks spread over
// the replicas as a load balancer would: 50 pull requests opened and 20 merges at once. Every job
// runs once, every report is applied once and in order, one environment is never applied twice at
// once, and the newest merge of each repository is what runs.

/** Where a scale-out run keeps its state. */
export interface ScaleOutOptions {
  /** What the Redis is, for the figures: "one Redis", "a Redis Cluster of three masters". */
  redisName: string;
  /** The database on the shared Redis (ignored by a cluster). */
  database: number;
  /** A Redis of the run's own, known once its beforeAll has run. */
  redisUrl?: () => string;
  /** More checks once the run is done; returns lines for the figures. */
  afterRun?: (stack: Stack) => Promise<string[]>;
}

/** Defines the scale-out test: 50 previews and 20 merges over two app replicas and two agents. */
export function describeScaleOut(options: ScaleOutOptions): void {
  const OWNER = "sluice-scale";
  const REPOS = 10;
  const PULLS_PER_REPO = 5;
  const MERGES_PER_REPO = 2;
  const suffix = randomUUID().slice(0, 6);
  const repos = Array.from({ length: REPOS }, (_, i) => ({
    owner: OWNER,
    repo: `svc-${i}`,
    repoId: 9600 + i,
    installation: 600 + i,
    namespace: `scale-${suffix}-${i}`,
  }));
  type Repo = (typeof repos)[number];
  let stack: Stack | undefined;
  let appUrls: string[] = [];
  let replicas: SluiceProcess[] = [];
  let agents: SluiceProcess[] = [];
  let nextSha = 1;
  let delivered = 0;
  const sha = (): string => createHash("sha1").update(`scale-${suffix}-${nextSha++}`).digest("hex");
  const s = (): Stack => {
    if (!stack) throw new Error("the stack is not running");
    return stack;
  };

  const files = (repo: Repo, version: string): Record<string, string> => ({
    ".github/sluice.yml": `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: ${repo.namespace}\n`,
    "manifests/namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${repo.namespace}\n`,
    "manifests/web.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`,
  });
  async function commit(repo: Repo, version: string): Promise<string> {
    const id = sha();
    await s().github.addCommit(OWNER, repo.repo, id, await checkout(undefined, files(repo, version)));
    return id;
  }
  let stillProcessing = 0;
  /**
   * Delivers to the replicas in turn, as a load balancer would. A delivery whose handler waits on
   * the installation's write pacing past 9 s is answered 202 and still processed, which GitHub counts
   * as delivered.
   */
  async function deliver(event: string, payload: unknown): Promise<void> {
    const url = appUrls[delivered++ % appUrls.length] ?? "";
    const { status } = await deliverWebhook(url, event, payload);
    expect([200, 202]).toContain(status);
    if (status === 202) stillProcessing++;
  }

  interface AgentLine {
    time: number;
    message: string;
    job?: string;
    ms?: number;
  }
  const agentLines = (): AgentLine[] =>
    [s().agent, ...agents].flatMap((a) =>
      (a?.output() ?? "")
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as AgentLine),
    );

  beforeAll(async () => {
    const [first] = repos;
    if (!first) throw new Error("no repositories");
    stack = await startStack({
      ...first,
      database: options.database,
      ...(options.redisUrl ? { redisUrl: options.redisUrl() } : {}),
      environments: ["production"],
      namespaces: `scale-${suffix}-*`,
      agentNamespace: `sluice-scale-${suffix}`,
      cleanup: repos.map((r) => r.namespace),
      app: { LOG_LEVEL: "info" },
      agent: { SLUICE_DRIFT_INTERVAL_SECONDS: "0" },
    });
    for (const repo of repos.slice(1)) stack.github.addRepo(OWNER, repo.repo, repo.repoId);
    const replica = await stack.startAppReplica();
    appUrls = [stack.appUrl, replica.url];
    replicas = [replica.app];
    agents = [await stack.startAgentReplica()];
    for (const repo of repos) stack.github.setBranch(OWNER, repo.repo, "main", await commit(repo, "base"));
  });

  afterAll(async () => {
    await stack?.stop();
  });

  afterEach((context) => {
    expect(stack?.github.violations).toEqual([]);
    if (context.task.result?.state === "fail") console.error(stack?.output());
  });

  describe(`two app replicas and two agents on ${options.redisName}`, { timeout: 600_000 }, () => {
    it("runs 50 previews and 20 merges exactly once, in order, one apply of the environment at a time, newest winning", async () => {
      const github = s().github;
      const started = performance.now();
      // 50 pull requests opened at once, across ten repositories (installations of their own).
      const pulls: { repo: Repo; number: number; head: string }[] = [];
      for (const repo of repos)
        for (let n = 1; n <= PULLS_PER_REPO; n++) pulls.push({ repo, number: n, head: await commit(repo, `pr-${n}`) });
      // 20 merges: each repository's main moves twice in quick succession; the second is the newest.
      const merges: { repo: Repo; sha: string; newest: boolean }[] = [];
      for (const repo of repos)
        for (let m = 1; m <= MERGES_PER_REPO; m++)
          merges.push({ repo, sha: await commit(repo, `merge-${m}`), newest: m === MERGES_PER_REPO });
      const base = new Map(repos.map((r) => [r.repo, github.branch(OWNER, r.repo, "main") ?? ""]));
      await Promise.all([
        ...pulls.map((p) => deliver("pull_request", pullRequestPayload(p.repo, "opened", p.number, base.get(p.repo.repo) ?? "", p.head))),
        ...repos.map(async (repo) => {
          for (const merge of merges.filter((m) => m.repo === repo)) {
            github.setBranch(OWNER, repo.repo, "main", merge.sha);
            await deliver("push", pushPayload(repo, merge.sha));
          }
        }),
      ]);
      // Each pull request: one preview check run for its head, completed, and one comment.
      const previewRuns = (p: (typeof pulls)[number]) =>
        [...github.checkRuns.values()].filter((r) => r.head_sha === p.head && r.name === PREVIEW_CHECK);
      const comments = (p: (typeof pulls)[number]) =>
        github.comments.filter((c) => c.repo === p.repo.repo && c.issue === p.number && c.body.includes(PREVIEW_MARKER));
      await expect
        .poll(() => pulls.filter((p) => previewRuns(p).some((r) => r.status === "completed") && comments(p).length > 0).length, {
          timeout: 300_000,
          interval: 500,
        })
        .toBe(pulls.length);
      const previewsMs = performance.now() - started;
      // Each merge: one deploy check run and one Deployment; the newest of each repository succeeded.
      const deployRuns = (m: (typeof merges)[number]) =>
        [...github.checkRuns.values()].filter((r) => r.head_sha === m.sha && r.name === deployCheckName("production"));
      try {
        await expect
          .poll(() => merges.filter((m) => deployRuns(m).some((r) => r.status === "completed")).length, { timeout: 300_000, interval: 500 })
          .toBe(merges.length);
      } catch (error) {
        // Which merges never finished, and what their check runs and Deployments say, for the log.
        for (const m of merges.filter((merge) => !deployRuns(merge).some((r) => r.status === "completed")))
          console.error(
            `${m.repo.repo}@${m.sha.slice(0, 7)} (newest: ${String(m.newest)}): check runs ${JSON.stringify(deployRuns(m).map((r) => [r.status, r.output?.title]))}, Deployments ${JSON.stringify(github.deploymentsOf(OWNER, m.repo.repo).filter((d) => d.sha === m.sha))}`,
          );
        throw error;
      }
      const mergesMs = performance.now() - started;
      // Late reports and redeliveries settle before anything is counted.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      for (const p of pulls) {
        expect(previewRuns(p), `${p.repo.repo}#${p.number}`).toHaveLength(1);
        expect(comments(p), `${p.repo.repo}#${p.number}`).toHaveLength(1);
      }
      const conclusions = new Map<string, number>();
      for (const m of merges) {
        const runs = deployRuns(m);
        expect(runs, `${m.repo.repo}@${m.sha.slice(0, 7)}`).toHaveLength(1);
        const run = runs[0];
        conclusions.set(run?.conclusion ?? "none", (conclusions.get(run?.conclusion ?? "none") ?? 0) + 1);
        if (m.newest) expect(run?.conclusion, `${m.repo.repo}@${m.sha.slice(0, 7)}`).toBe("success");
        else expect(["success", "cancelled"], "an older merge succeeds or is superseded").toContain(run?.conclusion);
        expect(github.deploymentsCreated.filter((d) => d.ref === m.sha)).toHaveLength(1);
        // Reports applied once: the check run was completed by exactly one update.
        const completions = github
          .calls("checks/update")
          .filter((c) => c.params.check_run_id === String(run?.id) && (c.body as { status?: string }).status === "completed");
        expect(completions, `${m.repo.repo}@${m.sha.slice(0, 7)}`).toHaveLength(1);
      }
      // Newest wins: every namespace holds its repository's last merge.
      for (const repo of repos) {
        const live = (await s().kube.read({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "web", namespace: repo.namespace },
        })) as {
          data?: { version?: string };
        };
        expect(live.data?.version, repo.repo).toBe(`merge-${MERGES_PER_REPO}`);
      }
      // Exactly once, one at a time: no job applied twice, no two applies of the environment overlapping.
      const applies = agentLines()
        .filter((l) => l.message === "deploy succeeded")
        .map((l) => ({ job: l.job ?? "", start: l.time - (l.ms ?? 0), end: l.time }))
        .sort((a, b) => a.start - b.start);
      expect(new Set(applies.map((a) => a.job)).size).toBe(applies.length);
      for (let i = 1; i < applies.length; i++) {
        const [before, after] = [applies[i - 1], applies[i]];
        expect(after?.start ?? 0, `${before?.job ?? ""} and ${after?.job ?? ""} overlap`).toBeGreaterThanOrEqual(before?.end ?? 0);
      }
      const byAgent = [s().agent, ...agents].map((a) => (a?.output().match(/"message":"deploy succeeded"/g) ?? []).length);
      const byReplica = [s().app, ...replicas].map((a) => (a.output().match(/"msg":"deploy job queued"/g) ?? []).length);
      console.log(
        [
          `two app replicas, two agents, ${options.redisName}: ${pulls.length} pull requests and ${merges.length} merges delivered at once, alternating replicas (${stillProcessing} answered 202, still processing)`,
          `  previews: ${pulls.length}/${pulls.length} with one check run and one comment, all in ${(previewsMs / 1000).toFixed(1)} s`,
          `  merges: ${merges.length}/${merges.length} with one check run and one Deployment (${[...conclusions].map(([c, n]) => `${n} ${c}`).join(", ")}), all in ${(mergesMs / 1000).toFixed(1)} s`,
          `  deploy jobs queued by replica: ${byReplica.join(" + ")}`,
          `  applies: ${applies.length} (by agent: ${byAgent.join(" + ")}), none twice, none overlapping; newest merge live in ${repos.length}/${repos.length} namespaces`,
          ...(options.afterRun ? await options.afterRun(s()) : []),
        ].join("\n"),
      );
    });
  });
}
