import { AsyncLocalStorage } from "node:async_hooks";

/** The logging Sluice's services use: fixed messages, details in an object (pino's signature). */
export interface Logger {
  info: (details: Record<string, unknown>, message: string) => void;
  warn: (details: Record<string, unknown>, message: string) => void;
  error: (details: Record<string, unknown>, message: string) => void;
}

/** What the work in progress is about: a webhook delivery, a job, a repository, an environment. */
export type LogContext = Record<string, string | number | undefined>;

const current = new AsyncLocalStorage<LogContext>();

/** Runs `work` with `fields` added to every line a `contextual` logger writes meanwhile (nested calls add to it). */
export function withLogContext<T>(fields: LogContext, work: () => Promise<T>): Promise<T> {
  return current.run({ ...current.getStore(), ...fields }, work);
}

/** A logger that puts the current log context (delivery, job, repository, environment) on every line. */
export function contextual(log: Logger): Logger {
  const add = (details: Record<string, unknown>) => ({ ...current.getStore(), ...details });
  return {
    info: (details, message) => {
      log.info(add(details), message);
    },
    warn: (details, message) => {
      log.warn(add(details), message);
    },
    error: (details, message) => {
      log.error(add(details), message);
    },
  };
}
