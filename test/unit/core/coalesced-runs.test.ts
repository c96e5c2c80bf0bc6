import { describe, expect, it } from "vitest";
import { CoalescedRuns } from "../../../src/core/coalesced-runs.ts";

describe("coalesced runs", () => {
  it("runs one at a time with at most one waiting, however many asks come meanwhile", async () => {
    const runs = new CoalescedRuns();
    let started = 0;
    let running = 0;
    let most = 0;
    const gates: (() => void)[] = [];
    const task = async () => {
      started++;
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
    };
    const first = runs.run("production", task);
    // Asks that come before a run starts are that run.
    expect(runs.run("production", task)).toBe(first);
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toBe(1);
    const asks = [first, ...Array.from({ length: 50 }, () => runs.run("production", task))];
    gates.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
    // Every ask after the first joined the one waiting run.
    expect(started).toBe(2);
    gates.shift()?.();
    await Promise.all(asks);
    expect(started).toBe(2);
    expect(most).toBe(1);
  });

  it("keeps keys apart, and does not let a failed run hold up the next", async () => {
    const runs = new CoalescedRuns();
    const order: string[] = [];
    const failed = runs.run("a", () => Promise.reject(new Error("the cluster failed")));
    failed.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    const next = runs.run("a", () => {
      order.push("a again");
      return Promise.resolve();
    });
    const other = runs.run("b", () => {
      order.push("b");
      return Promise.resolve();
    });
    await expect(failed).rejects.toThrow("the cluster failed");
    await Promise.all([next, other]);
    expect(order.sort()).toEqual(["a again", "b"]);
    await runs.settled();
  });
});
