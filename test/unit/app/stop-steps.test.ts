import { describe, expect, it } from "vitest";
import { stopWithin } from "../../../src/app/wiring/stop-steps.ts";
import { ManualClock } from "../../helpers/manual-clock.ts";

describe("stopping within the grace period", () => {
  it("runs every step in order when they finish in time", async () => {
    const clock = new ManualClock();
    const ran: string[] = [];
    const step = (name: string) => ({
      name,
      run: () => {
        ran.push(name);
        return Promise.resolve();
      },
    });
    expect(await stopWithin([step("server"), step("workers"), step("redis")], 25_000, { clock })).toEqual({ kind: "in-time" });
    expect(ran).toEqual(["server", "workers", "redis"]);
  });

  it("forces the step at hand and every later one once the deadline passes, and says which", async () => {
    const clock = new ManualClock();
    const forced: string[] = [];
    const late: unknown[] = [];
    const never = new Promise<void>(() => undefined);
    let workersStarted = (): void => undefined;
    const waitingOnWorkers = new Promise<void>((resolve) => (workersStarted = resolve));
    const stopping = stopWithin(
      [
        { name: "server", run: () => Promise.resolve() },
        {
          name: "workers",
          run: () => {
            workersStarted();
            return never;
          },
          force: () => forced.push("workers"),
        },
        { name: "queues", run: () => never },
        { name: "redis", run: () => never, force: () => forced.push("redis") },
      ],
      25_000,
      { clock, late: (step, pending) => late.push({ step, pending }) },
    );
    await waitingOnWorkers;
    expect(clock.wakeUps).toEqual([25_000]);
    clock.advance(25_000);
    expect(await stopping).toEqual({ kind: "cut-short", step: "workers", pending: ["queues", "redis"] });
    expect(forced).toEqual(["workers", "redis"]);
    expect(late).toEqual([{ step: "workers", pending: ["queues", "redis"] }]);
  });
});
