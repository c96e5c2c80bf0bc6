import { describe, expect, it } from "vitest";
import { contextual, withLogContext } from "../../../src/app/services/logger.ts";

describe("log context", () => {
  it("puts the delivery, job, repository and environment at hand on every line, across awaits and nesting", async () => {
    const lines: Record<string, unknown>[] = [];
    const write = (details: Record<string, unknown>) => lines.push(details);
    const log = contextual({ info: write, warn: write, error: write });
    log.info({ a: 1 }, "outside");
    await Promise.all([
      withLogContext({ delivery: "d-1", event: "push" }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        await withLogContext({ environment: "production" }, async () => {
          await Promise.resolve();
          log.warn({ b: 2 }, "inside");
        });
        log.info({}, "after");
      }),
      withLogContext({ delivery: "d-2" }, () => {
        log.error({ c: 3 }, "other");
        return Promise.resolve();
      }),
    ]);
    expect(lines).toEqual([
      { a: 1 },
      { delivery: "d-2", c: 3 },
      { delivery: "d-1", event: "push", environment: "production", b: 2 },
      { delivery: "d-1", event: "push" },
    ]);
  });
});
