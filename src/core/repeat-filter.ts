/** Whether to log one occurrence of a repeated event, and how many were left out since the last logged one. */
export type RepeatVerdict = { log: false } | { log: true; repeated?: number };

/**
 * Lets the first occurrence of each key through at once, then at most one per `everyMs`, saying
 * how many were left out in between: errors a library reports on every reconnect attempt become
 * one line a minute instead of thousands.
 */
export function repeatFilter(now: () => number, everyMs = 60_000): (key: string) => RepeatVerdict {
  const seen = new Map<string, { loggedAt: number; leftOut: number }>();
  return (key) => {
    const at = now();
    const last = seen.get(key);
    if (last && at - last.loggedAt < everyMs) {
      last.leftOut++;
      return { log: false };
    }
    seen.set(key, { loggedAt: at, leftOut: 0 });
    return last ? { log: true, repeated: last.leftOut + 1 } : { log: true };
  };
}
