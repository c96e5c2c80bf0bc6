import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DiffPages } from "../../../src/app/preview/diff-pages.ts";
import { deduplicated } from "../../../src/app/handlers/deduplicated.ts";
import { PullRequestState } from "../../../src/app/state/pr-state.ts";
import { RedisMac } from "../../../src/app/state/redis-mac.ts";
import { RenderEntryStore } from "../../../src/app/preview/render-entry-store.ts";
import type { Resource } from "../../../src/core/resource-set.ts";
import { decodeRenderEntry, encodeRenderEntry, sideOfEntry } from "../../../src/render/render-entry.ts";
import { EnvironmentStates } from "../../../src/app/deploy/environment-states.ts";
import { CachedComparer } from "../../../src/app/preview/cached-comparer.ts";
import { comparePreview, type CompareProgress } from "../../../src/app/preview/preview-comparison.ts";
import { parseConfig } from "../../../src/core/config.ts";
import { RenderPool } from "../../../src/render/render-pool.ts";
import { checkout, removeCheckouts } from "../../helpers/checkouts.ts";

const mac = new RedisMac("webhook-secret-for-tests");

let redis: Redis;
beforeAll(() => {
  redis = new Redis(inject("redisUrl"));
});
afterAll(async () => {
  await redis.quit();
  await removeCheckouts();
});

const resource = (name: string) => ({
  id: { group: "", version: "v1", kind: "ConfigMap", namespace: "d", name },
  key: `v1/ConfigMap/d/${name}`,
  json: "{}",
  source: { file: "a.yaml", line: 1 },
});

describe("PullRequestState (real Redis)", () => {
  it("publishes in order and never lets an older preview overwrite a newer one", async () => {
    const state = new PullRequestState(redis);
    const pr = { repositoryId: Math.floor(Math.random() * 1e9), number: 1 };
    const older = await state.next(pr);
    const newer = await state.next(pr);
    expect(await state.isLatest(pr, older)).toBe(false);
    expect(await state.isLatest(pr, newer)).toBe(true);
    const published: number[] = [];
    let releaseOlder: () => void = () => undefined;
    const olderHolds = new Promise<void>((resolve) => {
      releaseOlder = resolve;
    });
    // The older preview takes the lock first and is slow; the newer one waits, then publishes.
    const first = state.publish(pr, older, async () => {
      await olderHolds;
      published.push(older);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = state.publish(pr, newer, () => {
      published.push(newer);
      return Promise.resolve();
    });
    releaseOlder();
    expect(await Promise.all([first, second])).toEqual([true, true]);
    expect(published).toEqual([older, newer]);
    // Once the newer one is out, the older one is refused.
    expect(
      await state.publish(pr, older, () => {
        published.push(-1);
        return Promise.resolve();
      }),
    ).toBe(false);
    expect(published).toEqual([older, newer]);
  });

  it("creates check runs in sequence order: a preview that takes its number first creates its run first", async () => {
    const state = new PullRequestState(redis);
    const pr = { repositoryId: Math.floor(Math.random() * 1e9), number: 1 };
    const created: number[] = [];
    let releaseFirst: () => void = () => undefined;
    const firstHolds = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    let firstStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      firstStarted = resolve;
    });
    // The first request's check-run write is slow (paced, or its replica is busy).
    const first = state.start(pr, async (seq) => {
      firstStarted();
      await firstHolds;
      created.push(seq);
    });
    await started;
    const second = state.start(pr, (seq) => {
      created.push(seq);
      return Promise.resolve();
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The second waits for the first: a run created later always has the higher number.
    expect(created).toEqual([]);
    releaseFirst();
    await Promise.all([first, second]);
    expect(created).toEqual([1, 2]);
  });

  it("handles a delivery once, and again after its handling failed", async () => {
    const context = { id: randomUUID(), name: "pull_request", log: { info: () => undefined } };
    let calls = 0;
    let fail = true;
    const handler = deduplicated(redis, () => {
      calls += 1;
      return fail ? Promise.reject(new Error("GitHub is down")) : Promise.resolve();
    });
    // A failed delivery is released, so GitHub's redelivery is handled rather than ignored for a week.
    await expect(handler(context)).rejects.toThrow("GitHub is down");
    fail = false;
    await handler(context);
    await handler(context);
    expect(calls).toBe(2);
  });

  it("ignores a redelivery while another replica is still handling the first", async () => {
    const context = { id: randomUUID(), name: "pull_request", log: { info: () => undefined } };
    let release: () => void = () => undefined;
    let calls = 0;
    const handler = deduplicated(redis, async () => {
      calls += 1;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    const first = handler(context);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await handler(context);
    release();
    await first;
    expect(calls).toBe(1);
  });
});

describe("RenderEntryStore (real Redis)", () => {
  const entry = (...resources: Resource[]) => encodeRenderEntry(sideOfEntry({ resources, problems: [] }));
  /** A cached render as the render process reads it: the verified bytes, decoded. */
  const read = async (cache: RenderEntryStore, key: string, now: number) => {
    const data = await cache.fetch(key, now);
    return data ? decodeRenderEntry(data) : undefined;
  };

  it("stores and returns renders, bounded by entry count and size", async () => {
    const cache = new RenderEntryStore(redis, { ttlSeconds: 60, maxEntryBytes: 400, maxEntries: 2, prefix: `test:${randomUUID()}`, mac });
    const key = (n: number) => RenderEntryStore.key(`digest-${n}`, { env: "x" });
    expect(await cache.set(key(1), await entry(resource("a")), 1)).toBe(true);
    expect(await cache.set(key(2), await entry(resource("b")), 2)).toBe(true);
    expect((await read(cache, key(1), 3))?.resources[0]?.id.name).toBe("a");
    expect(await cache.set(key(3), await entry(resource("c")), 4)).toBe(true);
    // Entry 2 was least recently used.
    expect(await read(cache, key(2), 5)).toBeUndefined();
    expect(await read(cache, key(1), 5)).toBeDefined();
    const huge = Array.from({ length: 200 }, (_, i) => ({ ...resource(`n${i}`), json: JSON.stringify({ i, pad: randomUUID() }) }));
    expect(await cache.set(key(4), await entry(...huge), 6)).toBe(false);
    expect(RenderEntryStore.key("d", { a: 1 })).not.toBe(RenderEntryStore.key("d", { a: 2 }));
  });

  it("ignores an entry written by anyone but the app, so a Redis writer cannot hide a change from reviewers", async () => {
    const prefix = `test:${randomUUID()}`;
    const cache = new RenderEntryStore(redis, { ttlSeconds: 60, maxEntryBytes: 4096, maxEntries: 10, prefix, mac });
    const key = RenderEntryStore.key("digest", { env: "x" });
    await cache.set(key, await entry(resource("real")), 1);
    const { gzipSync } = await import("node:zlib");
    await redis.set(`${prefix}:${key}`, gzipSync(await entry(resource("forged"))));
    expect(await read(cache, key, 2)).toBeUndefined();
    const other = new RenderEntryStore(redis, {
      ttlSeconds: 60,
      maxEntryBytes: 4096,
      maxEntries: 10,
      prefix,
      mac: new RedisMac("another-secret"),
    });
    await cache.set(key, await entry(resource("real")), 3);
    expect(await read(other, key, 4)).toBeUndefined();
    expect((await read(cache, key, 5))?.resources[0]?.id.name).toBe("real");
  });
});

describe("comparePreview (real Redis, real render processes)", () => {
  const tools = () => ({ kustomize: inject("kustomize"), helm: inject("helm") });
  const limits = { timeoutMs: 60_000, maxOutputBytes: 64 * 1024 * 1024 };
  const map = (name: string, value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;
  const warnings: string[] = [];
  const log = { info: () => undefined, warn: (_: unknown, message: string) => void warnings.push(message), error: () => undefined };

  /** Compares a configuration of an unchanged and a changed environment, its cache entries capped at `maxEntryBytes`. */
  async function compareBoth(maxEntryBytes: number) {
    const config = parseConfig("version: 1\nenvironments:\n  - name: same\n    path: same\n  - name: changed\n    path: changed\n");
    const dirs = {
      base: await checkout(undefined, { "same/a.yaml": map("a", "1"), "changed/b.yaml": map("b", "1") }),
      head: await checkout(undefined, { "same/a.yaml": map("a", "1"), "changed/b.yaml": map("b", "2"), "changed/c.yaml": map("c", "3") }),
    };
    const cache = new RenderEntryStore(redis, { ttlSeconds: 60, maxEntryBytes, maxEntries: 10, prefix: `test:${randomUUID()}`, mac });
    const pool = new RenderPool({ size: 1, heapMb: 256, tools: tools(), limits });
    const comparer = new CachedComparer({ pool, cache, now: () => 1, log }, dirs);
    const progress: CompareProgress[] = [];
    try {
      const compared = await comparePreview({ config, comparer, concurrency: 2, progress: (p) => progress.push(p) });
      await compared.entries;
      return { compared, comparer, cache, progress };
    } finally {
      await pool.close();
    }
  }

  it("returns the report in configuration order, where each compared head is, and settles once its cache entries are stored", async () => {
    const { compared, comparer, cache, progress } = await compareBoth(1024 * 1024);
    expect(compared.report.environments.map((e) => [e.name, e.skipped, e.summary])).toEqual([
      ["same", "inputs unchanged", { added: 0, modified: 0, removed: 0, unchanged: 0 }],
      ["changed", undefined, { added: 1, modified: 1, removed: 0, unchanged: 0 }],
    ]);
    expect([...compared.heads.keys()]).toEqual(["changed"]);
    const head = compared.heads.get("changed");
    if (!head) throw new Error("no head for environment changed");
    // Stored: the head is read back from the cache, not kept here.
    expect(await head.unstored).toBeUndefined();
    expect(await cache.fetch(head.key, 2)).toBeDefined();
    expect([...((await comparer.head(head))?.resources.keys() ?? [])].sort()).toEqual(["/ConfigMap/default/b", "/ConfigMap/default/c"]);
    expect(progress.at(-1)).toMatchObject({ total: 2, classified: 2, rendering: ["changed"], done: [{ name: "changed" }] });
  });

  it("keeps a head entry the cache would not take, so a live preview still reads it", async () => {
    const { compared, comparer, cache } = await compareBoth(1);
    const head = compared.heads.get("changed");
    if (!head) throw new Error("no head for environment changed");
    expect(await cache.fetch(head.key, 2)).toBeUndefined();
    expect(await head.unstored).toBeDefined();
    expect([...((await comparer.head(head))?.resources.keys() ?? [])].sort()).toEqual(["/ConfigMap/default/b", "/ConfigMap/default/c"]);
  });
});

describe("DiffPages (real Redis)", () => {
  const pages = () => new DiffPages(redis, { publicUrl: "https://sluice.example", secret: "s3cret-key-for-links", ttlSeconds: 3600, mac });

  it("stores a page behind a signed, expiring link", async () => {
    const now = Date.UTC(2026, 0, 1);
    const link = new URL(await pages().store({ title: "t", subtitle: "s", report: { environments: [], errors: [] } }, now));
    const id = link.pathname.split("/").at(-1) ?? "";
    expect(link.origin).toBe("https://sluice.example");
    expect(pages().verify(id, link.searchParams.get("exp"), link.searchParams.get("sig"), now)).toEqual({ ok: true, id });
    expect(await pages().load(id)).toMatchObject({ title: "t" });
    expect(pages().verify(id, link.searchParams.get("exp"), link.searchParams.get("sig"), now + 3601_000)).toEqual({
      ok: false,
      status: 410,
    });
    expect(pages().verify(id, String(Number(link.searchParams.get("exp")) + 1), link.searchParams.get("sig"), now)).toEqual({
      ok: false,
      status: 403,
    });
    expect(pages().verify(id, link.searchParams.get("exp"), null, now)).toEqual({ ok: false, status: 403 });
    expect(pages().verify("../../etc", "1", "x", now)).toEqual({ ok: false, status: 403 });
    const other = new DiffPages(redis, { publicUrl: "https://sluice.example", secret: "another-secret-key", ttlSeconds: 3600, mac });
    expect(other.verify(id, link.searchParams.get("exp"), link.searchParams.get("sig"), now)).toEqual({ ok: false, status: 403 });
    // The same report stored again is the same page.
    expect(await pages().store({ title: "t", subtitle: "s", report: { environments: [], errors: [] } }, now)).toBe(link.toString());
    // A page rewritten in Redis by someone else is not shown.
    const { gzipSync } = await import("node:zlib");
    await redis.set(
      `sluice:diff-page:${id}`,
      gzipSync(JSON.stringify({ title: "forged", subtitle: "", report: { environments: [], errors: [] } })),
    );
    expect(await pages().load(id)).toBeUndefined();
  });

  it("keeps what the page shows: the changes and every count, not the unchanged objects' entries", async () => {
    const id = { group: "", version: "v1", kind: "ConfigMap", namespace: "d" };
    const changes = [
      { id: { ...id, name: "changed" }, action: "modified" as const, diff: "--- a\n+++ b\n" },
      ...Array.from({ length: 1000 }, (_, i) => ({ id: { ...id, name: `same-${i}` }, action: "unchanged" as const, diff: "" })),
    ];
    const report = {
      environments: [{ name: "prod", summary: { added: 0, modified: 1, removed: 0, unchanged: 1000 }, changes }],
      errors: [],
    };
    const link = new URL(await pages().store({ title: "t", subtitle: "s", report }, Date.UTC(2026, 0, 1)));
    const page = await pages().load(link.pathname.split("/").at(-1) ?? "");
    expect(page?.report.environments[0]?.summary).toEqual({ added: 0, modified: 1, removed: 0, unchanged: 1000 });
    expect(page?.report.environments[0]?.changes.map((c) => c.id.name)).toEqual(["changed"]);
  });
});

describe("EnvironmentStates (real Redis)", () => {
  const revision = (sha: string, reason: "merge" | "sync" | "rollback" = "merge") => ({
    sha,
    jobId: `j-${sha}`,
    digest: "d".repeat(64),
    appliedAt: "2026-11-27T12:00:00.000Z",
    reason,
  });
  const hold = { by: "alice", at: "2026-11-27T12:00:00.000Z", jobId: "rb", sha: "a" };

  it("keeps the newest history, mirrors the agent's hold, and releases held jobs only on a releasing success", async () => {
    const states = new EnvironmentStates(redis, mac);
    const repo = Math.floor(Math.random() * 1e9);
    await states.observe(repo, "production", {
      history: { revisions: [revision("b"), revision("a")] },
      at: "2026-11-27T12:00:02Z",
      released: false,
    });
    await states.observe(repo, "staging", { history: { revisions: [revision("b")] }, at: "2026-11-27T12:00:02Z", released: false });
    // An older report arriving late does not replace a newer history.
    await states.observe(repo, "production", { history: { revisions: [revision("a")] }, at: "2026-11-27T12:00:01Z", released: false });
    expect((await states.load(repo, "production")).history?.revisions.map((r) => r.sha)).toEqual(["b", "a"]);
    expect((await states.load(repo, "staging")).history?.revisions.map((r) => r.sha)).toEqual(["b"]);
    await states.held(repo, "production", hold, 7);
    await states.heldJob(repo, "production", "merge-c");
    // A report without a hold that does not release (an older deploy finishing) keeps the app's hold.
    expect(
      await states.observe(repo, "production", { history: { revisions: [revision("b")] }, at: "2026-11-27T12:00:03Z", released: false }),
    ).toEqual([]);
    expect(await states.load(repo, "production")).toMatchObject({ hold, revertPulls: [7], held: ["merge-c"] });
    expect(
      await states.observe(repo, "production", {
        history: { revisions: [revision("c", "sync")] },
        at: "2026-11-27T12:00:04Z",
        released: true,
      }),
    ).toEqual(["merge-c"]);
    expect(await states.load(repo, "production")).toEqual({
      history: { revisions: [revision("c", "sync")] },
      historyAt: "2026-11-27T12:00:04Z",
      revertPulls: [],
      held: [],
    });
  });

  it("ignores a state a Redis writer changed", async () => {
    const states = new EnvironmentStates(redis, mac);
    const repo = Math.floor(Math.random() * 1e9);
    await states.held(repo, "production", hold, 7);
    await redis.set(`sluice:environment:${repo}:production`, JSON.stringify({ revertPulls: [99], held: [] }));
    expect(await states.load(repo, "production")).toEqual({ revertPulls: [], held: [] });
  });
});
