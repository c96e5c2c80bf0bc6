import { describe, expect, it } from "vitest";
import { repeatFilter } from "../../../src/core/repeat-filter.ts";

describe("repeatFilter", () => {
  it("lets each key through at once, then once a window with how many were left out", () => {
    let now = 0;
    const filter = repeatFilter(() => now, 60_000);
    expect(filter("redis down")).toEqual({ log: true });
    now = 1_000;
    expect(filter("redis down")).toEqual({ log: false });
    expect(filter("another error")).toEqual({ log: true });
    now = 59_999;
    expect(filter("redis down")).toEqual({ log: false });
    now = 61_000;
    expect(filter("redis down")).toEqual({ log: true, repeated: 3 });
    expect(filter("redis down")).toEqual({ log: false });
  });
});
