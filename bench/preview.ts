// Benchmark: time from "pull request opened" (a signed webhook delivered to the running app) to
// "comment body posted" (on the fake GitHub), cold and with the base already rendered, against
// the renderer's own time on the same trees. Usage: npm run bench:preview [-- --runs 3]
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { RENDER_CACHE_PREFIX } from "../src/app/state/redis-keys.ts";
import { PREVIEW_MARKER } from "../src/core/preview-comment.ts";
import { startTestEnv } from "../test/env/start.ts";
import { examplePayload, startHarness, type AppHarness } from "../test/helpers/app-harness.ts";
import { generatePair } from "./generate.ts";
import { median } from "./measure.ts";

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    kustomize: { type: "string", default: "4000" },
    plain: { type: "string", default: "10000" },
  },
});
const runs = Number(values.runs);

/** A kustomize tree of `resources` objects in `resources / 4` files, with a namespace and a labels transformer. */
async function kustomizeTree(dir: string, resources: number, version: number): Promise<void> {
  const pair = generatePair(resources, 7);
  const docs = (version === 0 ? pair.base : pair.head).split("---\n");
  const files: string[] = [];
  await mkdir(join(dir, "app"), { recursive: true });
  for (let i = 0; i < docs.length; i += 4) {
    const name = `r-${String(i / 4).padStart(4, "0")}.yaml`;
    files.push(name);
    await writeFile(join(dir, "app", name), docs.slice(i, i + 4).join("---\n"));
  }
  await writeFile(
    join(dir, "app", "kustomization.yaml"),
    `namespace: bench\nlabels:\n  - pairs:\n      team: bench\nresources:\n${files.map((f) => `  - ${f}`).join("\n")}\n`,
  );
  await mkdir(join(dir, ".github"), { recursive: true });
  await writeFile(join(dir, ".github", "sluice.yml"), "version: 1\nenvironments:\n  - name: bench\n    path: app\n    namespace: bench\n");
}

async function plainTree(dir: string, resources: number, version: number): Promise<void> {
  const pair = generatePair(resources, 11);
  await mkdir(join(dir, "manifests"), { recursive: true });
  await writeFile(join(dir, "manifests", "all.yaml"), version === 0 ? pair.base : pair.head);
}

/** A progress body's line (core/preview-progress.ts). */
const PROGRESS = /\*\*Rendering: \d+ of \d+ environments? done\.\*\*/;

let number = 100;
/**
 * Opens a pull request and waits for its comment. Each pull request comes from an installation of
 * its own: GitHub's one write a second is per installation, and one preview's writes must not
 * pace the next one's.
 */
async function openAndWait(h: AppHarness, base: string, head: string): Promise<number> {
  number += 1;
  const payload = examplePayload("pull_request", "opened");
  const repository = payload.repository as Record<string, unknown>;
  Object.assign(repository, { id: 1, name: "bench", full_name: "bench/bench", owner: { login: "bench" } });
  const pull = payload.pull_request as Record<string, Record<string, unknown>>;
  Object.assign(pull, { number, state: "open", draft: false });
  pull.base = { ...pull.base, sha: base, ref: "main" };
  pull.head = { ...pull.head, sha: head, ref: "feature" };
  payload.number = number;
  payload.installation = { id: number };
  const started = performance.now();
  await h.deliver("pull_request", payload);
  // Looked for every 2 ms: the figure is the preview's, not the poll's. A preview that renders for
  // more than a second streams: its first bodies say how many environments are done; the figure is the final one's.
  while (!h.github.comments.some((c) => c.issue === number && c.body.includes(PREVIEW_MARKER) && !PROGRESS.test(c.body)))
    await new Promise((r) => setTimeout(r, 2));
  return performance.now() - started;
}

const env = await startTestEnv({ env: { ...process.env, KUBECONFIG: "" }, kubernetes: false, log: () => undefined });
const work = await mkdtemp(join(tmpdir(), "sluice-bench-preview-"));
try {
  const scenarios = [
    {
      name: `plain, ${values.plain} resources`,
      tree: plainTree,
      size: Number(values.plain),
      renderer: async (dir: string) =>
        run(process.execPath, [
          join(import.meta.dirname, "..", "bin", "sluice.js"),
          "diff",
          dir,
          dir,
          "--format",
          "json",
          "--out",
          "/dev/null",
        ]),
    },
    {
      name: `kustomize, ${values.kustomize} resources in ${Number(values.kustomize) / 4} files`,
      tree: kustomizeTree,
      size: Number(values.kustomize),
      renderer: async (dir: string) => run(env.tools.kustomize, ["build", join(dir, "app")], { maxBuffer: 1024 ** 3 }),
    },
  ];
  let shaCounter = 1;
  for (const scenario of scenarios) {
    const cold: number[] = [];
    const warm: number[] = [];
    const render: number[] = [];
    for (let i = 0; i < runs; i++) {
      const h = await startHarness({
        redisUrl: env.redisUrl,
        kustomize: env.tools.kustomize,
        helm: env.tools.helm,
        database: 3,
        logLevel: "error",
      });
      try {
        h.github.addRepo("bench", "bench", 1);
        // A running app has served a preview before: its render processes are up, its code warm.
        const small = await Promise.all(
          [0, 1].map(async (v) => {
            const dir = join(work, `warm-up-${i}-${v}`);
            await plainTree(dir, 10, v);
            const sha = (shaCounter++).toString(16).padStart(40, "b");
            await h.github.addCommit("bench", "bench", sha, dir);
            return sha;
          }),
        );
        await openAndWait(h, small[0] ?? "", small[1] ?? "");
        const dirs = await Promise.all(
          [0, 1, 2].map(async (v) => {
            const dir = join(work, `${scenario.size}-${i}-${v}`);
            await scenario.tree(dir, scenario.size, Math.min(v, 1));
            return dir;
          }),
        );
        const [base = "", head = "", head2 = ""] = await Promise.all(
          dirs.map(async (dir, v) => {
            const sha = (shaCounter++).toString(16).padStart(40, "b");
            // head2 differs from head by one file, so its render is not cached.
            if (v === 2)
              await writeFile(
                join(dir, scenario.size === Number(values.plain) ? "manifests/extra.yaml" : "app/r-0000.yaml"),
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
              );
            await h.github.addCommit("bench", "bench", sha, dir);
            return sha;
          }),
        );
        const started = performance.now();
        await scenario.renderer(dirs[1] ?? "");
        render.push(performance.now() - started);
        cold.push(await openAndWait(h, base, head));
        // "Base cached" means it: the cold preview's renders are written after its comment.
        while ((await h.redis.zcard(`${RENDER_CACHE_PREFIX}:index`)) < 2) await new Promise((r) => setTimeout(r, 20));
        warm.push(await openAndWait(h, base, head2));
      } finally {
        await h.stop();
      }
    }
    const r = median(render);
    const c = median(cold);
    const w = median(warm);
    console.log(`\n${scenario.name}, ${runs} runs, medians:`);
    console.log(`  one head render (renderer alone)  ${r.toFixed(0)} ms`);
    console.log(
      `  opened → comment, cold            ${c.toFixed(0)} ms  (${(c / r).toFixed(2)}× one render; base and head rendered by one render process, sharing parsed documents)`,
    );
    console.log(
      `  opened → comment, base cached     ${w.toFixed(0)} ms  (${(w / r).toFixed(2)}× one head render; Sluice's own share ${(((w - r) / r) * 100).toFixed(1)}% of the render time)`,
    );
    console.log(`  overhead (comment − one render)   cold ${(c - r).toFixed(0)} ms, base cached ${(w - r).toFixed(0)} ms`);
  }
} finally {
  await env.stop();
  await rm(work, { recursive: true, force: true });
}
