import { describe, expect, it } from "vitest";
import { entryNode, entryPath, UnsafeArchiveError } from "../../../src/app/checkouts/unpack-tarball.ts";

const root = "/checkouts/abc";

describe("entryPath", () => {
  it("strips GitHub's top directory and places the entry under the checkout", () => {
    expect(entryPath({ name: "o-r-abc1234/deploy/app.yaml", type: "file" }, root)).toEqual({
      raw: "o-r-abc1234/deploy/app.yaml",
      name: "deploy/app.yaml",
      target: "/checkouts/abc/deploy/app.yaml",
    });
  });

  it("skips pax headers and the top directory itself", () => {
    expect(entryPath({ name: "pax_global_header", type: "pax-global-header" }, root)).toBeUndefined();
    expect(entryPath({ name: "o-r-abc1234/", type: "directory" }, root)).toBeUndefined();
    expect(entryPath({ name: "o-r-abc1234", type: "directory" }, root)).toBeUndefined();
  });

  it("refuses names that escape the checkout, naming the entry", () => {
    expect(() => entryPath({ name: "o-r-x/../../etc/passwd", type: "file" }, root)).toThrow(
      new UnsafeArchiveError('tarball entry "o-r-x/../../etc/passwd" escapes the checkout'),
    );
    expect(() => entryPath({ name: "/o-r-x/etc/passwd", type: "file" }, root)).toThrow(
      'tarball entry "/o-r-x/etc/passwd" escapes the checkout',
    );
  });

  it("refuses paths more than 64 directories deep or longer than 1024 bytes", () => {
    expect(() => entryPath({ name: `o-r-x/${"d/".repeat(65)}f`, type: "file" }, root)).toThrow("is more than 64 directories deep");
    expect(entryPath({ name: `o-r-x/${"d/".repeat(63)}f`, type: "file" }, root)?.name).toBe(`${"d/".repeat(63)}f`);
    expect(() => entryPath({ name: `o-r-x/${"a".repeat(1025)}`, type: "file" }, root)).toThrow("has a path longer than 1024 bytes");
  });
});

describe("entryNode", () => {
  const path = (name: string) => ({ raw: `o-r-x/${name}`, name, target: `${root}/${name}` });

  it("makes directories, files with their size, and links that stay inside the checkout", () => {
    expect(entryNode({ type: "directory", size: 0, linkname: "" }, path("base"), root)).toEqual({ kind: "directory" });
    expect(entryNode({ type: "contiguous-file", size: 12, linkname: "" }, path("base/cm.yaml"), root)).toEqual({ kind: "file", size: 12 });
    expect(entryNode({ type: "symlink", size: 0, linkname: "../base/cm.yaml" }, path("envs/cm.yaml"), root)).toEqual({
      kind: "link",
      target: "../base/cm.yaml",
    });
  });

  it("refuses links that lead out or nowhere, and entries a checkout may not hold, naming each", () => {
    expect(() => entryNode({ type: "symlink", size: 0, linkname: "../../.." }, path("envs/up"), root)).toThrow(
      'tarball symlink "o-r-x/envs/up" points outside the checkout (../../..)',
    );
    expect(() => entryNode({ type: "symlink", size: 0, linkname: "/etc/passwd" }, path("passwd"), root)).toThrow(
      'tarball symlink "o-r-x/passwd" points outside the checkout (/etc/passwd)',
    );
    expect(() => entryNode({ type: "symlink", size: 0, linkname: null as unknown as string }, path("empty"), root)).toThrow(
      'tarball symlink "o-r-x/empty" has an empty target',
    );
    expect(() => entryNode({ type: "link", size: 0, linkname: "base/cm.yaml" }, path("hard"), root)).toThrow(
      'tarball entry "o-r-x/hard" is a link, which a checkout may not contain',
    );
    expect(() => entryNode({ type: "character-device", size: 0, linkname: "" }, path("tty"), root)).toThrow("is a character-device");
  });
});
