import { randomUUID } from "node:crypto";
import { repeatFilter } from "../core/repeat-filter.ts";
import { hostname } from "node:os";
import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import { connectRedis, parseRedisUrl, type RedisClient } from "../redis/connection.ts";
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
import { seal } from "../core/signing.ts";
import { appliedGenerationKey, DRIFT_LEASE_RENEW_MS, DriftLease } from "./drift-lease.ts";
import { DriftWatcher } from "./drift-watch.ts";
import { admitJob, Deployer, verifyJob, type Report } from "./deployer.ts";
import { DeployError } from "./errors.ts";
import { InventoryStore } from "./inventory-store.ts";
import { Cluster } from "./kube/cluster.ts";
import type { AgentSettings } from "./settings.ts";
import { errorMessage } from "../core/errors.ts";
import { createServer, type Server } from "node:http";
import {
  answerProbe,
  checkWithin,
  metricsAuthorized,
  PROBE_PATHS,
  workersReady,
  type ProbeSources,
  type ReadinessCheck,
} from "../core/probes.ts";
import { AgentMetrics } from "./metrics.ts";
import { announceStatus } from "./status.ts";

/** How a stop ended: everything closed in time, or the deadline passed and the connections were dropped. */
export type StopOutcome = "finished" | "deadline";

/** A running agent. */
export interface RunningAgent {
  /** The port `/healthz`, `/readyz` and `/metrics` are served on. */
  probePort: number;
  /** Resolves once Redis answered and the workers take jobs; rejects when the agent was stopped first. */
  started: Promise<void>;
  /**
   * Stops taking jobs; the job in progress finishes first, unless `stopTimeoutMs` passes: then the
   * connections are dropped (the job's lock lapses and another replica takes it over).
   */
  stop: () => Promise<StopOutcome>;
}

/** Log lines of the agent: fixed messages, details in an object. */
export type AgentLog = (level: "info" | "warn" | "error", message: string, details: Record<string, unknown>) => void;

/** The agent's log as JSON lines on stderr, one object per line. */
export const jsonLog: AgentLog = (level, message, details) => {
  process.stderr.write(`${JSON.stringify({ level, time: Date.now(), message, ...details })}\n`);
};

/** What a test may inject; the system's clock, timers and randomness otherwise. */
export interface AgentOptions {
  now?: () => number;
  /** The waits between drift turns and the stop deadline (not a deploy's health waits, which run on real time). */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1), for the jitter of drift checks. */
  random?: () => number;
  log?: AgentLog;
}

/** How long an agent's heartbeat lasts; it is renewed three times as often. */
const HEARTBEAT_TTL_SECONDS = 30;

/** The same connection error is logged once a minute at most: ioredis retries every few seconds while Redis is gone. */
const CONNECTION_ERROR_LOG_MS = 60_000;

/** A timer that does not keep the process alive by itself. */
function unrefSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Starts an agent (see `launchAgent`) and waits until its workers take jobs. */
export async function startAgent(settings: AgentSettings, options: AgentOptions = {}): Promise<RunningAgent> {
  const agent = await launchAgent(settings, options);
  try {
    await agent.started;
  } catch (error) {
    await agent.stop();
    throw error;
  }
  return agent;
}

/**
 * Starts one worker per served environment, one deploy at a time per environment across all
 * replicas, and the drift checks of the environments whose lease it holds. Resolves once the
 * probes are served, which is before anything connects: with Redis unreachable `/readyz` says so
 * while ioredis retries, and `started` waits for it.
 * @throws Error naming KUBECONFIG when the kubeconfig cannot be used, or when the probe port is taken
 */
export async function launchAgent(settings: AgentSettings, options: AgentOptions = {}): Promise<RunningAgent> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? unrefSleep;
  const random = options.random ?? Math.random;
  const log: AgentLog = options.log ?? jsonLog;
  // Read before anything connects (the keys were read with the settings): what is wrong stops the start, naming the setting.
  const cluster = Cluster.connect(settings.kubeconfig, { fieldManager: settings.fieldManager, qps: settings.qps });
  // The probe server comes first; its sources are set once the connections below exist.
  const serving: { sources: ProbeSources } = {
    sources: {
      ready: () => Promise.resolve([{ name: "redis", problem: "not connected yet" }]),
      metrics: () => Promise.resolve({ contentType: "text/plain; charset=utf-8", body: "" }),
    },
  };
  let probeServer: Server;
  try {
    probeServer = await serveProbes(
      settings.probeHost,
      settings.probePort,
      { ready: () => serving.sources.ready(), metrics: () => serving.sources.metrics() },
      settings.metricsToken,
    );
  } catch (error) {
    cluster.close();
    throw new Error(
      `the probe port ${settings.probeHost}:${settings.probePort} (SLUICE_AGENT_PROBE_PORT) cannot be served: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  const redis = connectRedis(settings.redisUrl, settings.redisTls);
  const connectionError = connectionErrorLog(log, now);
  const redisProblem: { last?: string } = {};
  redis.on("error", (error: unknown) => {
    redisProblem.last = errorMessage(error);
    connectionError("redis", error);
  });
  const appKey = settings.appKeys;
  const agentKey = settings.signingKey;
  const reports = new Queue(REPORT_QUEUE.name, { connection: redis, prefix: REPORT_QUEUE.prefix });
  reports.on("error", (error) => {
    connectionError("report queue", error);
  });
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
  const lease = new DriftLease(redis, { holder: `${hostname()}/${randomUUID().slice(0, 8)}`, now });
  /** Checks one environment whose lease this agent holds, renewing the lease as it goes, and sends a report per repository. */
  const checkDrift = async (environment: string): Promise<void> => {
    let found: Awaited<ReturnType<DriftChecker["checkEnvironment"]>>;
    try {
      found = await drift.checkEnvironment(environment, { stillHeld: () => lease.hold(environment) });
    } catch (error) {
      log("error", "drift check failed", { environment, error: errorMessage(error) });
      return;
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
  };
  /** One drift check of an environment at a time, whether the poll or a watch asked for it. */
  const checking = new Map<string, Promise<void>>();
  const checkInTurn = (environment: string): Promise<void> => {
    // A check that failed (its report not queued) does not hold up the next one; its caller saw the failure.
    const run = (checking.get(environment) ?? Promise.resolve()).catch(() => undefined).then(() => checkDrift(environment));
    checking.set(environment, run);
    return run;
  };
  // Watches see a hand edit within seconds; the poll below stays as the safety net (issue 28).
  const watcher =
    settings.driftIntervalMs > 0 && settings.driftWatch
      ? new DriftWatcher({
          cluster,
          sleep,
          log,
          onChange: (environment, reason) => {
            void (async () => {
              if (stopped || !(await lease.hold(environment))) return;
              log("info", "drift watch saw a change: checking", { environment, ...reason });
              await checkInTurn(environment);
            })().catch((error: unknown) => {
              log("error", "drift check failed", { environment, error: errorMessage(error) });
            });
          },
        })
      : undefined;
  /** The applied generation each followed environment's watches were set up for. */
  const followed = new Map<string, string>();
  /**
   * Points the watches of `environment` at what its inventories record now, when this agent holds
   * its lease and a deploy was remembered since; stops them when another replica holds it.
   */
  const follow = async (environment: string, held: boolean): Promise<void> => {
    if (!watcher) return;
    if (!held) {
      if (followed.delete(environment)) watcher.follow(environment, []);
      return;
    }
    const generation = (await redis.get(appliedGenerationKey(environment))) ?? "";
    if (followed.get(environment) === generation) return;
    watcher.follow(environment, await drift.inventoried(environment));
    followed.set(environment, generation);
    log("info", "drift watches follow the inventory", {
      environment,
      watches: watcher.watches.filter((key) => key.startsWith(`${environment}|`)).length,
    });
  };
  // Jittered by up to a tenth either way, so agents of other clusters do not check in step.
  const nextDue = (): number => now() + settings.driftIntervalMs * (0.9 + random() * 0.2);
  /**
   * One turn: takes or renews each environment's lease, and checks those it holds whose check is
   * due (the due time is kept in Redis, so a replica that takes over keeps the pace). Returns how
   * long to wait before the next turn.
   */
  const driftTurn = async (): Promise<number> => {
    let wait = DRIFT_LEASE_RENEW_MS;
    for (const environment of settings.environments) {
      const held = !stopped && (await lease.hold(environment));
      await follow(environment, held).catch((error: unknown) => {
        log("error", "drift watch failed to follow the inventory", { environment, error: errorMessage(error) });
      });
      if (!held) continue;
      let due = await lease.dueAt(environment);
      // Redis is not trusted: a due time further off than one interval is not believed.
      if (due === undefined || due > now() + settings.driftIntervalMs * 1.1) {
        due = nextDue();
        await lease.setDueAt(environment, due);
      } else if (due <= now()) {
        await checkInTurn(environment);
        due = nextDue();
        await lease.setDueAt(environment, due);
      }
      wait = Math.min(wait, due - now());
    }
    return wait;
  };
  let stopped = false;
  const isStopped = (): boolean => stopped;
  let wake: () => void = () => undefined;
  const stopping = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const driftLoop = async (): Promise<void> => {
    while (!stopped) {
      let wait = DRIFT_LEASE_RENEW_MS;
      try {
        wait = await driftTurn();
      } catch (error) {
        log("error", "drift check failed", { error: errorMessage(error) });
      }
      await Promise.race([sleep(Math.max(wait, 0)), stopping]);
    }
  };
  let driftRun: Promise<void> = Promise.resolve();
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

  // Tells the app an agent is here to answer live previews (a hint; it decides nothing), and sets
  // again each deploy queue's one-job-at-a-time limit, which BullMQ keeps in Redis: a Redis emptied
  // or restored under running agents would otherwise let two replicas run two deploys at once.
  const beat = async (): Promise<void> => {
    await Promise.all([
      ...settings.environments.map((environment) => redis.set(agentHeartbeatKey(environment), String(now()), "EX", HEARTBEAT_TTL_SECONDS)),
      ...queues.map(({ queue }) => queue.setGlobalConcurrency(1)),
    ]);
  };
  let heartbeat: NodeJS.Timeout | undefined;
  let workersStarted = false;
  const started = (async (): Promise<void> => {
    await untilReady(redis, stopping);
    for (const environment of settings.environments) {
      const q = agentQueue(environment);
      const queue = new Queue(q.name, { connection: redis, prefix: q.prefix });
      queue.on("error", (error) => {
        connectionError("deploy queue", error);
      });
      queues.push({ environment, queue });
      await queue.setGlobalConcurrency(1);
      // `stop` may have been called while Redis answered: no worker is started after it.
      if (isStopped()) throw new Error("the agent was stopped before it started");
      // A job whose agent died is taken over once its lock lapses; a job that keeps killing its agent fails after five tries.
      const deploys = new Worker(q.name, processJob, {
        connection: redis,
        prefix: q.prefix,
        concurrency: 1,
        lockDuration: settings.lockMs,
        stalledInterval: settings.lockMs,
        maxStalledCount: 5,
      });
      const live = livePreviewQueue(environment);
      const previews = new Worker(live.name, processPreview, { connection: redis, prefix: live.prefix, concurrency: 2 });
      for (const worker of [deploys, previews]) {
        // BullMQ's own traces (a lost connection, a failed lock renewal) go through the agent's log, as JSON.
        worker.on("error", (error) => {
          connectionError("worker", error);
        });
        workers.push(worker);
      }
    }
    await beat();
    heartbeat = setInterval(
      () => {
        beat().catch((error: unknown) => {
          log("warn", "heartbeat failed", { error: errorMessage(error) });
        });
      },
      (HEARTBEAT_TTL_SECONDS * 1000) / 3,
    );
    workersStarted = true;
    if (settings.driftIntervalMs > 0) driftRun = driftLoop();
  })();
  // Whoever awaits `started` sees its failure; this only keeps an unobserved one from crashing the process.
  started.catch(() => undefined);
  // Tells the app, signed, what each environment has applied, at start and every few minutes, so
  // it can queue a deploy of a branch head the cluster is behind (a new cluster, an expired job).
  const status = announceStatus({
    cluster,
    namespace: settings.namespace,
    environments: settings.environments,
    now,
    log,
    send: async (body) => {
      await reports.add("status", seal("status", body, agentKey), {
        attempts: 3,
        backoff: { type: "exponential", delay: 1_000 },
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 24 * 3600 },
      });
    },
  });
  const redisAt = redisAddress(settings.redisUrl);
  serving.sources = {
    ready: () =>
      Promise.all([
        redisReadiness(redis, redisAt, redisProblem),
        checkWithin("kubernetes", 5_000, async () => {
          await cluster.version();
          return undefined;
        }),
        workersStarted || stopped
          ? workersReady(stopped, workers)
          : Promise.resolve<ReadinessCheck>({ name: "queues", problem: "starting: waiting for Redis" }),
      ]),
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
  };
  const address = probeServer.address();
  let stopRun: Promise<StopOutcome> | undefined;
  /** What a stop waits for: the drift check, the status, and the job in progress. */
  const finishWork = async (): Promise<void> => {
    await watcher?.stop();
    await driftRun;
    await Promise.allSettled(checking.values());
    await status.stop();
    await started.catch(() => undefined);
    await Promise.all(workers.map((w) => w.pause()));
  };
  /** Closes the connections, clearing the heartbeat and giving the leases up on the way (which needs Redis). */
  const close = async (): Promise<void> => {
    // The jobs are done: forcing only skips waiting for them again, and drops the blocking connections.
    await Promise.all(workers.map((w) => w.close(true)));
    await Promise.all(settings.environments.map((environment) => redis.del(agentHeartbeatKey(environment))));
    await Promise.all(settings.environments.map((environment) => lease.release(environment)));
    await Promise.all([...queues.map((q) => q.queue), reports].map((q) => q.close()));
    await redis.quit();
  };
  /** Drops every connection without waiting for Redis, which may be gone: nothing here is awaited. */
  const drop = (): void => {
    for (const closing of [...workers.map((w) => w.close(true)), ...[...queues.map((q) => q.queue), reports].map((q) => q.close())])
      closing.catch(() => undefined);
    redis.disconnect();
  };
  return {
    probePort: typeof address === "object" && address ? address.port : settings.probePort,
    started,
    stop: () => {
      stopRun ??= (async (): Promise<StopOutcome> => {
        stopped = true;
        wake();
        // Ended now, so no watch starts a check while the rest stops; awaited with the work below.
        void watcher?.stop();
        clearInterval(heartbeat);
        const deadline = sleep(settings.stopTimeoutMs).then(() => "deadline" as const);
        const graceful = (async () => {
          if (!workersStarted) {
            // Redis never answered (or only just did): no job, drift check or heartbeat to finish or clear.
            void status.stop();
            drop();
            return "finished" as const;
          }
          await finishWork();
          await close();
          return "finished" as const;
        })();
        const outcome = await Promise.race([graceful, deadline]);
        if (outcome === "deadline") {
          log("warn", "stop deadline passed: dropping the connections", {
            stopTimeoutMs: settings.stopTimeoutMs,
            redis: redis.status,
          });
          drop();
        }
        cluster.close();
        await new Promise((resolve) => probeServer.close(resolve));
        return outcome;
      })();
      return stopRun;
    },
  };
}

/** Where a `REDIS_URL` points, for messages: `host:port`, or a cluster's seed nodes; never a password. */
function redisAddress(url: string): string {
  const target = parseRedisUrl(url);
  if (target.kind === "cluster") return target.nodes.map((n) => `${n.host}:${n.port}`).join(",");
  const parsed = new URL(target.url);
  return `${parsed.hostname}:${parsed.port || "6379"}`;
}

/** Resolves once `redis` is ready; rejects when `stopping` comes first. ioredis keeps retrying meanwhile. */
function untilReady(redis: RedisClient, stopping: Promise<void>): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const ready = (): void => {
      resolve();
    };
    redis.once("ready", ready);
    void stopping.then(() => {
      redis.off("ready", ready);
      reject(new Error("the agent was stopped before Redis answered"));
    });
  });
}

/** The `redis` readiness check: says where Redis is and what the last connection error was while it cannot be reached. */
function redisReadiness(redis: RedisClient, at: string, problem: { last?: string }): Promise<ReadinessCheck> {
  return checkWithin("redis", 2_000, async () => {
    if (redis.status !== "ready")
      return `Redis unreachable at ${at} (connection ${redis.status}${problem.last ? `: ${problem.last}` : ""}); retrying`;
    await redis.ping();
    return undefined;
  });
}

/**
 * Logs connection errors of Redis clients, queues and workers through the agent's log: each
 * distinct error once a minute at most, since every client retries every few seconds while
 * Redis is gone.
 */
function connectionErrorLog(log: AgentLog, now: () => number): (source: string, error: unknown) => void {
  const filter = repeatFilter(now, CONNECTION_ERROR_LOG_MS);
  return (source, error) => {
    const message = errorMessage(error);
    const verdict = filter(message);
    if (verdict.log)
      log("warn", "redis connection error", { source, error: message, ...(verdict.repeated ? { repeated: verdict.repeated } : {}) });
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
