import { Probot, Server, type ApplicationFunction } from "probot";
import type { Logger as PinoLogger } from "pino";
import { concurrencyGate } from "../../core/clock.ts";
import { loadPageViews } from "../../views.ts";
import type { Infrastructure } from "./infrastructure.ts";
import type { AppReadiness } from "./readiness.ts";
import type { AppServices } from "./services.ts";
import type { GitHubAccess } from "../github/access.ts";
import { checkRunActionHandler, checkRunRerunHandler } from "../handlers/check-run.ts";
import { deduplicated } from "../handlers/deduplicated.ts";
import { issueCommentHandler } from "../handlers/issue-comment.ts";
import { mergeGroupHandler } from "../handlers/merge-group.ts";
import { pullRequestHandler } from "../handlers/pull-request.ts";
import { pushHandler } from "../handlers/push.ts";
import { diffPageHandler } from "../http/diff-page-handler.ts";
import { probeHandler } from "../http/probe-handler.ts";
import { queueDashboard } from "../http/queue-dashboard.ts";
import type { AppSettings } from "../settings.ts";

/**
 * Webhook deliveries handled at once. A handler only checks, writes a check run and queues (tens
 * of milliseconds), so a burst waits briefly instead of holding hundreds of requests to GitHub
 * and their memory at once.
 */
const WEBHOOK_CONCURRENCY = 16;

/** The queue dashboard, when the settings give it a token. */
export type Dashboard = Awaited<ReturnType<typeof queueDashboard>>;

/** Opens the queue dashboard when the settings give it a token; undefined otherwise. */
export async function openDashboard(infra: Infrastructure, settings: AppSettings): Promise<Dashboard | undefined> {
  if (!settings.dashboardToken) return undefined;
  return queueDashboard({ redis: infra.redis, token: settings.dashboardToken, writable: settings.dashboardWritable });
}

/** What the Probot application routes to. */
export interface ProbotAppDeps {
  settings: AppSettings;
  infra: Infrastructure;
  services: AppServices;
  access: GitHubAccess;
  readiness: AppReadiness;
  dashboard: Dashboard | undefined;
  now: () => number;
}

/**
 * The Probot application: each webhook event to its handler (deduplicated, timed, and all behind
 * one gate of WEBHOOK_CONCURRENCY), and the HTTP routes: diff pages, the queue dashboard, probes.
 * Pushes are handled only when the app deploys.
 */
export function probotApp(deps: ProbotAppDeps): ApplicationFunction {
  const { settings, infra, services, access, now } = deps;
  const { redis, queues, prState, checkouts, metrics } = infra;
  const { commands } = services;
  let views: ReturnType<typeof loadPageViews> | undefined;
  return (app, { addHandler }) => {
    access.attach(app);
    const timings = metrics.webhooks;
    const gate = concurrencyGate(WEBHOOK_CONCURRENCY);
    const github = (installationId: number) => access.installation(installationId, "webhook");
    app.on(
      "pull_request",
      deduplicated(redis, pullRequestHandler({ github, queues, prState, previews: services.previews }), timings, gate),
    );
    app.on("merge_group", deduplicated(redis, mergeGroupHandler({ github, queues, prState }), timings, gate));
    app.on("issue_comment.created", deduplicated(redis, issueCommentHandler({ github, commands }), timings, gate));
    if (services.deploys)
      app.on(
        "push",
        deduplicated(
          redis,
          pushHandler({ github, queues, checkouts, now, log: access.log, promotions: services.deploys.promotions }),
          timings,
          gate,
        ),
      );
    app.on(
      "check_run.requested_action",
      deduplicated(redis, checkRunActionHandler({ appId: settings.appId, github, commands }), timings, gate),
    );
    app.on("check_run.rerequested", deduplicated(redis, checkRunRerunHandler({ appId: settings.appId, github, commands }), timings, gate));
    addHandler(diffPageHandler(infra.diffPages, () => (views ??= loadPageViews()), now));
    if (deps.dashboard) addHandler(deps.dashboard.handler);
    addHandler(
      probeHandler(
        {
          ready: deps.readiness.check,
          metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
        },
        settings.metricsToken,
      ),
    );
  };
}

/** The Probot server, its webhooks checked with the app's secret, logging through `logger`. */
export function probotServer(settings: AppSettings, logger: PinoLogger): Server {
  return new Server({
    Probot: Probot.defaults({
      appId: settings.appId,
      privateKey: settings.privateKey,
      secret: settings.webhookSecret,
      baseUrl: settings.githubApiUrl,
      log: logger,
    }),
    port: settings.port,
    host: settings.host,
    ...(settings.webhookProxyUrl ? { webhookProxy: settings.webhookProxyUrl } : {}),
    log: logger,
  });
}
