import type { Server } from "probot";
import type { Clock } from "../../core/clock.ts";
import { errorMessage } from "../../core/errors.ts";
import type { Infrastructure } from "./infrastructure.ts";
import type { AppServices } from "./services.ts";
import type { AppWorkers } from "./workers.ts";
import type { Dashboard } from "./probot-app.ts";
import type { Logger } from "../log-context.ts";
import { stopWithin, type StopStep } from "./stop-steps.ts";

/** What the app stops, in the order it stops them. */
export interface StoppableParts {
  server: Server;
  missedDeliveries: { stop: () => void };
  workers: AppWorkers;
  services: Pick<AppServices, "renderer" | "deploys">;
  infra: Pick<Infrastructure, "queues" | "redis" | "checkouts">;
  dashboard: Dashboard | undefined;
}

/**
 * The stop sequence: first what takes work in (webhooks, redeliveries), then the workers (running
 * previews finish), then what they used, Redis last but the checkout cache's claim.
 */
export function appStopSteps(parts: StoppableParts): StopStep[] {
  const { server, missedDeliveries, workers, services, infra, dashboard } = parts;
  const { redis } = infra;
  return [
    { name: "webhook server", run: () => server.stop() },
    {
      name: "missed deliveries",
      run: () => {
        missedDeliveries.stop();
        return Promise.resolve();
      },
    },
    {
      name: "deploy workers",
      run: () => Promise.all(workers.deploy.map((w) => w.close())),
      force: () => Promise.all(workers.deploy.map((w) => w.disconnect())),
    },
    { name: "preview worker", run: () => workers.preview.close(), force: () => workers.preview.disconnect() },
    {
      name: "convergence",
      run: () => {
        services.deploys?.convergence.close();
        return Promise.resolve();
      },
    },
    { name: "render processes", run: () => services.renderer.close(), force: () => services.renderer.close() },
    { name: "queues", run: () => infra.queues.close() },
    { name: "queue dashboard", run: async () => dashboard?.close() },
    {
      name: "redis",
      run: () => redis.quit(),
      force: () => {
        redis.disconnect();
      },
    },
    { name: "checkout cache", run: () => infra.checkouts.release(), force: () => infra.checkouts.release() },
  ];
}

/** Runs the stop steps within `timeoutMs`, logging a step that failed and the deadline passing. */
export async function stopApp(steps: readonly StopStep[], timeoutMs: number, options: { clock: Clock; logger: Logger }): Promise<void> {
  const { logger } = options;
  await stopWithin(steps, timeoutMs, {
    clock: options.clock,
    late: (step, pending) => {
      logger.warn({ step, pending, deadlineMs: timeoutMs }, "stop deadline passed: cutting the rest of the shutdown short");
    },
    failed: (step, error) => {
      logger.warn({ step, error: errorMessage(error) }, "a stop step failed; stopping the rest");
    },
  });
}
