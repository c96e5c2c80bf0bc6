// Benchmark: `sluice diff` against dyff and `git diff --no-index` on the same generated trees.
// Two trees of each size: block YAML as renderers write it, and manifests as people write them by
// hand (flow collections, multi-line strings, anchors, merge keys, comments).
// Usage: npm run bench:diff [-- --runs 7 --sizes 1000,10000 --styles block,hand-written]
import { execFile } from "node:child_process";
import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { generateStyledPair, type GeneratedStyle } from "./generate.ts";
import { measure, median, type Sample } from "./measure.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    sizes: { type: "string", default: "1000,10000" },
    styles: { type: "string", default: "block,hand-written" },
  },
});
const runs = Number(values.runs);
const sizes = values.sizes.split(",").map(Number);
const styles = values.styles.split(",").map((style): GeneratedStyle => {
  if (style !== "block" && style !== "hand-written") throw new Error(`--styles: "${style}" is neither block nor hand-written`);
  return style;
});

const cli = join(root, "bin", "sluice.js");
await access(join(root, "dist", "cli", "sluice.js")).catch(() => {
  throw new Error("dist/ is missing: run `npm run build` first (npm run bench:diff does)");
});
const { stdout: dyffEnv } = await promisify(execFile)("bash", [join(root, "scripts", "test-tools.sh"), "dyff"]).then(() =>
  promisify(execFile)("bash", [join(root, "scripts", "test-tools.sh"), "--print-env"]),
);
const dyff = /^SLUICE_DYFF=(.*)$/m.exec(dyffEnv)?.[1];
if (!dyff) throw new Error("dyff was not built");

const work = await mkdtemp(join(tmpdir(), "sluice-bench-diff-"));
try {
  for (const style of styles)
    for (const size of sizes) {
      const pair = generateStyledPair(size, style);
      const base = join(work, style, `${size}`, "base");
      const head = join(work, style, `${size}`, "head");
      await mkdir(base, { recursive: true });
      await mkdir(head, { recursive: true });
      await writeFile(join(base, "all.yaml"), pair.base);
      await writeFile(join(head, "all.yaml"), pair.head);
      const peers: Record<string, () => Promise<Sample>> = {
        sluice: () => measure(process.execPath, [cli, "diff", base, head, "--format", "json", "--out", join(work, "out.json")], [0, 1]),
        dyff: () => measure(dyff, ["between", "--omit-header", "--set-exit-code", join(base, "all.yaml"), join(head, "all.yaml")], [0, 1]),
        "git diff": () => measure("git", ["diff", "--no-index", "--no-color", join(base, "all.yaml"), join(head, "all.yaml")], [0, 1]),
      };
      const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(peers).map((k) => [k, []]));
      await peers.sluice?.(); // warm the file cache once
      for (let run = 0; run < runs; run++) {
        // Alternate the order so no tool always runs on a warmer machine.
        const order = run % 2 === 0 ? Object.keys(peers) : Object.keys(peers).reverse();
        for (const name of order) samples[name]?.push(await (peers[name] as () => Promise<Sample>)());
      }
      const sluiceMs = median((samples.sluice ?? []).map((s) => s.ms));
      console.log(
        `\n${size} resources, ${style} (${pair.counts.modified} modified, ${pair.counts.added} added, ${pair.counts.removed} removed), ${runs} runs, medians:`,
      );
      console.log("tool        time (ms)  peak RSS (MB)  sluice / tool");
      for (const [name, list] of Object.entries(samples)) {
        const ms = median(list.map((s) => s.ms));
        const rss = Math.max(...list.map((s) => s.rssMb));
        console.log(
          `${name.padEnd(10)} ${ms.toFixed(0).padStart(10)} ${rss.toFixed(0).padStart(14)} ${(sluiceMs / ms).toFixed(2).padStart(14)}`,
        );
      }
    }
  // Start-up: `sluice --help` against a bare `node -e 0`, alternating.
  const startup: Record<string, Sample[]> = { "sluice --help": [], "node -e 0": [] };
  const starts: Record<string, () => Promise<Sample>> = {
    "sluice --help": () => measure(process.execPath, [cli, "--help"], [0]),
    "node -e 0": () => measure(process.execPath, ["-e", "0"], [0]),
  };
  await starts["sluice --help"]?.(); // fills the compile cache once, as any earlier run would have
  for (let run = 0; run < runs; run++)
    for (const name of run % 2 === 0 ? Object.keys(starts) : Object.keys(starts).reverse())
      startup[name]?.push(await (starts[name] as () => Promise<Sample>)());
  const helpMs = median((startup["sluice --help"] ?? []).map((s) => s.ms));
  const nodeMs = median((startup["node -e 0"] ?? []).map((s) => s.ms));
  console.log(
    `\nstart-up, ${runs} runs, medians: sluice --help ${helpMs.toFixed(0)} ms (goal ≤ 100), bare node -e 0 ${nodeMs.toFixed(0)} ms`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
