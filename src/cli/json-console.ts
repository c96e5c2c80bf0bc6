import { format } from "node:util";
import type { Logger as PinoLogger } from "pino";
import { repeatFilter } from "../core/repeat-filter.ts";

/** The console methods a library may print with. */
const METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;

/**
 * Sends what libraries print to the console through `logger`, so every line the app writes is
 * JSON: BullMQ prints a queue's unhandled connection errors with `console.error` (a multi-line
 * stack per reconnect attempt while Redis is down) and its eviction warning with `console.warn`.
 * The same first line is logged at most once per `everyMs`, with how many were left out.
 */
export function routeConsole(logger: PinoLogger, options: { now?: () => number; everyMs?: number } = {}): void {
  const now = options.now ?? Date.now;
  const everyMs = options.everyMs ?? 60_000;
  const filter = repeatFilter(now, everyMs);
  for (const method of METHODS) {
    const level = method === "error" || method === "trace" ? "error" : method === "warn" ? "warn" : "info";
    console[method] = (...args: unknown[]): void => {
      const text = format(...args);
      const verdict = filter(`${level}\n${text.split("\n", 1)[0] ?? ""}`);
      if (verdict.log)
        logger[level](
          { console: method, text, ...(verdict.repeated ? { repeated: verdict.repeated } : {}) },
          "a library wrote to the console",
        );
    };
  }
}
