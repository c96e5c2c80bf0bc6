import type { ServerResponse } from "node:http";
import { pino, type DestinationStream, type Logger } from "pino";

/** Paths whose successful requests are not logged: the kubelet's probes and Prometheus's scrapes. */
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * Whether a log call is the HTTP server's line for a probe or scrape that succeeded (the kubelet
 * probes every 10 s: those lines would bury the log). A probe that fails is still logged.
 */
function quietRequest(first: unknown): boolean {
  if (typeof first !== "object" || first === null || !("res" in first)) return false;
  const res = (first as { res?: unknown }).res;
  if (typeof res !== "object" || res === null || !("statusCode" in res)) return false;
  const { statusCode, req } = res as ServerResponse;
  const path = (req as { url?: string } | undefined)?.url?.split("?")[0] ?? "";
  return statusCode < 400 && QUIET_PATHS.has(path);
}

/** The app's one JSON logger, at `level`, to stdout or `destination`; its children (the HTTP server's among them) share the filter. */
export function appLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger["info"]>, method: (...args: Parameters<Logger["info"]>) => void): void {
        if (quietRequest(args[0])) return;
        method.apply(this, args);
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
