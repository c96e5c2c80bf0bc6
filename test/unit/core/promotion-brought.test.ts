import { describe, expect, it } from "vitest";
import { broughtBy, type LineCommit } from "../../../src/core/promotion.ts";

/** A 40-character SHA made of one repeated letter. */
const sha = (letter: string): string => letter.repeat(40);

/** A line of commits named by letters; a `!` before a letter marks a force push. */
function line(spec: string): LineCommit[] {
  return [...spec.matchAll(/(!?)([a-f])/g)].map(([, bang, letter], i) => ({
    sha: sha(letter ?? ""),
    at: i,
    forced: bang === "!",
    pusher: `pusher-${letter ?? ""}`,
  }));
}
const brought = (spec: string, previous: string | undefined, to: string, max = 50): string[] =>
  broughtBy(line(spec), previous === undefined ? undefined : sha(previous), sha(to), max).map((c) => c.sha[0] ?? "");

describe("broughtBy", () => {
  it("is the commits after the one the environment runs, up to the promoted one, without it", () => {
    expect(brought("abcde", "b", "e")).toEqual(["c", "d"]);
    expect(brought("abcde", "d", "e")).toEqual([]);
  });

  it("is every commit the promoted one contains when the environment runs none of the line (newest max)", () => {
    expect(brought("abcd", undefined, "d")).toEqual(["a", "b", "c"]);
    expect(brought("abcd", "f", "d")).toEqual(["a", "b", "c"]);
    expect(brought("abcd", undefined, "d", 2)).toEqual(["b", "c"]);
  });

  it("stops at a force push: the promoted commit contains nothing before it", () => {
    expect(brought("ab!cd", "a", "d")).toEqual(["c"]);
  });

  it("counts the commits after a force push when the environment runs one it dropped", () => {
    expect(brought("abc!de", "c", "e")).toEqual(["d"]);
  });

  it("is nothing for a commit the line does not have", () => {
    expect(brought("abc", "a", "f")).toEqual([]);
  });
});
