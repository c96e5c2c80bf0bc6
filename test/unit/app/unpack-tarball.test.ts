import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { CheckoutCache } from "../../../src/app/checkouts/checkout-cache.ts";
import { extractTarball } from "../../../src/app/checkouts/unpack-tarball.ts";
import { removeCheckouts, tempDir } from "../../helpers/checkouts.ts";
import { tarball, type Entry } from "../../helpers/tarballs.ts";

afterAll(removeCheckouts);

const limits = { maxBytes: 1024 * 1024, maxFiles: 100 };

describe("extractTarball", () => {
  it("unpacks a GitHub tarball without its top directory, with a copy in place of each safe link", async () => {
    const root = await tempDir();
    const archive = await tarball([
      { name: "o-r-abc1234/" },
      { name: "o-r-abc1234/deploy/app.yaml", body: "kind: ConfigMap\n" },
      { name: "o-r-abc1234/deploy/link.yaml", type: "symlink", linkname: "app.yaml" },
    ]);
    expect(await extractTarball(archive, root, limits)).toEqual({ files: 2, bytes: 32 });
    expect(await readFile(join(root, "deploy/app.yaml"), "utf8")).toBe("kind: ConfigMap\n");
    expect((await lstat(join(root, "deploy/link.yaml"))).isFile()).toBe(true);
    expect(await readFile(join(root, "deploy/link.yaml"), "utf8")).toBe("kind: ConfigMap\n");
  });

  it("leaves no symbolic link in the tree: linked directories, links to links and links inside linked directories are copies", async () => {
    const root = await tempDir();
    const archive = await tarball([
      { name: "o-r-x/base/cm.yaml", body: "kind: ConfigMap\n" },
      { name: "o-r-x/base/again.yaml", type: "symlink", linkname: "cm.yaml" },
      { name: "o-r-x/envs/prod/base", type: "symlink", linkname: "../../shared" },
      { name: "o-r-x/shared", type: "symlink", linkname: "base" },
      { name: "o-r-x/dangling.yaml", type: "symlink", linkname: "nowhere.yaml" },
    ]);
    await extractTarball(archive, root, limits);
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    expect(entries.filter((entry) => entry.isSymbolicLink())).toEqual([]);
    expect(await readFile(join(root, "envs/prod/base/again.yaml"), "utf8")).toBe("kind: ConfigMap\n");
    expect(await readFile(join(root, "shared/cm.yaml"), "utf8")).toBe("kind: ConfigMap\n");
    await expect(lstat(join(root, "dangling.yaml"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses a name or a link target with a backslash, which Linux reads as part of the name", async () => {
    const named = await tarball([{ name: "o-r-x/a\\b.yaml", body: "kind: ConfigMap\n" }]);
    await expect(extractTarball(named, await tempDir(), limits)).rejects.toThrow(
      'tarball entry "o-r-x/a\\b.yaml" is refused: "a\\b.yaml" has a backslash in its name',
    );
    const target = await tarball([{ name: "o-r-x/l", type: "symlink", linkname: "a\\..\\b" }]);
    await expect(extractTarball(target, await tempDir(), limits)).rejects.toThrow('symbolic link "l" has a backslash in its target');
  });

  it("refuses a link into a directory that holds it, and links that copy without end", async () => {
    const loop = await tarball([
      { name: "o-r-x/a/b.yaml", body: "kind: ConfigMap\n" },
      { name: "o-r-x/a/up", type: "symlink", linkname: ".." },
    ]);
    await expect(extractTarball(loop, await tempDir(), limits)).rejects.toThrow(
      'tarball symlink "o-r-x/a/up" leads to a directory that contains it',
    );
    // Each level links the one below ten times: 10^4 copies from a few entries.
    const levels = [{ name: "o-r-x/d0/f.yaml", body: "x" }];
    for (let level = 1; level <= 4; level += 1)
      for (let i = 0; i < 10; i += 1)
        levels.push({ name: `o-r-x/d${level}/l${i}`, type: "symlink", linkname: `../d${level - 1}` } as never);
    await expect(extractTarball(await tarball(levels), await tempDir(), { maxBytes: 1024 * 1024, maxFiles: 1000 })).rejects.toThrow(
      "tarball has more than 1000 entries",
    );
  });

  it("refuses entries nested past 64 directories or with paths past 1024 bytes, and links with no target", async () => {
    const deep = await tarball([{ name: `o-r-x/${"d/".repeat(64)}f.yaml`, body: "x" }]);
    await expect(extractTarball(deep, await tempDir(), limits)).rejects.toThrow("is more than 64 directories deep");
    const long = await tarball([{ name: `o-r-x/${Array.from({ length: 6 }, () => "n".repeat(200)).join("/")}/f`, body: "x" }]);
    await expect(extractTarball(long, await tempDir(), limits)).rejects.toThrow("has a path longer than 1024 bytes");
    const empty = await tarball([{ name: "o-r-x/l", type: "symlink", linkname: "" }]);
    await expect(extractTarball(empty, await tempDir(), limits)).rejects.toThrow('tarball symlink "o-r-x/l" has an empty target');
    // 64 deep is still fine.
    const fine = await tarball([{ name: `o-r-x/${"d/".repeat(63)}f.yaml`, body: "x" }]);
    await expect(extractTarball(fine, await tempDir(), limits)).resolves.toEqual({ files: 1, bytes: 1 });
  });

  it("counts directories and links as entries, and caps the steps its links take to follow", async () => {
    const dirs = await tarball(Array.from({ length: 11 }, (_, i) => ({ name: `o-r-x/d${i}/` })));
    await expect(extractTarball(dirs, await tempDir(), { maxBytes: 1024, maxFiles: 10 })).rejects.toThrow(
      "tarball has more than 10 entries",
    );
    // A chain of 38 links, then 3,000 links to its end: each takes 39 steps, each within the kernel's 40.
    const chain: Entry[] = [{ name: "o-r-x/l0/f.yaml", body: "x" }];
    for (let i = 1; i <= 38; i += 1) chain.push({ name: `o-r-x/l${i}`, type: "symlink", linkname: `l${i - 1}` });
    for (let j = 0; j < 3000; j += 1) chain.push({ name: `o-r-x/m${j}`, type: "symlink", linkname: "l38" });
    await expect(extractTarball(await tarball(chain), await tempDir(), { maxBytes: 1024 * 1024, maxFiles: 100_000 })).rejects.toThrow(
      "the archive's symbolic links take more than 100000 steps to follow",
    );
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
    await expect(extractTarball(many, await tempDir(), { maxBytes: 1024, maxFiles: 10 })).rejects.toThrow(
      "tarball has more than 10 entries",
    );
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
