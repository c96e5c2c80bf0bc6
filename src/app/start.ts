import { setTimeout as sleep } from "node:timers/promises";
import { connectRedis, servers } from "../redis/connection.ts";
import { readEvictionPolicies } from "../redis/eviction-policy.ts";
import type { Logger as PinoLogger } from "pino";
import { Probot, Server, type ApplicationFunction } from "probot";
import { DEFAULT_LIMITS } from "../render/render-environment.ts";
import { outputLimitFor, RenderPool } from "../render/render-pool.ts";
import { probeSandbox, SandboxUnavailableError, type SandboxSetting } from "../render/process.ts";
import { resolveTools } from "../render/setup.ts";
import { loadPageViews } from "../views.ts";
import { GitHubClient } from "./github/client.ts";
import { issueCommentHandler } from "./handlers/issue-comment.ts";
import { checkRunActionHandler, checkRunRerunHandler } from "./handlers/check-run.ts";
import { pullRequestHandler } from "./handlers/pull-request.ts";
import { diffPageHandler } from "./http/diff-page-handler.ts";
import { privateKeyFromPem, publicKeyFromPem } from "../core/signing.ts";
import { pushHandler } from "./handlers/push.ts";
import { deduplicated } from "./handlers/deduplicated.ts";
import { limitRequestBodies } from "./http/body-limit.ts";
import { AppQueues, deployRequestWorker, liveTimeoutWorker, previewWorker, reportWorker, type PreviewJob } from "./queue/queues.ts";
import { isRecord } from "../core/manifest.ts";
import { DriftReports } from "./services/drift-reports.ts";
import { LivePreviews } from "./services/live-previews.ts";
import { PublishedPreviews } from "./services/published-previews.ts";
import { errorMessage } from "../core/errors.ts";
import { RedisMac } from "./services/redis-mac.ts";
import { DeployJobs } from "./services/deploy-jobs.ts";
import { DeployRecords } from "./services/deploy-records.ts";
import { EnvironmentStates } from "./services/environment-states.ts";
import { DeployReports } from "./services/deploy-reports.ts";
import { Convergence } from "./services/convergence.ts";
import { MissedDeliveries } from "./services/missed-deliveries.ts";
import { CheckoutCache } from "./services/checkout-cache.ts";
import { CommandService } from "./services/command-service.ts";
import { DiffPages } from "./services/diff-pages.ts";
import { PullRequestState } from "./services/pr-state.ts";
import { PreviewService } from "./services/preview-service.ts";
import { RenderCache } from "./services/render-cache.ts";
import type { AppSettings } from "./settings.ts";
import { AppMetrics } from "./metrics.ts";
import { AgentKeys } from "./services/agent-keys.ts";
import { contextual, withLogContext, type Logger } from "./services/logger.ts";
import { probeHandler } from "./http/probe-handler.ts";
import { queueDashboard } from "./http/queue-dashboard.ts";
import { CredentialCheck, evictionVerdict, redisReady, workersReady, type ReadinessCheck } from "../core/probes.ts";
import { concurrencyGate, type Clock } from "../core/clock.ts";
import { appLogger } from "./logger.ts";
import { connectionErrorLog } from "./connection-errors.ts";
import { stopWithin, type StopStep } from "./stop-steps.ts";
import { installationOctokit, type WriteLane } from "./github/installation-octokit.ts";
import { GitHubPacing, type PacingClock } from "./github/pacing.ts";

/**
 * Webhook deliveries handled at once. A handler only checks, writes a check run and queues (tens
 * of milliseconds), so a burst waits briefly instead of holding hundreds of requests to GitHub
 * and their memory at once.
 */
const WEBHOOK_CONCURRENCY = 16;

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
  const checkouts = new CheckoutCache({
    dir: settings.cacheDir,
    maxCacheBytes: settings.cacheMaxBytes,
    maxBytes: settings.checkoutMaxBytes,
    maxFiles: settings.checkoutMaxFiles,
    now,
  });
  // Before anything is opened: a cache directory another app process uses is refused.
  await checkouts.claim();
  const redis = connectRedis(settings.redisUrl, settings.redisTls);
  // A connection's errors repeat at every reconnect attempt while Redis is down: logged as JSON,
  // once per message and minute, never printed by a library as a stack trace.
  const connectionError = connectionErrorLog((details, message) => {
    logger.warn(details, message);
  }, clock.now);
  redis.on("error", (error: Error) => {
    connectionError("redis", error);
  });
  const metrics = new AppMetrics({ queueDepths: () => queues.depths() });
  // Redis is not trusted: everything the app reads back from it is authenticated with this.
  const mac = new RedisMac(settings.redisMacSecrets, () => {
    metrics.redisMacFailures.inc();
  });
  const queues = new AppQueues(redis, { mac, now });
  const prState = new PullRequestState(redis);
  const diffPages = new DiffPages(redis, {
    publicUrl: settings.publicUrl,
    secret: settings.linkSecret,
    ttlSeconds: settings.diffTtlSeconds,
    mac,
  });
  const tools = await resolveTools(settings.env);
  let probot: Probot | undefined;
  // Every line carries what it is about: the delivery, job, repository and environment at hand.
  const log = contextual({
    info: (details: Record<string, unknown>, message: string) => {
      probot?.log.info(details, message);
    },
    warn: (details: Record<string, unknown>, message: string) => {
      probot?.log.warn(details, message);
    },
    error: (details: Record<string, unknown>, message: string) => {
      probot?.log.error(details, message);
    },
  });
  const pacing = new GitHubPacing(
    (retry) => {
      metrics.githubRetries.inc({ reason: retry.reason });
      log.warn({ ...retry }, "GitHub request will be tried again");
    },
    { clock: options.pacingClock },
  );
  // Handlers use this too (in the webhook lane), not the event's own octokit: see installationOctokit.
  const github = async (installationId: number, lane: WriteLane = "background"): Promise<GitHubClient> => {
    if (!probot) throw new Error("the app is not loaded yet");
    const octokit = await installationOctokit(probot, pacing, installationId, lane);
    octokit.hook.after("request", (response) => {
      const remaining = Number(response.headers["x-ratelimit-remaining"]);
      if (Number.isFinite(remaining)) metrics.rateLimit.set({ installation: String(installationId) }, remaining);
    });
    return new GitHubClient(octokit, settings.appId);
  };
  // A render process holds its renderer's whole output and the parsed objects: the output cap follows its heap.
  const limits = {
    ...DEFAULT_LIMITS,
    timeoutMs: settings.renderTimeoutMs,
    maxOutputBytes: outputLimitFor(settings.renderMemoryMb),
    sandbox: settings.renderSandbox,
    toolMemoryBytes: settings.renderToolMemoryMb * 1024 * 1024,
  };
  const renderer = new RenderPool({
    size: settings.renderProcesses,
    heapMb: settings.renderMemoryMb,
    tools,
    limits,
    observe: (seconds, ok) => {
      metrics.renders.observe({ outcome: ok ? "ok" : "failed" }, seconds);
    },
  });
  const published = new PublishedPreviews(redis, mac);
  const agentKeys = new AgentKeys(
    settings.agentPublicKeys.map((k) => ({
      key: publicKeyFromPem(k.pem),
      ...(k.environments ? { environments: k.environments } : {}),
      ...(k.repositories ? { repositories: k.repositories } : {}),
    })),
    metrics.agentMessages,
  );
  const driftReports = new DriftReports({
    redis,
    mac,
    github,
    agentKeys,
    changed: (repositoryId, environment, summary) => live?.driftChanged(repositoryId, environment, summary) ?? Promise.resolve(),
    log,
  });
  const live: LivePreviews | undefined = settings.jobSigningKey
    ? new LivePreviews({
        diffPages,
        driftOf: async (repositoryId, environment) => (await driftReports.state(repositoryId, environment))?.summary,
        redis,
        queues,
        prState,
        published,
        checkouts,
        github,
        signingKey: privateKeyFromPem(settings.jobSigningKey),
        agentKeys,
        webUrl: settings.githubWebUrl,
        requestTtlMs: settings.jobTtlMs,
        timeoutMs: settings.liveTimeoutMs,
        now,
        log,
      })
    : undefined;
  const previews = new PreviewService({
    published,
    ...(live ? { live } : {}),
    github,
    checkouts,
    renderCache: new RenderCache(redis, {
      ttlSeconds: 7 * 24 * 3600,
      maxEntryBytes: 64 * 1024 * 1024,
      maxEntries: settings.renderCacheEntries,
      mac,
    }),
    prState,
    diffPages,
    renderer,
    webUrl: settings.githubWebUrl,
    now,
    log,
  });
  const records = new DeployRecords(redis, mac, log);
  const environments = new EnvironmentStates(redis, mac);
  const deploys = settings.jobSigningKey
    ? {
        jobs: new DeployJobs({
          redis,
          queues,
          github,
          checkouts,
          renderer,
          records,
          environments,
          signingKey: privateKeyFromPem(settings.jobSigningKey),
          jobTtlMs: settings.jobTtlMs,
          webUrl: settings.githubWebUrl,
          now,
          log,
        }),
        reports: new DeployReports({
          github,
          records,
          environments,
          agentKeys,
          webUrl: settings.githubWebUrl,
          log,
        }),
      }
    : undefined;
  // Authenticated as the app itself: its webhook deliveries, and which installation holds a repository.
  const appGitHub = async (): Promise<GitHubClient> => {
    if (!probot) throw new Error("the app is not loaded yet");
    return new GitHubClient(await probot.auth(), settings.appId);
  };
  // An agent's status that shows its environment behind a tracked branch's head gets that head deployed.
  const convergence = deploys
    ? new Convergence({
        redis,
        mac,
        queues,
        github,
        appGitHub,
        checkouts,
        environments,
        records,
        agentKeys,
        jobTtlMs: settings.jobTtlMs,
        now,
        log,
      })
    : undefined;
  const commands = new CommandService({
    queues,
    prState,
    environments,
    now,
    log,
    webUrl: settings.githubWebUrl,
    deploysEnabled: deploys !== undefined,
    checkouts,
  });
  let views: ReturnType<typeof loadPageViews> | undefined;
  const dashboard = settings.dashboardToken
    ? await queueDashboard({ redis, token: settings.dashboardToken, writable: settings.dashboardWritable })
    : undefined;
  let stopping = false;
  // Whether GitHub takes the app's credentials: a refusal makes the app unready, an unreachable
  // (or hanging) GitHub does not. Every probe shares one request.
  const credentials = new CredentialCheck(
    async (signal) => {
      if (!probot) throw new Error("the app is not loaded yet");
      await (await probot.auth()).request("GET /app", { request: { signal } });
    },
    {
      clock,
      observe: (answer) => {
        if (answer.kind === "unreachable") log.warn({ error: answer.reason }, "could not reach GitHub to check the app's credentials");
        if (answer.kind === "refused")
          log.error({ status: answer.status }, "GitHub refused the app's credentials: check APP_ID and PRIVATE_KEY");
      },
    },
  );
  const evictionPolicies = () => readEvictionPolicies(servers(redis));
  const readiness = (): Promise<ReadinessCheck[]> =>
    Promise.all([redisReady(redis, { evictionPolicies }), workersReady(stopping, workers), credentials.check()]);

  const appFn: ApplicationFunction = (app, { addHandler }) => {
    probot = app;
    const timings = metrics.webhooks;
    // One gate for every event: a burst of deliveries is handled WEBHOOK_CONCURRENCY at a time.
    const gate = concurrencyGate(WEBHOOK_CONCURRENCY);
    const webhookGitHub = (installationId: number) => github(installationId, "webhook");
    app.on("pull_request", deduplicated(redis, pullRequestHandler({ github: webhookGitHub, queues, prState, previews }), timings, gate));
    app.on("issue_comment.created", deduplicated(redis, issueCommentHandler({ github: webhookGitHub, commands }), timings, gate));
    if (deploys) app.on("push", deduplicated(redis, pushHandler({ github: webhookGitHub, queues, checkouts, now, log }), timings, gate));
    app.on(
      "check_run.requested_action",
      deduplicated(redis, checkRunActionHandler({ appId: settings.appId, github: webhookGitHub, commands }), timings, gate),
    );
    app.on(
      "check_run.rerequested",
      deduplicated(redis, checkRunRerunHandler({ appId: settings.appId, github: webhookGitHub, commands }), timings, gate),
    );
    addHandler(diffPageHandler(diffPages, () => (views ??= loadPageViews()), now));
    if (dashboard) addHandler(dashboard.handler);
    addHandler(
      probeHandler(
        {
          ready: readiness,
          metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
        },
        settings.metricsToken,
      ),
    );
  };
  const server = new Server({
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
  await server.load(appFn);
  const giveUp = async (job: PreviewJob, error: unknown): Promise<void> => {
    await previews.fail(job, error).catch((failure: unknown) => {
      log.error({ pullRequest: job.pullRequest, error: errorMessage(failure) }, "could not mark the preview check run failed");
    });
  };
  const worker = previewWorker(
    redis,
    mac,
    {
      run: (job) =>
        withLogContext(
          { repository: `${job.repository.owner}/${job.repository.name}`, pullRequest: job.pullRequest, sha: job.headSha },
          () => AppMetrics.timed(metrics.previews, () => previews.run(job)),
        ),
      giveUp,
    },
    { concurrency: settings.previewConcurrency },
  );
  worker.on("failed", (job, error) => {
    log.error({ job: job?.id, error: error.message }, "preview job failed");
  });
  // Agents send deploy reports and live-preview answers on one queue; the envelope's signed kind says which.
  const fromAgents = async (envelope: unknown): Promise<void> => {
    const kind = isRecord(envelope) ? envelope.kind : undefined;
    if (kind === "live") await live?.consume(envelope);
    else if (kind === "drift") await driftReports.consume(envelope);
    else if (kind === "status") await convergence?.consume(envelope);
    else await deploys?.reports.consume(envelope);
  };
  const deployWorkers = deploys
    ? [
        deployRequestWorker(redis, { mac, now }, (request) =>
          withLogContext(
            {
              repository: `${request.repository.owner}/${request.repository.name}`,
              environment: request.environment,
              sha: request.sha,
              trigger: request.trigger,
            },
            async () => {
              // Every verified request tells which repositories deploy to an environment, for convergence.
              await convergence?.remember(request);
              await deploys.jobs.prepare(request);
            },
          ),
        ),
        reportWorker(redis, fromAgents),
        ...(live ? [liveTimeoutWorker(redis, mac, (timeout) => live.timeOut(timeout))] : []),
      ]
    : [];
  for (const w of deployWorkers)
    w.on("failed", (job, error) => {
      log.error({ job: job?.id, queue: w.name, error: error.message }, "deploy pipeline job failed");
    });
  const workers = [worker, ...deployWorkers];
  for (const w of workers) {
    w.on("error", (error) => {
      connectionError(`worker ${w.name}`, error);
    });
    w.on("completed", () => {
      metrics.jobs.inc({ queue: w.name, outcome: "completed" });
    });
    w.on("failed", () => {
      metrics.jobs.inc({ queue: w.name, outcome: "failed" });
    });
  }
  limitRequestBodies(await server.start(), "/api/github/webhooks");
  // Webhooks GitHub could not deliver while the app was down or unreachable: redelivered on request.
  const missedDeliveries = new MissedDeliveries({ redis, appGitHub, now, log }).start(MISSED_DELIVERIES_INTERVAL_MS);
  await reportSandbox(settings.renderSandbox, logger);
  const budget = settings.renderBudget;
  if (budget.fits) logger.info({ ...budget }, "render processes sized to the memory limit");
  else logger.warn({ ...budget }, "the render settings overrun the memory limit: a heavy render may get the pod OOM-killed");
  if (settings.deploysOff !== undefined)
    logger.warn({ reason: settings.deploysOff }, "deploys are off: the app previews pull requests and deploys nothing");
  // Said once at start; readiness says it on every probe until the policy is fixed. Not awaited:
  // Redis may not be up yet.
  evictionPolicies().then(
    (policies) => {
      const verdict = evictionVerdict(policies);
      if (verdict.problem !== undefined)
        logger.error({ problem: verdict.problem }, "Redis may evict the app's data: the app stays unready");
      else if (verdict.note !== undefined) logger.warn({ note: verdict.note }, "could not check Redis's eviction policy");
    },
    () => undefined,
  );
  const stopSteps: StopStep[] = [
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
      run: () => Promise.all(deployWorkers.map((w) => w.close())),
      force: () => Promise.all(deployWorkers.map((w) => w.disconnect())),
    },
    { name: "preview worker", run: () => worker.close(), force: () => worker.disconnect() },
    {
      name: "convergence",
      run: () => {
        convergence?.close();
        return Promise.resolve();
      },
    },
    { name: "render processes", run: () => renderer.close(), force: () => renderer.close() },
    { name: "queues", run: () => queues.close() },
    { name: "queue dashboard", run: async () => dashboard?.close() },
    {
      name: "redis",
      run: () => redis.quit(),
      force: () => {
        redis.disconnect();
      },
    },
    { name: "checkout cache", run: () => checkouts.release(), force: () => checkouts.release() },
  ];
  return {
    port: server.port,
    logger,
    stop: async () => {
      stopping = true;
      await stopWithin(stopSteps, settings.stopTimeoutMs, {
        clock,
        late: (step, pending) => {
          logger.warn(
            { step, pending, deadlineMs: settings.stopTimeoutMs },
            "stop deadline passed: cutting the rest of the shutdown short",
          );
        },
        failed: (step, error) => {
          logger.warn({ step, error: errorMessage(error) }, "a stop step failed; stopping the rest");
        },
      });
    },
  };
}

/**
 * Says at start-up how renderers are isolated here, and refuses to start when the sandbox is
 * required and cannot run: every render would fail.
 */
async function reportSandbox(setting: SandboxSetting, logger: Logger): Promise<void> {
  if (setting === "off") {
    logger.warn({ sandbox: "off" }, "renderers run without the namespace sandbox (SLUICE_RENDER_SANDBOX=off)");
    return;
  }
  const probe = await probeSandbox();
  if (probe.available) {
    logger.info({ sandbox: "namespaces", bwrap: probe.bwrap }, "renderers run in namespaces of their own and see only the checkout");
    return;
  }
  if (setting === "required") throw new SandboxUnavailableError(probe.reason);
  logger.warn(
    { sandbox: "none", reason: probe.reason },
    "renderers cannot run in the namespace sandbox here; they read checkouts that hold no links, and references outside them are refused",
  );
}
