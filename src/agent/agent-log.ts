import { errorMessage } from "../core/errors.ts";
import { repeatFilter } from "../core/repeat-filter.ts";

/** Log lines of the agent: fixed messages, details in an object. */
export type AgentLog = (level: "info" | "warn" | "error", message: string, details: Record<string, unknown>) => void;

/** The agent's log as JSON lines on stderr, one object per line. */
export const jsonLog: AgentLog = (level, message, details) => {
  process.stderr.write(`${JSON.stringify({ level, time: Date.now(), message, ...details })}\n`);
};

/** The same connection error is logged once a minute at most: ioredis retries every few seconds while Redis is gone. */
const CONNECTION_ERROR_LOG_MS = 60_000;

/**
 * Logs connection errors of Redis clients, queues and workers through the agent's log: each
 * distinct error once a minute at most, since every client retries every few seconds while
 * Redis is gone.
 */
export function connectionErrorLog(log: AgentLog, now: () => number): (source: string, error: unknown) => void {
  const filter = repeatFilter(now, CONNECTION_ERROR_LOG_MS);
  return (source, error) => {
    const message = errorMessage(error);
    const verdict = filter(message);
    if (verdict.log)
      log("warn", "redis connection error", { source, error: message, ...(verdict.repeated ? { repeated: verdict.repeated } : {}) });
  };
}
