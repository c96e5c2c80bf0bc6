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
  const seen = new Map<string, { loggedAt: number; leftOut: number }>();
  return (source, error) => {
    const message = error instanceof Error ? error.message : String(error);
    const key = `${source}\n${message}`;
    const at = now();
    const last = seen.get(key);
    if (last && at - last.loggedAt < everyMs) {
      last.leftOut++;
      return;
    }
    seen.set(key, { loggedAt: at, leftOut: 0 });
    log({ source, error: message, ...(last ? { repeated: last.leftOut + 1 } : {}) }, "connection error");
  };
}
