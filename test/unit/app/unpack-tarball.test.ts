import { readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { CheckoutCache } from "../../../src/app/services/checkout-cache.ts";
import { extractTarball } from "../../../src/app/services/unpack-tarball.ts";
import { removeCheckouts, tempDir } from "../../helpers/checkouts.ts";
import { tarball, type Entry } from "../../helpers/tarballs.ts";

afterAll(removeCheckouts);

const limits = { maxBytes: 1024 * 1024, maxFiles: 100 };

describe("extractTarball", () => {
  it("unpacks a GitHub tarball without its top directory, keeping safe links", async () => {
    const root = await tempDir();
    const archive = await tarball([
      { name: "o-r-abc1234/" },
      { name: "o-r-abc1234/deploy/app.yaml", body: "kind: ConfigMap\n" },
      { name: "o-r-abc1234/deploy/link.yaml", type: "symlink", linkname: "app.yaml" },
    ]);
    expect(await extractTarball(archive, root, limits)).toEqual({ files: 1, bytes: 16 });
    expect(await readFile(join(root, "deploy/app.yaml"), "utf8")).toBe("kind: ConfigMap\n");
    expect(await readlink(join(root, "deploy/link.yaml"))).toBe("app.yaml");
  });

  it.each([
    [[{ name: "o-r-x/../../etc/passwd", body: "x" }], 'tarball entry "o-r-x/../../etc/passwd" escapes the checkout'],
    [[{ name: "/etc/passwd", body: "x" }], 'tarball entry "/etc/passwd" escapes the checkout'],
    [
      [{ name: "o-r-x/evil", type: "symlink", linkname: "/etc/shadow" }],
      'tarball symlink "o-r-x/evil" points outside the checkout (/etc/shadow)',
    ],
    [
      [{ name: "o-r-x/evil", type: "symlink", linkname: "../../../etc" }],
      'tarball symlink "o-r-x/evil" points outside the checkout (../../../etc)',
    ],
    [
      [{ name: "o-r-x/dev", type: "character-device", devmajor: 1, devminor: 3 }],
      'tarball entry "o-r-x/dev" is a character-device, which a checkout may not contain',
    ],
    [[{ name: "o-r-x/hard", type: "link", linkname: "o-r-x/a" }], 'tarball entry "o-r-x/hard" is a link, which a checkout may not contain'],
  ] as [Entry[], string][])("refuses %j", async (entries, message) => {
    await expect(extractTarball(await tarball(entries), await tempDir(), limits)).rejects.toThrow(message);
  });

  it("caps the size and the number of files", async () => {
    const big = await tarball([{ name: "o-r-x/big", body: "x".repeat(2048) }]);
    await expect(extractTarball(big, await tempDir(), { maxBytes: 1024, maxFiles: 10 })).rejects.toThrow(
      "tarball unpacks to more than 1024 bytes",
    );
    const many = await tarball(Array.from({ length: 11 }, (_, i) => ({ name: `o-r-x/f${i}`, body: "" })));
    await expect(extractTarball(many, await tempDir(), { maxBytes: 1024, maxFiles: 10 })).rejects.toThrow("tarball has more than 10 files");
  });

  it("says when the archive is not a tarball", async () => {
    await expect(extractTarball(Buffer.from("not gzip"), await tempDir(), limits)).rejects.toThrow(/^tarball cannot be read: /);
  });

  it("unpacks a stream as it arrives and cuts a download off past its compressed limit", async () => {
    const archive = await tarball([
      { name: "o-r-x/a.yaml", body: "kind: ConfigMap\n" },
      { name: "o-r-x/big", body: "x".repeat(64 * 1024) },
    ]);
    const chunks = (size: number) =>
      Readable.from(Array.from({ length: Math.ceil(archive.length / size) }, (_, i) => archive.subarray(i * size, (i + 1) * size)));
    const root = await tempDir();
    expect(await extractTarball(chunks(100), root, limits)).toEqual({ files: 2, bytes: 16 + 64 * 1024 });
    await expect(extractTarball(chunks(100), await tempDir(), { ...limits, maxArchiveBytes: archive.length - 1 })).rejects.toThrow(
      `tarball is larger than ${archive.length - 1} bytes`,
    );
  });
});

describe("CheckoutCache", () => {
  it("downloads a commit once, even when asked twice at the same time", async () => {
    const cache = new CheckoutCache({ dir: await tempDir(), maxCacheBytes: 1024 * 1024, ...limits });
    let downloads = 0;
    const fetch = async () => {
      downloads += 1;
      return tarball([{ name: "o-r-x/a.yaml", body: "a: 1\n" }]);
    };
    const [a, b] = await Promise.all([cache.acquire("1-aaa", fetch), cache.acquire("1-aaa", fetch)]);
    expect(downloads).toBe(1);
    expect(a.dir).toBe(b.dir);
    expect(await readFile(join(a.dir, "a.yaml"), "utf8")).toBe("a: 1\n");
  });

  it("evicts the least recently used checkouts past its size, never one in use", async () => {
    let now = 0;
    const dir = await tempDir();
    const cache = new CheckoutCache({ dir, maxCacheBytes: 250, ...limits, now: () => now });
    const commit = (n: string) => () => tarball([{ name: "o-r-x/f", body: n.repeat(100) }]);
    now = 1;
    const first = await cache.acquire("c-1", commit("1"));
    now = 2;
    (await cache.acquire("c-2", commit("2"))).release();
    now = 3;
    (await cache.acquire("c-3", commit("3"))).release();
    // c-1 is the oldest but in use; c-2 goes instead.
    expect((await readdir(dir)).sort()).toEqual(["c-1", "c-3"]);
    first.release();
    now = 4;
    (await cache.acquire("c-4", commit("4"))).release();
    expect((await readdir(dir)).sort()).toEqual(["c-3", "c-4"]);
    expect(cache.size).toBe(200);
  });

  it("leaves nothing behind when a download is unsafe", async () => {
    const dir = await tempDir();
    const cache = new CheckoutCache({ dir, maxCacheBytes: 1024, ...limits });
    await expect(cache.acquire("bad", () => tarball([{ name: "/abs", body: "x" }]))).rejects.toThrow("escapes the checkout");
    expect(await readdir(dir)).toEqual([]);
  });
});
