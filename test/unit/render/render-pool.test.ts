import { rm } from "node:fs/promises";
import { afterAll, describe, expect, inject, it } from "vitest";
import { parseConfig, type Environment } from "../../../src/core/config.ts";
import type { Side } from "../../../src/core/diff-report.ts";
import { decodeRenderEntry, encodeRenderEntry, sideOfEntry } from "../../../src/render/render-entry.ts";
import { InProcessRenderer } from "../../../src/render/compare.ts";
import { RenderPool } from "../../../src/render/render-pool.ts";
import { openRendererContext } from "../../../src/render/setup.ts";
import { checkout, removeCheckouts } from "../../helpers/checkouts.ts";

afterAll(removeCheckouts);

const tools = () => ({ kustomize: inject("kustomize"), helm: inject("helm") });
const limits = { timeoutMs: 60_000, maxOutputBytes: 256 * 1024 * 1024 };

function env(fields: Partial<Environment> = {}): Environment {
  const base = parseConfig("version: 1\nenvironments:\n  - name: test\n    path: m\n").environments[0];
  if (!base) throw new Error("no environment");
  return { ...base, ...fields };
}

const configMap = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;
const secret = (value: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: ${value}\n  # a comment\n`;

/** A base and a head that differ in a ConfigMap, a Secret and an added object. */
async function checkouts(): Promise<Record<Side, string>> {
  return {
    base: await checkout(undefined, {
      "m/a.yaml": configMap("a", "1"),
      "m/s.yaml": secret("hunter2"),
      "m/keep.yaml": configMap("keep", "k"),
    }),
    head: await checkout(undefined, {
      "m/a.yaml": configMap("a", "2"),
      "m/s.yaml": secret("hunter3"),
      "m/keep.yaml": configMap("keep", "k"),
      "m/b.yaml": configMap("b", "line one\\u2028line two\\nline three"),
    }),
  };
}

/** Runs `fn` with a render pool of one process with `heapMb` of heap, closed afterwards. */
async function withPool(heapMb: number, fn: (pool: RenderPool) => Promise<void>): Promise<void> {
  const pool = new RenderPool({ size: 1, heapMb, tools: tools(), limits });
  try {
    await fn(pool);
  } finally {
    await pool.close();
  }
}

/** The comparison `sluice diff` makes of the same checkouts, in this process. */
async function inProcess(dirs: Record<Side, string>) {
  const [base, head] = await Promise.all([openRendererContext(dirs.base, tools()), openRendererContext(dirs.head, tools())]);
  try {
    return await new InProcessRenderer(base, head).compare(env());
  } finally {
    await Promise.all([base.dispose(), head.dispose()]);
  }
}

describe("comparisons in a render process", () => {
  it("compares as `sluice diff` does, and again from the cache entries it made without reading either checkout", async () => {
    await withPool(256, async (pool) => {
      const dirs = await checkouts();
      const expected = await inProcess(dirs);
      expect(expected.diff.summary).toEqual({ added: 1, modified: 2, removed: 0, unchanged: 1 });
      const first = await pool.compare(env(), { checkouts: dirs, cached: {} });
      expect(first.comparison).toEqual(expected);
      const entries = await first.entries;
      expect(Object.keys(entries).sort()).toEqual(["base", "head"]);
      // No Secret value reaches the comparison.
      expect(JSON.stringify(first.comparison)).not.toMatch(/hunter[23]/);
      await Promise.all([rm(dirs.base, { recursive: true }), rm(dirs.head, { recursive: true })]);
      const again = await pool.compare(env(), { checkouts: dirs, cached: entries });
      expect(again.comparison).toEqual(expected);
      expect(await again.entries).toEqual({});
    });
  });

  it("renders a side anew when its cache entry does not decode, and makes an entry for it", async () => {
    await withPool(256, async (pool) => {
      const dirs = await checkouts();
      const expected = await inProcess(dirs);
      const made = await (await pool.compare(env(), { checkouts: dirs, cached: {} })).entries;
      const result = await pool.compare(env(), { checkouts: dirs, cached: { base: Buffer.from("not a cache entry"), head: made.head } });
      expect(result.comparison).toEqual(expected);
      const remade = await result.entries;
      expect(Object.keys(remade)).toEqual(["base"]);
      expect(await decodeRenderEntry(remade.base ?? new Uint8Array())).toEqual(await decodeRenderEntry(made.base ?? new Uint8Array()));
    });
  });

  it("turns a render process that dies mid-comparison into an error naming the environment, and keeps serving", async () => {
    await withPool(512, async (pool) => {
      const dirs = await checkouts();
      // Enough documents that the render is still running when its process is killed.
      const many = Array.from({ length: 60_000 }, (_, i) => configMap(`n${i}`, String(i))).join("---\n");
      const big = await checkout(undefined, { "m/many.yaml": many });
      const pending = pool.compare(env(), { checkouts: { base: dirs.base, head: big }, cached: {} });
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const pid of pool.pids()) process.kill(pid, "SIGKILL");
      const { comparison, entries } = await pending;
      expect(comparison.errors.map((e) => e.message)).toEqual([
        "the render process for m was killed by SIGKILL; nothing was rendered",
        "the render process for m was killed by SIGKILL; nothing was rendered",
      ]);
      expect(await entries).toEqual({});
      // The next comparison gets a fresh process.
      expect((await pool.compare(env(), { checkouts: dirs, cached: {} })).comparison).toEqual(await inProcess(dirs));
    });
  });
});

describe("a closed render pool", () => {
  it("refuses a comparison instead of leaving it waiting", async () => {
    const pool = new RenderPool({ size: 1, heapMb: 128, tools: tools(), limits });
    await pool.close();
    const dirs = await checkouts();
    await expect(pool.compare(env(), { checkouts: dirs, cached: {} })).rejects.toThrow("the render pool is closed");
  });
});

describe("render cache entries", () => {
  it("decode to what was encoded, whatever the objects' JSON holds", async () => {
    const resource = (name: string, data: unknown) => ({
      id: { group: "", version: "v1", kind: "ConfigMap", namespace: "default", name },
      key: `ConfigMap/default/${name}`,
      json: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data }),
      source: { file: "m/a.yaml", line: 3 },
    });
    const side = sideOfEntry({
      resources: [
        resource("newlines", { a: "one\ntwo\r\nthree" }),
        resource("separators", { a: "\u2028\u2029\u0085" }),
        resource("empty", {}),
        resource("unicode", { ключ: "🚀 値" }),
      ],
      problems: [{ file: "m/b.yaml", line: 2, message: "a problem" }],
      unknownScopes: ["Widget.example.com"],
      notes: ["a note"],
    });
    const decoded = await decodeRenderEntry(await encodeRenderEntry(side));
    expect(decoded && sideOfEntry(decoded)).toEqual(side);
    expect(await decodeRenderEntry(Buffer.from("garbage"))).toBeUndefined();
  });
});
