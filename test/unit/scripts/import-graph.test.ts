import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { floorViolations, importGraph, importLoops } from "../../../scripts/import-graph.ts";

const SRC = fileURLToPath(new URL("../../../src", import.meta.url));
const made: string[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "sluice-imports-"));
  made.push(root);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

describe("the import graph of src/", () => {
  it("has no import loops, type-only ones included", async () => {
    expect(importLoops(await importGraph(SRC))).toEqual([]);
  });

  it("imports only down its floors: render and redis never reach app, agent or cli", async () => {
    expect(floorViolations(await importGraph(SRC))).toEqual([]);
  });

  it("finds a loop of type-only imports across a multi-line import, and a three-file loop", async () => {
    const root = await tree({
      "core/a.ts": 'import type {\n  B,\n} from "./b.ts";\nexport interface A { b?: B }\n',
      "core/b.ts": 'import type { A } from "./a.ts";\nexport interface B { a?: A }\n',
      "core/c.ts": 'export { d } from "./d.ts";\n',
      "core/d.ts": 'import { e } from "./e.ts";\nexport const d = e;\n',
      "core/e.ts": 'import { c } from "../core/c.ts";\nexport const e = c;\n',
      "core/f.ts": 'import { d } from "./d.ts";\nexport const f = d;\n',
    });
    expect(importLoops(await importGraph(root))).toEqual([
      ["core/a.ts", "core/b.ts"],
      ["core/c.ts", "core/d.ts", "core/e.ts"],
    ]);
  });

  it("names each import against the floors, dynamic ones included", async () => {
    const root = await tree({
      "render/r.ts": 'const app = await import("../app/x.ts");\nexport const r = app;\n',
      "app/x.ts": 'import { r } from "../render/r.ts";\nexport const x = r;\n',
      "core/k.ts": 'import type { Y } from "../agent/y.ts";\nexport type K = Y;\n',
      "agent/y.ts": "export type Y = number;\n",
    });
    expect(floorViolations(await importGraph(root))).toEqual(["core/k.ts → agent/y.ts", "render/r.ts → app/x.ts"]);
  });
});
