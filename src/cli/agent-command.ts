import { format } from "node:util";
import { errorMessage } from "../core/errors.ts";
import type { CommandIo } from "./io.ts";
import { untilStopSignal } from "./signals.ts";

/** The agent's exit code when it could not start, or when a stop had to drop a job in progress. */
const FAILED = 1;

/** How long the process may take to exit by itself after a stop that passed its deadline. */
const EXIT_GRACE_MS = 2_000;

/**
 * Runs `sluice agent` until SIGTERM or SIGINT; the job in progress finishes before it exits, within
 * `SLUICE_AGENT_STOP_TIMEOUT_SECONDS`. Every line it writes is a JSON object, library traces
 * included. Settings, keys and the kubeconfig are checked before anything connects: what is
 * wrong ends it with exit code 1 and a message naming the variable. The probes are served before
 * Redis is reached, and `/readyz` says why the agent is not ready while it waits.
 */
export async function runAgent(io: CommandIo): Promise<number> {
  const log = (level: "info" | "warn" | "error", message: string, details: Record<string, unknown> = {}): void => {
    io.stderr(`${JSON.stringify({ level, time: Date.now(), message, ...details })}\n`);
  };
  routeConsole(log);
  // A crash is a JSON line too, then the exit Node would have made.
  const crash = (error: unknown): void => {
    log("error", "sluice agent: crashed", { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(FAILED);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  const { loadAgentSettings } = await import("../agent/settings.ts");
  const { launchAgent } = await import("../agent/start.ts");
  let agent: Awaited<ReturnType<typeof launchAgent>>;
  let environments: string[];
  let probesAt: string;
  try {
    const settings = await loadAgentSettings(io.env);
    environments = settings.environments;
    agent = await launchAgent(settings, { log });
    probesAt = `${settings.probeHost}:${agent.probePort}`;
    log("info", "sluice agent: probes served, connecting", { probes: probesAt });
  } catch (error) {
    log("error", "sluice agent: cannot start", { error: errorMessage(error) });
    return FAILED;
  }
  const signal = untilStopSignal();
  const first = await Promise.race([agent.started.then(() => "started" as const), signal.then(() => "signal" as const)]).catch(
    (error: unknown) => {
      log("error", "sluice agent: cannot start", { error: errorMessage(error) });
      return "failed" as const;
    },
  );
  if (first === "started") {
    log("info", "sluice agent: serving", { environments, probes: probesAt });
    await signal;
  }
  log("info", "sluice agent: stopping", { after: "the current job" });
  const outcome = await agent.stop();
  const code = outcome === "deadline" || first === "failed" ? FAILED : 0;
  log(code === 0 ? "info" : "warn", "sluice agent: stopped", { outcome });
  // Whatever a library leaves behind (a connection dropped at the deadline) must not keep a pod in Terminating.
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  return code;
}

/**
 * Sends what libraries print with `console` (BullMQ's and ioredis's warnings and traces) through
 * the agent's log, so each is one JSON line with its text in `text`.
 */
function routeConsole(log: (level: "info" | "warn" | "error", message: string, details: Record<string, unknown>) => void): void {
  const route =
    (level: "info" | "warn" | "error") =>
    (...args: unknown[]): void => {
      log(level, "library output", { text: format(...args) });
    };
  console.log = route("info");
  console.info = route("info");
  console.warn = route("warn");
  console.error = route("error");
}
