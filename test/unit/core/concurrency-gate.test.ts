import { describe, expect, it } from "vitest";
import { concurrencyGate } from "../../../src/core/clock.ts";

describe("concurrencyGate", () => {
  it("runs at most its limit at once, every function in the order given, and passes failures through", async () => {
    const gate = concurrencyGate(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const results = Array.from({ length: 5 }, (_, i) =>
      gate(async () => {
        started.push(i);
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
        if (i === 3) throw new Error("four failed");
        return i;
      }),
    );
    for (let released = 0; released < 5; released++) {
      await expect.poll(() => releases.length).toBeGreaterThan(released);
      releases[released]?.();
    }
    const settled = await Promise.allSettled(results);
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(settled.map((s) => (s.status === "fulfilled" ? s.value : (s.reason as Error).message))).toEqual([0, 1, 2, "four failed", 4]);
  });
});
