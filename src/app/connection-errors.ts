import { repeatFilter } from "../core/repeat-filter.ts";

/**
 * Logs the errors of Redis connections without a line per reconnect attempt: while Redis is down,
 * ioredis and BullMQ report the same error every few hundred milliseconds (issue 24 counted 1,522
 * traces in ten minutes). The first error of each source and message is logged at once, then at
 * most one line per `everyMs` saying how many were left out.
 */
export function connectionErrorLog(
  log: (details: Record<string, unknown>, message: string) => void,
  now: () => number,
  everyMs = 60_000,
): (source: string, error: unknown) => void {
  const filter = repeatFilter(now, everyMs);
  return (source, error) => {
    const message = error instanceof Error ? error.message : String(error);
    const verdict = filter(`${source}\n${message}`);
    if (verdict.log) log({ source, error: message, ...(verdict.repeated ? { repeated: verdict.repeated } : {}) }, "connection error");
  };
}
