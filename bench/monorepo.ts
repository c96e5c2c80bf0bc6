// Benchmark: previews of a monorepo of 500 environments (bench/monorepo-tree.ts) through the
// running app against the fake GitHub, against the renderers themselves run in the same
// invocation (kustomize build, helm template, and Sluice's own read of a plain directory, one
// environment after another, summed and divided by the cores; and the same renderers run on every
// core at once, as a CI job that renders in parallel would run them).
//   (a) a pull request touching 3 environments: delivery → comment, and how many were rendered;
//   (b) one touching the shared files of all of them (the base's renders cached by an earlier
//       pull request, and cold): delivery → first comment, → complete comment; the app's peak RSS.
// Usage: node bench/monorepo.ts [--environments 500] [--runs 1]; BENCH_RENDER_PROCESSES=n sets the
// app's SLUICE_RENDER_PROCESSES (one per CPU by default). Prints the CPU the render processes and
// their renderers used meanwhile, as a share of the cores: how busy the pool kept them (and the
// render processes' own part of it); and where
// the time of (b) went: the first comparison asked of the render pool, the last one answered, the
// final comment at GitHub and the progress edit before it (GitHub's pacing holds the final comment
// a second behind that edit), how busy the app's event loop was, and how often the pool had fewer
// comparisons to run than processes.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { PREVIEW_MARKER } from "../src/core/preview-comment.ts";
import { RenderPool } from "../src/render/render-pool.ts";
import { startTestEnv } from "../test/env/start.ts";
import { examplePayload, startHarness, type AppHarness } from "../test/helpers/app-harness.ts";
import { processTable, processTree } from "../test/helpers/figures.ts";
import { median } from "./measure.ts";
import { monorepoEnvironments, writeMonorepo, type MonorepoVersion } from "./monorepo-tree.ts";

const run = promisify(execFile);
const { values } = parseArgs({ options: { environments: { type: "string", default: "500" }, runs: { type: "string", default: "1" } } });
const count = Number(values.environments);
const runs = Number(values.runs);
const cores = availableParallelism();
const environments = monorepoEnvironments(count);

/**
 * The renderers alone, or Sluice's own render, over every environment of the checkout in `dir`,
 * one after another (bench/monorepo-renderers.ts), in a process of their own: started from this
 * one, whose heap holds the app and the test environment, each renderer's fork would cost several
 * times what it costs a user's shell or CI step.
 */
async function renderersAlone(
  dir: string,
  tools: { kustomize: string; helm: string },
  mode: "renderers" | "sluice",
  parallel = 1,
): Promise<{ ms: number; byKind: Record<string, number> }> {
  const script = new URL("./monorepo-renderers.ts", import.meta.url).pathname;
  const { stdout } = await run(
    process.execPath,
    [
      script,
      "--dir",
      dir,
      "--kustomize",
      tools.kustomize,
      "--helm",
      tools.helm,
      "--environments",
      String(count),
      "--mode",
      mode,
      "--parallel",
      String(parallel),
    ],
    { maxBuffer: 1024 * 1024 },
  );
  return JSON.parse(stdout) as { ms: number; byKind: Record<string, number> };
}

/**
 * CPU time, in ms, of this process's render processes and everything under them (the sandboxes
 * and the renderers): each one alive, and the children each has waited for; and of the render
 * processes alone.
 */
async function renderCpuMs(): Promise<{ total: number; own: number }> {
  const table = await processTable();
  let total = 0;
  let own = 0;
  for (const [pid, { parent }] of table) {
    if (parent !== process.pid) continue;
    const cmdline = await readFile(`/proc/${String(pid)}/cmdline`, "utf8").catch(() => "");
    if (!cmdline.includes("render-process")) continue;
    own += table.get(pid)?.ownMs ?? 0;
    for (const under of processTree(table, pid)) total += table.get(under)?.cpuMs ?? 0;
  }
  return { total, own };
}

/** A metric's value summed over its labels. */
async function metric(h: AppHarness, name: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.split(" ").at(-1));
  return total;
}

/**
 * When each comparison's answer came back from a render process (ms since the epoch), recorded by
 * wrapping the pool the app runs in this process: where the time between "the renders are done"
 * and "the comment is complete" goes.
 */
const compared: number[] = [];
/** Each comparison from when it was asked to when it was answered (ms since the epoch). */
const spans: [number, number][] = [];
/** When each comparison was asked of the pool (ms since the epoch). */
const asked: number[] = [];
const compare = Object.getOwnPropertyDescriptor(RenderPool.prototype, "compare")?.value as (
  this: RenderPool,
  ...args: Parameters<RenderPool["compare"]>
) => ReturnType<RenderPool["compare"]>;
RenderPool.prototype.compare = async function (this: RenderPool, ...args: Parameters<RenderPool["compare"]>) {
  const at = Date.now();
  asked.push(at);
  const answer = await compare.apply(this, args);
  compared.push(Date.now());
  spans.push([at, Date.now()]);
  return answer;
};

/** The share of the time `spans` cover in which fewer than `size` of them are open. */
function starvedShare(list: readonly [number, number][], size: number): number {
  const events = list.flatMap(([from, to]) => [
    [from, 1],
    [to, -1],
  ]);
  events.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0) || (b[1] ?? 0) - (a[1] ?? 0));
  let open = 0;
  let last = events[0]?.[0] ?? 0;
  let starved = 0;
  for (const [at = 0, change = 0] of events) {
    if (open < size) starved += at - last;
    open += change;
    last = at;
  }
  const total = (events.at(-1)?.[0] ?? 0) - (events[0]?.[0] ?? 0);
  return total > 0 ? starved / total : 0;
}

let number = 100;
let shaCounter = 1;

async function addCommit(h: AppHarness, work: string, version: MonorepoVersion): Promise<{ sha: string; dir: string }> {
  const dir = join(work, `commit-${shaCounter}`);
  await writeMonorepo(dir, environments, version);
  const sha = (shaCounter++).toString(16).padStart(40, "e");
  await h.github.addCommit("bench", "mono", sha, dir);
  return { sha, dir };
}

/** What one preview took, from the delivery: the first comment, the complete one, and the app's peak RSS meanwhile. */
interface Timed {
  firstMs: number;
  completeMs: number;
  /** The check run completed. */
  checkMs: number;
  /** CPU time of this process (the app, the fake GitHub, the harness) meanwhile. */
  appCpuMs: number;
  /** CPU time of the render processes and their renderers meanwhile. */
  renderCpuMs: number;
  /** CPU time of the render processes alone meanwhile. */
  renderOwnCpuMs: number;
  peakRssMb: number;
  renders: number;
  rendered: number;
  /** The first comparison asked of the render pool, from the delivery. */
  firstAskedMs: number;
  /** The last comparison answered, from the delivery. */
  lastComparedMs: number;
  /** The final comment's write reached GitHub, from the delivery. */
  finalPostedMs: number;
  /** The progress write before it reached GitHub, from the delivery (undefined without one). */
  lastProgressMs: number | undefined;
  /** Comment writes. */
  commentWrites: number;
  /** The share of the time from the first comparison asked to the last answered with fewer comparisons asked and not answered than render processes: the pool starved. */
  starved: number;
  /** How busy this process's event loop (the app's, the fake GitHub's) was meanwhile, 0 to 1. */
  loopBusy: number;
}

/** Opens a pull request (from an installation of its own, so no earlier preview's writes pace it) and waits for its check run to complete. */
async function preview(h: AppHarness, base: string, head: string): Promise<Timed> {
  number += 1;
  const payload = examplePayload("pull_request", "opened");
  const repository = payload.repository as Record<string, unknown>;
  Object.assign(repository, { id: 2, name: "mono", full_name: "bench/mono", owner: { login: "bench" } });
  const pull = payload.pull_request as Record<string, Record<string, unknown>>;
  Object.assign(pull, { number, state: "open", draft: false });
  pull.base = { ...pull.base, sha: base, ref: "main" };
  pull.head = { ...pull.head, sha: head, ref: "feature" };
  payload.number = number;
  payload.installation = { id: number };
  const rendersBefore = await metric(h, "sluice_render_duration_seconds_count");
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  const started = performance.now();
  const startedAt = Date.now();
  const requestsBefore = h.github.requests.length;
  compared.length = 0;
  asked.length = 0;
  spans.length = 0;
  const cpuBefore = process.cpuUsage();
  const renderCpuBefore = await renderCpuMs();
  const loopBefore = performance.eventLoopUtilization();
  let firstMs: number | undefined;
  let completeMs: number | undefined;
  try {
    await h.deliver("pull_request", payload);
    // Looked at again only once the fake GitHub has answered something more: a search of every
    // comment each tick would take CPU from the app it measures.
    let seen = -1;
    for (;;) {
      if (h.github.answered === seen) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        continue;
      }
      seen = h.github.answered;
      const comment = h.github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER));
      if (comment && firstMs === undefined) firstMs = performance.now() - started;
      // Complete: the final body is in (a progress body says how many are done).
      if (comment && completeMs === undefined && !/\*\*Rendering: \d+ of \d+ environments? done\.\*\*/.test(comment.body))
        completeMs = performance.now() - started;
      const check = [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === "sluice/preview");
      if (comment && check?.status === "completed") break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    clearInterval(sampler);
  }
  const checkMs = performance.now() - started;
  const loopBusy = performance.eventLoopUtilization(loopBefore).utilization;
  const cpu = process.cpuUsage(cpuBefore);
  const renderCpuAfter = await renderCpuMs();
  const body = h.github.comments.find((c) => c.issue === number)?.body ?? "";
  const rendered = environments.filter(
    (env) => new RegExp(`^\\| \`${env.name}\` \\|.*\\|$`, "m").exec(body)?.[0].includes("inputs unchanged") === false,
  ).length;
  const writes = h.github.requests
    .slice(requestsBefore)
    .filter((r) => r.operationId === "issues/create-comment" || r.operationId === "issues/update-comment");
  const final = writes.at(-1);
  return {
    firstAskedMs: Math.min(...asked) - startedAt,
    lastComparedMs: Math.max(...compared) - startedAt,
    finalPostedMs: (final?.at ?? startedAt) - startedAt,
    lastProgressMs: writes.length > 1 ? (writes.at(-2)?.at ?? startedAt) - startedAt : undefined,
    commentWrites: writes.length,
    loopBusy,
    starved: starvedShare(spans, Number(process.env.BENCH_RENDER_PROCESSES ?? cores)),
    firstMs: firstMs ?? checkMs,
    completeMs: completeMs ?? checkMs,
    checkMs,
    appCpuMs: (cpu.user + cpu.system) / 1000,
    renderCpuMs: renderCpuAfter.total - renderCpuBefore.total,
    renderOwnCpuMs: renderCpuAfter.own - renderCpuBefore.own,
    peakRssMb: peak / 1024 / 1024,
    renders: (await metric(h, "sluice_render_duration_seconds_count")) - rendersBefore,
    rendered,
  };
}

const env = await startTestEnv({ env: { ...process.env, KUBECONFIG: "" }, kubernetes: false, log: () => undefined });
const work = await mkdtemp(join(tmpdir(), "sluice-bench-monorepo-"));
try {
  const touched = [environments[0], environments[1], environments[2]].map((e) => e?.name ?? "");
  const results: {
    a: Timed[];
    warm: Timed[];
    cold: Timed[];
    peer: number[];
    parallelPeer: number[];
    engine: number[];
    byKind: Record<string, number>[];
  } = {
    a: [],
    warm: [],
    cold: [],
    peer: [],
    parallelPeer: [],
    engine: [],
    byKind: [],
  };
  for (let i = 0; i < runs; i++) {
    const h = await startHarness({
      redisUrl: env.redisUrl,
      kustomize: env.tools.kustomize,
      helm: env.tools.helm,
      database: 4,
      logLevel: "error",
      env: {
        SLUICE_RENDER_SANDBOX: "off",
        ...(process.env.BENCH_RENDER_PROCESSES ? { SLUICE_RENDER_PROCESSES: process.env.BENCH_RENDER_PROCESSES } : {}),
      },
    });
    try {
      h.github.addRepo("bench", "mono", 2);
      const v0 = await addCommit(h, work, { shared: 0 });
      const v1 = await addCommit(h, work, { shared: 1 });
      const v2 = await addCommit(h, work, { shared: 2 });
      const v1a = await addCommit(h, work, { shared: 1, touched });
      // Cold: neither side rendered before. Then the base of (b) is v1, cached by the cold preview's head.
      results.cold.push(await preview(h, v0.sha, v1.sha));
      // The peer: every environment of the head of (b), rendered by its renderer alone, just before
      // and just after the preview (the machine is shared: the mean of the two follows its load).
      // The second peer: the same renderers run on every core at once, as a CI job would run them.
      const engineBefore = await renderersAlone(v2.dir, env.tools, "sluice");
      const parallelBefore = await renderersAlone(v2.dir, env.tools, "renderers", cores);
      const before = await renderersAlone(v2.dir, env.tools, "renderers");
      results.warm.push(await preview(h, v1.sha, v2.sha));
      const after = await renderersAlone(v2.dir, env.tools, "renderers");
      const parallelAfter = await renderersAlone(v2.dir, env.tools, "renderers", cores);
      const engineAfter = await renderersAlone(v2.dir, env.tools, "sluice");
      results.peer.push((before.ms + after.ms) / 2);
      results.parallelPeer.push((parallelBefore.ms + parallelAfter.ms) / 2);
      results.engine.push((engineBefore.ms + engineAfter.ms) / 2);
      results.byKind.push(before.byKind);
      // (a): three environments touched; everything cached but their heads.
      results.a.push(await preview(h, v1.sha, v1a.sha));
    } finally {
      await h.stop();
    }
  }
  const m = (list: Timed[], key: { [K in keyof Timed]-?: Timed[K] extends number ? K : never }[keyof Timed]) =>
    median(list.map((t) => t[key]));
  const peer = median(results.peer);
  const share = peer / cores;
  console.log(
    `\nmonorepo of ${count} environments (${environments.filter((e) => e.kind === "plain").length} plain, ${environments.filter((e) => e.kind === "kustomize").length} kustomize overlays over shared bases, ${environments.filter((e) => e.kind === "helm").length} helm releases of shared charts), 20–100 objects each, ${cores} cores, ${runs} run(s), medians:`,
  );
  const kinds = results.byKind[0] ?? {};
  console.log(
    `  peer: the renderers alone, one environment after another   ${peer.toFixed(0)} ms  (plain ${(kinds.plain ?? 0).toFixed(0)}, kustomize ${(kinds.kustomize ?? 0).toFixed(0)}, helm ${(kinds.helm ?? 0).toFixed(0)}); ÷ ${cores} cores = ${share.toFixed(0)} ms`,
  );
  const parallelPeer = median(results.parallelPeer);
  console.log(
    `  peer: the same renderers, ${cores} at a time (as a CI job on every core)   ${parallelPeer.toFixed(0)} ms = ${(parallelPeer / share).toFixed(2)}× (sum of renders ÷ cores)`,
  );
  const engine = median(results.engine);
  console.log(
    `  Sluice's own render of each (the tool and reading its output), one after another ${engine.toFixed(0)} ms; ÷ ${cores} cores = ${(engine / cores).toFixed(0)} ms`,
  );
  console.log(
    `  (a) 3 environments touched: delivery → comment            ${m(results.a, "completeMs").toFixed(0)} ms  (rendered ${m(results.a, "rendered")} environments, ${m(results.a, "renders")} renders)`,
  );
  console.log(
    `  (b) shared files of all ${count} touched, base cached: first comment ${m(results.warm, "firstMs").toFixed(0)} ms, complete ${m(results.warm, "completeMs").toFixed(0)} ms = ${(m(results.warm, "completeMs") / share).toFixed(2)}× (sum of renders ÷ cores), ${(m(results.warm, "completeMs") / parallelPeer).toFixed(2)}× (the renderers ${cores} at a time), ${(m(results.warm, "completeMs") / (engine / cores)).toFixed(2)}× (Sluice's renders ÷ cores), check completed ${m(results.warm, "checkMs").toFixed(0)} ms; CPU: render processes and renderers ${m(results.warm, "renderCpuMs").toFixed(0)} ms (${((100 * m(results.warm, "renderCpuMs")) / (cores * m(results.warm, "completeMs"))).toFixed(0)}% of ${cores} cores; the render processes themselves ${m(results.warm, "renderOwnCpuMs").toFixed(0)} ms), app process ${m(results.warm, "appCpuMs").toFixed(0)} ms  (rendered ${m(results.warm, "rendered")}, ${m(results.warm, "renders")} renders); app peak RSS ${m(results.warm, "peakRssMb").toFixed(0)} MB`,
  );
  for (const [name, list] of [
    ["base cached", results.warm],
    ["cold", results.cold],
  ] as const)
    for (const t of list)
      console.log(
        `      ${name}: first comparison asked ${t.firstAskedMs} ms, last answered ${t.lastComparedMs} ms, final comment at GitHub ${t.finalPostedMs} ms (${t.finalPostedMs - t.lastComparedMs} ms after), ${t.commentWrites} comment writes, the one before it at ${t.lastProgressMs ?? "—"} ms; the app's event loop busy ${(100 * t.loopBusy).toFixed(0)}% of the time; fewer comparisons waiting or running than render processes ${(100 * t.starved).toFixed(0)}% of the time`,
      );
  console.log(
    `      cold (both sides rendered): first comment ${m(results.cold, "firstMs").toFixed(0)} ms, complete ${m(results.cold, "completeMs").toFixed(0)} ms = ${(m(results.cold, "completeMs") / (2 * share)).toFixed(2)}× (sum of both sides' renders ÷ cores); app peak RSS ${m(results.cold, "peakRssMb").toFixed(0)} MB`,
  );
} finally {
  await env.stop();
  await rm(work, { recursive: true, force: true });
}
