import { cp, mkdir, readdir, readFile, symlink, writeFile, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { removeCheckouts, tempDir } from "../helpers/checkouts.ts";

// The bad-input corpus: every case under test/fixtures/bad/ is a pull request's head (and, for
// configuration cases, a base with its .github/sluice.yml), run through `sluice diff` in this
// process. Each must end with the errors it expects, naming file and line, the process alive, and
// memory bounded. Large inputs are generated here rather than committed.

const CORPUS = fileURLToPath(new URL("../fixtures/bad/", import.meta.url));
/** Strict rendering of the whole head, for cases that bring no configuration of their own. */
const DEFAULT_CONFIG = "version: 1\nenvironments:\n  - name: default\n    path: .\n";
/** What the process may grow to over the whole corpus (the 50 MB case parses in memory). */
const RSS_LIMIT_BYTES = 1536 * 1024 * 1024;

interface Case {
  about: string;
  generate?: {
    kind: "big-file" | "documents" | "files" | "huge-key";
    path?: string;
    dir?: string;
    megabytes?: number;
    count?: number;
    bytes?: number;
  };
  links?: Record<string, string>;
  expect: { exit: number; errors: string[] };
}

const names = (await readdir(CORPUS)).sort();
const figures = { cases: 0, refused: 0, handled: 0, peakRssBytes: 0 };

async function generate(head: string, spec: NonNullable<Case["generate"]>): Promise<void> {
  const path = join(head, spec.path ?? spec.dir ?? "manifests");
  await mkdir(spec.kind === "files" ? path : dirname(path), { recursive: true });
  switch (spec.kind) {
    case "big-file": {
      const file = await open(path, "w");
      await file.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n");
      const line = (i: number) => `  k${String(i).padStart(8, "0")}: "${"x".repeat(100)}"\n`;
      const lines = Math.floor(((spec.megabytes ?? 1) * 1024 * 1024) / line(0).length);
      for (let i = 0; i < lines; i += 10_000)
        await file.write(Array.from({ length: Math.min(10_000, lines - i) }, (_, k) => line(i + k)).join(""));
      await file.close();
      return;
    }
    case "documents":
      await writeFile(
        path,
        Array.from(
          { length: spec.count ?? 1 },
          (_, i) => `---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  a: "${i}"\n`,
        ).join(""),
      );
      return;
    case "files":
      for (let i = 0; i < (spec.count ?? 1); i++)
        await writeFile(join(path, `cm-${i}.yaml`), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  a: "${i}"\n`);
      return;
    case "huge-key":
      await writeFile(path, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  ${"k".repeat(spec.bytes ?? 1)}: v\n`);
      return;
  }
}

/** The case's base and head as checkouts, with generated files and links made. */
async function checkouts(name: string, spec: Case): Promise<{ base: string; head: string }> {
  const root = await tempDir(`sluice-bad-${name}-`);
  const sides = { base: join(root, "base"), head: join(root, "head") };
  for (const side of ["base", "head"] as const) {
    await mkdir(sides[side], { recursive: true });
    await cp(join(CORPUS, name, side), sides[side], { recursive: true, verbatimSymlinks: true }).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    });
  }
  if (spec.generate) await generate(sides.head, spec.generate);
  for (const [path, target] of Object.entries(spec.links ?? {})) {
    await mkdir(dirname(join(sides.head, path)), { recursive: true });
    await symlink(target, join(sides.head, path));
  }
  return sides;
}

afterAll(async () => {
  await removeCheckouts();
  console.log(
    `bad input: ${figures.cases} cases, ${figures.refused} refused with errors naming file and line, ${figures.handled} read as kubectl would; peak RSS ${Math.round(figures.peakRssBytes / 1024 / 1024)} MiB (limit ${RSS_LIMIT_BYTES / 1024 / 1024} MiB)`,
  );
  expect(figures.cases).toBeGreaterThanOrEqual(60);
  expect(figures.peakRssBytes).toBeLessThan(RSS_LIMIT_BYTES);
});

describe("the bad-input corpus", { timeout: 120_000 }, () => {
  it.each(names)("%s", async (name) => {
    const spec = JSON.parse(await readFile(join(CORPUS, name, "case.json"), "utf8")) as Case;
    const { base, head } = await checkouts(name, spec);
    const hasConfig = await readFile(join(base, ".github", "sluice.yml")).then(
      () => true,
      () => false,
    );
    const config = hasConfig ? [] : ["--config", join(base, "..", "config.yml")];
    if (!hasConfig) await writeFile(join(base, "..", "config.yml"), DEFAULT_CONFIG);
    let stderr = "";
    const code = await main(["diff", base, head, "--format", "json", ...config], {
      env: { PATH: process.env.PATH, SLUICE_KUSTOMIZE: inject("kustomize"), SLUICE_HELM: inject("helm") },
      cwd: base,
      stdout: () => undefined,
      stderr: (text) => {
        stderr += text;
      },
    });
    const errors = stderr.split("\n").filter(Boolean);
    expect({ exit: code, errors }, spec.about).toEqual(spec.expect);
    // Every error names a file and a line.
    for (const error of errors) expect(error).toMatch(/^[^\s:][^:]*:\d+: /);
    figures.cases += 1;
    if (code === 2) figures.refused += 1;
    else figures.handled += 1;
    figures.peakRssBytes = Math.max(figures.peakRssBytes, process.memoryUsage().rss);
  });
});
