import { createHash, randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { deliverWebhook } from "../helpers/app-harness.ts";
import { checkout } from "../helpers/checkouts.ts";
import { percentile, treeMemoryMb, type TreeMemory } from "../helpers/figures.ts";
import { startStack, type Stack } from "../helpers/e2e-stack.ts";
import { pullRequestPayload } from "../helpers/payloads.ts";
import { shippedRuntimeEnv } from "../helpers/manifests.ts";
import type { SluiceProcess } from "../helpers/processes.ts";

// 200 pull request previews queued at once on one app replica (plain repositories of 100
// objects, each its own installation), then 200 more over two replicas. Prints the time from
// delivery to comment (p50, p95) and each replica's peak memory with its render processes; fails
// when a preview is lost or doubled, or a replica passes 400 MB. A replica's memory is the sum of
// its processes' proportional set sizes: the Node binary's pages, which the app and its render
// processes share, count once, as they do in the pod's memory; the sum of resident sizes, which
// counts them once per process (about 50 MB each), is printed beside it.

const OWNER = "sluice-load";
const PULLS = 200;
const OBJECTS = 100;
const MEMORY_LIMIT_MB = 400;
const mb = (memory: TreeMemory): string => `${Math.round(memory.pss)} MB PSS (${Math.round(memory.rss)} MB summed RSS)`;
const suffix = randomUUID().slice(0, 6);
const repos = Array.from({ length: PULLS }, (_, i) => ({ owner: OWNER, repo: `r-${i}`, repoId: 9700 + i, installation: 700 + i }));
let stack: Stack | undefined;
let nextSha = 1;
const sha = (): string => createHash("sha1").update(`load-${suffix}-${nextSha++}`).digest("hex");
const s = (): Stack => {
  if (!stack) throw new Error("the stack is not running");
  return stack;
};

function tree(changed: number): Record<string, string> {
  const files: Record<string, string> = {
    ".github/sluice.yml": `version: 1\nenvironments:\n  - name: production\n    path: manifests\n    namespace: load\n`,
  };
  for (let i = 0; i < OBJECTS; i++)
    files[`manifests/cm-${i}.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  labels:\n    app: load\ndata:\n  value: "${i < changed ? "head" : "base"}"\n  settings: |\n    replicas=3\n    timeout=30s\n`;
  return files;
}

/** Samples each process's tree memory until stopped; resolves to the peaks. */
function sampleMemory(processes: SluiceProcess[]): () => Promise<TreeMemory[]> {
  const peaks: TreeMemory[] = processes.map(() => ({ rss: 0, pss: 0 }));
  const state = { running: true };
  const loop = (async () => {
    while (state.running) {
      for (const [i, p] of processes.entries()) {
        const now = await treeMemoryMb(p.child.pid ?? 0);
        const peak = peaks[i] ?? { rss: 0, pss: 0 };
        peaks[i] = { rss: Math.max(peak.rss, now.rss), pss: Math.max(peak.pss, now.pss) };
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return async () => {
    state.running = false;
    await loop;
    return peaks;
  };
}

/** Opens one pull request per repository at once, delivered to `urls` in turn; the time from each delivery to its comment. */
async function burst(urls: string[], number: number): Promise<{ latencies: number[]; wallMs: number }> {
  const github = s().github;
  const [baseDir, headDir] = await Promise.all([checkout(undefined, tree(0)), checkout(undefined, tree(5))]);
  const pulls: { repo: (typeof repos)[number]; base: string; head: string; sentAt: number }[] = [];
  for (const repo of repos) {
    const base = sha();
    const head = sha();
    await github.addCommit(OWNER, repo.repo, base, baseDir);
    await github.addCommit(OWNER, repo.repo, head, headDir);
    github.setBranch(OWNER, repo.repo, "main", base);
    pulls.push({ repo, base, head, sentAt: 0 });
  }
  const started = Date.now();
  await Promise.all(
    pulls.map(async (p, i) => {
      p.sentAt = Date.now();
      const { status } = await deliverWebhook(
        urls[i % urls.length] ?? "",
        "pull_request",
        pullRequestPayload(p.repo, "opened", number, p.base, p.head),
      );
      expect([200, 202]).toContain(status);
    }),
  );
  const comment = (p: (typeof pulls)[number]) =>
    github.comments.filter((c) => c.repo === p.repo.repo && c.issue === number && c.body.includes(PREVIEW_MARKER));
  await expect.poll(() => pulls.filter((p) => comment(p).length > 0).length, { timeout: 540_000, interval: 500 }).toBe(pulls.length);
  const latencies = pulls.map((p) => (comment(p)[0]?.at ?? 0) - p.sentAt);
  const wallMs = Math.max(...pulls.map((p) => comment(p)[0]?.at ?? 0)) - started;
  // Settled: one comment per pull request, none with an error.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  for (const p of pulls) {
    expect(comment(p), `${p.repo.repo}#${number}`).toHaveLength(1);
    expect(comment(p)[0]?.body, `${p.repo.repo}#${number}`).toContain("| `production` | 0 | 5 | 0 | 95 |");
  }
  return { latencies, wallMs };
}

beforeAll(async () => {
  const [first] = repos;
  if (!first) throw new Error("no repositories");
  stack = await startStack({
    ...first,
    database: 9,
    environments: ["production"],
    namespaces: "load",
    agentNamespace: `sluice-load-${suffix}`,
    cleanup: [],
    withoutAgent: true,
    built: true,
    // The app as deploy/app ships it: the built command line with the manifest's runtime tuning.
    app: await shippedRuntimeEnv("app"),
  });
  for (const repo of repos.slice(1)) stack.github.addRepo(OWNER, repo.repo, repo.repoId);
});

afterAll(async () => {
  await stack?.stop();
});

afterEach((context) => {
  expect(stack?.github.violations).toEqual([]);
  if (context.task.result?.state === "fail") console.error(stack?.output());
});

describe("load", { timeout: 1_200_000 }, () => {
  it("previews 200 pull requests opened at once on one replica, then on two, within 400 MB each", async () => {
    const one = sampleMemory([s().app]);
    const single = await burst([s().appUrl], 1);
    const [singlePeak = { rss: 0, pss: 0 }] = await one();
    const replica = await s().startAppReplica();
    const two = sampleMemory([s().app, replica.app]);
    const double = await burst([s().appUrl, replica.url], 2);
    const doublePeaks = await two();
    const p50 = percentile(single.latencies, 50);
    const p95 = percentile(single.latencies, 95);
    console.log(
      [
        `${PULLS} previews of ${OBJECTS}-object repositories opened at once:`,
        `  one replica: delivery → comment p50 ${(p50 / 1000).toFixed(1)} s, p95 ${(p95 / 1000).toFixed(1)} s (p95/p50 ${(p95 / p50).toFixed(2)}, goal ≤ 3), all in ${(single.wallMs / 1000).toFixed(1)} s; peak ${mb(singlePeak)} with its render processes (goal ≤ ${MEMORY_LIMIT_MB} MB PSS)`,
        `  two replicas: p50 ${(percentile(double.latencies, 50) / 1000).toFixed(1)} s, p95 ${(percentile(double.latencies, 95) / 1000).toFixed(1)} s, all in ${(double.wallMs / 1000).toFixed(1)} s (${(double.wallMs / single.wallMs).toFixed(2)}× one replica's, goal ≤ 0.5); peaks ${doublePeaks.map(mb).join(" and ")}`,
      ].join("\n"),
    );
    for (const peak of [singlePeak, ...doublePeaks]) expect(peak.pss).toBeLessThanOrEqual(MEMORY_LIMIT_MB);
  });
});
