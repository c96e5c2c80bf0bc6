import { setTimeout as sleep } from "node:timers/promises";
import type { Logger as PinoLogger } from "pino";
import type { Clock } from "../core/clock.ts";
import { openInfrastructure } from "./wiring/infrastructure.ts";
import { AppReadiness } from "./wiring/readiness.ts";
import { buildServices } from "./wiring/services.ts";
import { appStopSteps, stopApp } from "./wiring/stop.ts";
import { startWorkers } from "./wiring/workers.ts";
import { GitHubAccess } from "./github/access.ts";
import type { PacingClock } from "./github/pacing.ts";
import { limitRequestBodies } from "./http/body-limit.ts";
import { appLogger } from "./logger.ts";
import { openDashboard, probotApp, probotServer } from "./wiring/probot-app.ts";
import { MissedDeliveries } from "./handlers/missed-deliveries.ts";
import type { AppSettings } from "./settings.ts";
import { reportEvictionPolicy, reportSandbox, reportSettings } from "./wiring/start-up-report.ts";

/** How often the app looks for webhook deliveries that failed (and at start), to have GitHub redeliver them. */
const MISSED_DELIVERIES_INTERVAL_MS = 10 * 60 * 1000;

/** A running app. */
export interface RunningApp {
  port: number;
  /**
   * Stops taking webhooks, lets running previews finish, closes connections: all within
   * `settings.stopTimeoutMs`, past which what is left is cut short (connections dropped).
   */
  stop: () => Promise<void>;
  /** The app's JSON logger. */
  logger: PinoLogger;
}

/** The system's clock, whose sleeps never keep the process alive on their own. */
const SYSTEM_CLOCK: Clock = { now: () => performance.now(), sleep: (ms) => sleep(ms, undefined, { ref: false }) };

/**
 * Starts the Probot server, its webhook handlers, the diff pages and the preview worker. Tests give
 * `now`, `pacingClock` for GitHub's write pacing, and `clock` for the readiness checks and the stop
 * deadline; all are the system's otherwise. `logger` is the process's JSON logger (one of its own
 * otherwise).
 */
export async function startApp(
  settings: AppSettings,
  now: () => number = Date.now,
  options: { pacingClock?: PacingClock; clock?: Clock; logger?: PinoLogger } = {},
): Promise<RunningApp> {
  const clock = options.clock ?? SYSTEM_CLOCK;
  // One JSON logger at the configured level for the server, the webhooks and the services.
  const logger = options.logger ?? appLogger(settings.logLevel);
  const infra = await openInfrastructure(settings, now, clock, logger);
  const access = new GitHubAccess({ appId: settings.appId, metrics: infra.metrics, pacingClock: options.pacingClock });
  const services = buildServices({ settings, infra, access, now });
  const dashboard = await openDashboard(infra, settings);
  const readiness = new AppReadiness(infra.redis, access, clock);
  const server = probotServer(settings, logger);
  await server.load(probotApp({ settings, infra, services, access, readiness, dashboard, now }));
  const workers = startWorkers(infra, services, { previewConcurrency: settings.previewConcurrency, now, log: access.log });
  readiness.watch(workers.all);
  limitRequestBodies(await server.start(), "/api/github/webhooks");
  // Webhooks GitHub could not deliver while the app was down or unreachable: redelivered on request.
  const missedDeliveries = new MissedDeliveries({ redis: infra.redis, appGitHub: access.app, now, log: access.log }).start(
    MISSED_DELIVERIES_INTERVAL_MS,
  );
  await reportSandbox(settings.renderSandbox, logger);
  reportSettings(settings, logger);
  void reportEvictionPolicy(readiness.evictionPolicies, logger);
  const stopSteps = appStopSteps({ server, missedDeliveries, workers, services, infra, dashboard });
  return {
    port: server.port,
    logger,
    stop: async () => {
      readiness.stopping();
      await stopApp(stopSteps, settings.stopTimeoutMs, { clock, logger });
    },
  };
}
