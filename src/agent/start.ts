import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import { connectRedis } from "../redis/connection.ts";
import {
  agentHeartbeatKey,
  agentQueue,
  livePreviewQueue,
  REPORT_QUEUE,
  type AgentJob,
  type AgentReport,
  type DriftReport,
  type LivePreviewRequest,
  type LiveReport,
} from "../core/agent-protocol.ts";
import type { Envelope } from "../core/signing.ts";
import { DriftChecker } from "./drift.ts";
import { liveAnswerHeader, previewLive, verifyPreviewRequest, type LivePreviewDeps } from "./live-preview.ts";
import { privateKeyFromPem, publicKeyFromPem, seal } from "../core/signing.ts";
import { admitJob, Deployer, verifyJob, type Report } from "./deployer.ts";
import { DeployError } from "./errors.ts";
import { InventoryStore } from "./inventory-store.ts";
import { Cluster } from "./kube/cluster.ts";
import type { AgentSettings } from "./settings.ts";
import { errorMessage } from "../core/errors.ts";
import { createServer, type Server } from "node:http";
import { answerProbe, checkWithin, metricsAuthorized, PROBE_PATHS, redisReady, workersReady, type ProbeSources } from "../core/probes.ts";
import { AgentMetrics } from "./metrics.ts";

/** A running agent. */
export interface RunningAgent {
  /** The port `/healthz`, `/readyz` and `/metrics` are served on. */
  probePort: number;
  /** Stops taking jobs; the job in progress finishes first (BullMQ's close waits for it). */
  stop: () => Promise<void>;
}

/** Log lines of the agent: fixed messages, details in an object. */
export type AgentLog = (level: "info" | "warn" | "error", message: string, details: Record<string, unknown>) => void;

/** How long an agent's heartbeat lasts; it is renewed three times as often. */
const HEARTBEAT_TTL_SECONDS = 30;

/** Starts one worker per served environment, one deploy at a time per environment across all replicas. */
export async function startAgent(settings: AgentSettings, options: { now?: () => number; log?: AgentLog } = {}): Promise<RunningAgent> {
  const now = options.now ?? Date.now;
  const log: AgentLog =
    options.log ??
    ((level, message, details) => {
      process.stderr.write(`${JSON.stringify({ level, time: Date.now(), message, ...details })}\n`);
    });
  const redis = connectRedis(settings.redisUrl);
  const cluster = Cluster.connect(settings.kubeconfig, { fieldManager: settings.fieldManager, qps: settings.qps });
  const appKey = publicKeyFromPem(settings.appPublicKey);
  const agentKey = privateKeyFromPem(settings.signingKey);
  const reports = new Queue(REPORT_QUEUE.name, { connection: redis, prefix: REPORT_QUEUE.prefix });
  const workers: Worker[] = [];
  const queues: { environment: string; queue: Queue }[] = [];
  const metrics = new AgentMetrics({
    queueDepths: () =>
      Promise.all(
        queues.map(async ({ environment, queue }) => ({
          environment,
          queue: queue.name,
          counts: await queue.getJobCounts("waiting", "active", "delayed", "failed"),
        })),
      ),
  });
  /** Signs a message for the app and queues it; retried, since a lost report leaves GitHub behind. */
  const send = async (kind: "report" | "live" | "drift", body: AgentReport | LiveReport | DriftReport): Promise<void> => {
    await reports.add(kind, seal(kind, body, agentKey), {
      attempts: 10,
      backoff: { type: "exponential", delay: 1_000 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
    metrics.sent(kind, body);
  };
  const policy = {
    rules: settings.rules,
    clusterKinds: settings.clusterKinds,
    allowAdoption: settings.allowAdoption,
    adoptUnmanaged: settings.adoptUnmanaged,
    allowPodSecurityLabels: settings.allowPodSecurityLabels,
    environments: settings.environments,
    maxJobAgeMs: settings.maxJobAgeMs,
  };
  const inventories = new InventoryStore(cluster, settings.namespace);
  // What deploys, drift checks and live previews share: the cluster, its record, the keys and the policy.
  const shared = { redis, cluster, inventories, appKey, policy, concurrency: settings.concurrency };
  const deployer = new Deployer({
    ...shared,
    healthTimeoutMs: settings.healthTimeoutMs,
    clock: { now, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
  });

  const reporter =
    (job: AgentJob): Report =>
    async (fields) => {
      const report: AgentReport = {
        version: 1,
        jobId: job.id,
        repository: job.repository,
        installationId: job.installationId,
        environment: job.environment,
        sha: job.sha,
        at: new Date(now()).toISOString(),
        ...fields,
      };
      await send("report", report);
    };

  const processJob = async (bullJob: Job): Promise<void> => {
    let job: AgentJob;
    try {
      job = verifyJob(bullJob.data, { appKey, policy });
    } catch (error) {
      // An unverified job names nothing that can be trusted, so nothing is reported to GitHub.
      log("warn", "job rejected", { job: bullJob.id, error: String(error) });
      metrics.rejectedJobs.inc({ queue: "deploy" });
      throw new UnrecoverableError(errorMessage(error));
    }
    const report = reporter(job);
    const started = now();
    try {
      admitJob(job, policy, now());
      const supersededBy = await deployer.supersededBy(job);
      if (supersededBy) {
        await report({ phase: "superseded", message: `superseded by a newer deploy (${supersededBy})`, supersededBy });
        return;
      }
      const objects = await deployer.objects(job);
      const { results, history } = await deployer.deploy(job, objects, report);
      await drift.remember(job, bullJob.data as Envelope);
      await report({
        phase: "succeeded",
        message: `deployed ${results.length} objects`,
        objects: results,
        durationMs: now() - started,
        history,
      });
      log("info", "deploy succeeded", { job: job.id, objects: results.length, ms: now() - started });
    } catch (error) {
      const ended = error instanceof DeployError ? error : undefined;
      const permanent = ended?.permanent ?? false;
      const lastAttempt = bullJob.attemptsMade + 1 >= (bullJob.opts.attempts ?? 1);
      if (permanent || lastAttempt) {
        // The record may be what failed to read; the report goes out without the history then.
        const history = await deployer.history(job).catch(() => undefined);
        await report({
          phase: ended?.end ?? "failed",
          message: errorMessage(error),
          objects: ended?.objects ?? [],
          durationMs: now() - started,
          ...(history ? { history } : {}),
        });
      }
      log("error", "deploy failed", { job: job.id, error: String(error), permanent });
      if (permanent) throw new UnrecoverableError(errorMessage(error));
      throw error;
    }
  };

  const drift = new DriftChecker({ ...shared, now });
  const checkDrift = async (): Promise<void> => {
    for (const environment of settings.environments) {
      let found: Awaited<ReturnType<DriftChecker["checkEnvironment"]>>;
      try {
        found = await drift.checkEnvironment(environment);
      } catch (error) {
        log("error", "drift check failed", { environment, error: errorMessage(error) });
        continue;
      }
      metrics.driftCheckTime.set({ environment }, now() / 1000);
      for (const body of found) {
        const report: DriftReport = { ...body, at: new Date(now()).toISOString() };
        await send("drift", report);
        if (report.drifted.length > 0)
          log("info", "drift found", {
            environment,
            repository: report.repository.id,
            drifted: report.drifted.length,
            healed: report.healed.length,
          });
      }
    }
  };
  let driftTimer: NodeJS.Timeout | undefined;
  let driftRun: Promise<void> = Promise.resolve();
  let stopped = false;
  const scheduleDrift = (): void => {
    if (settings.driftIntervalMs === 0 || stopped) return;
    // Jittered by up to a tenth either way, so replicas and agents do not check in step.
    const delay = settings.driftIntervalMs * (0.9 + Math.random() * 0.2);
    driftTimer = setTimeout(() => {
      driftRun = checkDrift()
        .catch((error: unknown) => {
          log("error", "drift check failed", { error: errorMessage(error) });
        })
        .finally(scheduleDrift);
    }, delay);
  };
  scheduleDrift();
  const livePreviews: LivePreviewDeps = {
    ...shared,
    now,
    baseline: (environment, repositoryId) => drift.appliedObjects(environment, repositoryId),
  };
  const processPreview = async (bullJob: Job): Promise<void> => {
    let request: LivePreviewRequest;
    try {
      request = verifyPreviewRequest(bullJob.data, livePreviews);
    } catch (error) {
      log("warn", "live preview request rejected", { job: bullJob.id, error: errorMessage(error) });
      metrics.rejectedJobs.inc({ queue: "live-preview" });
      throw new UnrecoverableError(errorMessage(error));
    }
    let answer: Omit<LiveReport, "at">;
    try {
      answer = await previewLive(livePreviews, request);
    } catch (error) {
      // A transient cluster error is retried; the last attempt (or a refusal) still answers, so the comment does not wait forever.
      const permanent = error instanceof DeployError && error.permanent;
      if (!permanent && bullJob.attemptsMade + 1 < (bullJob.opts.attempts ?? 1)) throw error;
      answer = { ...liveAnswerHeader(request), changes: [], unchanged: 0, prune: [], error: errorMessage(error) };
    }
    const report: LiveReport = { ...answer, at: new Date(now()).toISOString() };
    await send("live", report);
    log("info", "live preview answered", { request: request.id, changes: report.changes.length });
  };

  for (const environment of settings.environments) {
    const q = agentQueue(environment);
    const queue = new Queue(q.name, { connection: redis, prefix: q.prefix });
    await queue.setGlobalConcurrency(1);
    queues.push({ environment, queue });
    // A job whose agent died is taken over once its lock lapses; a job that keeps killing its agent fails after five tries.
    workers.push(
      new Worker(q.name, processJob, {
        connection: redis,
        prefix: q.prefix,
        concurrency: 1,
        lockDuration: settings.lockMs,
        stalledInterval: settings.lockMs,
        maxStalledCount: 5,
      }),
    );
    const live = livePreviewQueue(environment);
    workers.push(new Worker(live.name, processPreview, { connection: redis, prefix: live.prefix, concurrency: 2 }));
  }
  // Tells the app an agent is here to answer live previews (a hint; it decides nothing).
  const beat = async (): Promise<void> => {
    await Promise.all(
      settings.environments.map((environment) => redis.set(agentHeartbeatKey(environment), String(now()), "EX", HEARTBEAT_TTL_SECONDS)),
    );
  };
  await beat();
  const heartbeat = setInterval(
    () => {
      beat().catch((error: unknown) => {
        log("warn", "heartbeat failed", { error: errorMessage(error) });
      });
    },
    (HEARTBEAT_TTL_SECONDS * 1000) / 3,
  );
  const probes: ProbeSources = {
    ready: () =>
      Promise.all([
        redisReady(redis),
        checkWithin("kubernetes", 5_000, async () => {
          await cluster.version();
          return undefined;
        }),
        workersReady(stopped, workers),
      ]),
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
  };
  const probeServer = await serveProbes(settings.probeHost, settings.probePort, probes, settings.metricsToken);
  const address = probeServer.address();
  return {
    probePort: typeof address === "object" && address ? address.port : settings.probePort,
    stop: async () => {
      stopped = true;
      clearTimeout(driftTimer);
      await driftRun;
      clearInterval(heartbeat);
      await Promise.all(settings.environments.map((environment) => redis.del(agentHeartbeatKey(environment))));
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([...queues.map((q) => q.queue), reports].map((q) => q.close()));
      await redis.quit();
      cluster.close();
      await new Promise((resolve) => probeServer.close(resolve));
    },
  };
}

/**
 * The agent's only listening socket: probes and metrics, no API. With `metricsToken`, `/metrics`
 * (which names repositories and environments) answers 401 without it; the probes stay open.
 */
async function serveProbes(host: string, port: number, sources: ProbeSources, metricsToken?: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === PROBE_PATHS.metrics && !metricsAuthorized(req.headers.authorization, metricsToken)) {
      res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": "Bearer" });
      res.end("Unauthorized\n");
      return;
    }
    const answer = req.method === "GET" ? answerProbe(path, sources) : Promise.resolve(undefined);
    answer
      .then((a) => {
        res.writeHead(a?.status ?? 404, { "content-type": a?.contentType ?? "text/plain; charset=utf-8", "cache-control": "no-store" });
        res.end(a?.body ?? "Not found\n");
      })
      .catch(() => {
        res.writeHead(500).end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
