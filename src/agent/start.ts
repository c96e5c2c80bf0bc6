import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { hostname } from "node:os";
import { Queue, Worker, type Job } from "bullmq";
import { agentQueue, livePreviewQueue, REPORT_QUEUE, type AgentReport, type DriftReport, type LiveReport } from "../core/agent-protocol.ts";
import { errorMessage } from "../core/errors.ts";
import { checkWithin, workersReady, type ProbeSources, type ReadinessCheck } from "../core/probes.ts";
import { seal } from "../core/signing.ts";
import { connectRedis, type RedisClient } from "../redis/connection.ts";
import { connectionErrorLog, jsonLog, type AgentLog } from "./agent-log.ts";
import { Deployer } from "./deployer.ts";
import { deployProcessor } from "./deploy-worker.ts";
import { DriftChecker } from "./drift.ts";
import { DriftLease } from "./drift-lease.ts";
import { DriftLoop } from "./drift-loop.ts";
import { Heartbeat } from "./heartbeat.ts";
import { targetName } from "../core/fleet.ts";
import { InventoryStore } from "./inventory-store.ts";
import { Cluster } from "./kube/cluster.ts";
import { livePreviewProcessor } from "./live-preview-worker.ts";
import { AgentMetrics } from "./metrics.ts";
import { redisAddress, redisReadiness, serveProbes } from "./probe-server.ts";
import type { AgentSettings } from "./settings.ts";
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

/** What a test may inject; the system's clock, timers and randomness otherwise. */
export interface AgentOptions {
  now?: () => number;
  /** The waits between drift turns and the stop deadline (not a deploy's health waits, which run on real time). */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1), for the jitter of drift checks. */
  random?: () => number;
  log?: AgentLog;
}

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
  const runtime: Runtime = {
    now: options.now ?? Date.now,
    sleep: options.sleep ?? unrefSleep,
    random: options.random ?? Math.random,
    log: options.log ?? jsonLog,
  };
  // Read before anything connects (the keys were read with the settings): what is wrong stops the start, naming the setting.
  const cluster = Cluster.connect(settings.kubeconfig, { fieldManager: settings.fieldManager, qps: settings.qps });
  // The probe server comes first; its sources are set once the connections below exist.
  const serving: { sources: ProbeSources } = {
    sources: {
      ready: () => Promise.resolve([{ name: "redis", problem: "not connected yet" }]),
      metrics: () => Promise.resolve({ contentType: "text/plain; charset=utf-8", body: "" }),
    },
  };
  const probeServer = await openProbes(settings, serving, cluster);
  const parts = assemble(settings, runtime, cluster);
  const started = startWorkers(settings, parts);
  // Whoever awaits `started` sees its failure; this only keeps an unobserved one from crashing the process.
  started.catch(() => undefined);
  serving.sources = agentSources(settings, parts, cluster);
  const address = probeServer.address();
  let stopRun: Promise<StopOutcome> | undefined;
  return {
    probePort: typeof address === "object" && address ? address.port : settings.probePort,
    started,
    stop: () => (stopRun ??= stopAgent(settings, parts, { cluster, probeServer, started })),
  };
}

/** The clock, timers, randomness and log the agent runs on. */
interface Runtime {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  log: AgentLog;
}

/** The agent's connections and workers, and where its start and stop stand. */
interface AgentParts {
  runtime: Runtime;
  redis: RedisClient;
  redisProblem: { last?: string };
  connectionError: (source: string, error: unknown) => void;
  reports: Queue;
  queues: { environment: string; queue: Queue }[];
  workers: Worker[];
  metrics: AgentMetrics;
  driftLoop: DriftLoop;
  heartbeat: Heartbeat;
  status: { stop: () => Promise<void> };
  processors: { deploy: (job: Job) => Promise<void>; preview: (job: Job) => Promise<void> };
  state: { stopped: boolean; workersStarted: boolean };
  /** Resolves when a stop begins. */
  stopping: Promise<void>;
  wake: () => void;
}

/** Serves the probes from `serving`, whose sources change once the agent is connected. */
async function openProbes(settings: AgentSettings, serving: { sources: ProbeSources }, cluster: Cluster): Promise<Server> {
  try {
    return await serveProbes(
      settings.probeHost,
      settings.probePort,
      { ready: () => serving.sources.ready(), metrics: () => serving.sources.metrics() },
      settings.metricsToken,
    );
  } catch (error) {
    cluster.close();
    throw new Error(
      `the probe port ${settings.probeHost}:${settings.probePort} (SLUICE_AGENT_PROBE_PORT) cannot be served: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

/** Connects to Redis (ioredis retries until it answers) and builds what the agent runs; nothing is started yet. */
function assemble(settings: AgentSettings, runtime: Runtime, cluster: Cluster): AgentParts {
  const { now, log } = runtime;
  const redis = connectRedis(settings.redisUrl, settings.redisTls);
  const connectionError = connectionErrorLog(log, now);
  const redisProblem: { last?: string } = {};
  redis.on("error", (error: unknown) => {
    redisProblem.last = errorMessage(error);
    connectionError("redis", error);
  });
  const reports = new Queue(REPORT_QUEUE.name, { connection: redis, prefix: REPORT_QUEUE.prefix });
  reports.on("error", (error) => {
    connectionError("report queue", error);
  });
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
    await reports.add(kind, seal(kind, body, settings.signingKey), {
      attempts: 10,
      backoff: { type: "exponential", delay: 1_000 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
    metrics.sent(kind, body);
  };
  let wake: () => void = () => undefined;
  const stopping = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const heartbeat = new Heartbeat({
    redis,
    targets: settings.environments.map((e) => targetName(e, settings.cluster)),
    queues: () => queues.map((q) => q.queue),
    now,
    log,
  });
  return {
    runtime,
    redis,
    redisProblem,
    connectionError,
    reports,
    queues,
    workers: [],
    metrics,
    heartbeat,
    ...services(settings, runtime, { cluster, redis, reports, metrics, send }),
    state: { stopped: false, workersStarted: false },
    stopping,
    wake,
  };
}

/** What `services` builds on. */
interface Connected {
  cluster: Cluster;
  redis: RedisClient;
  reports: Queue;
  metrics: AgentMetrics;
  send: (kind: "report" | "live" | "drift", body: AgentReport | LiveReport | DriftReport) => Promise<void>;
}

/** The deploy and live preview workers' processors, the drift loop and the status announcements. */
function services(
  settings: AgentSettings,
  runtime: Runtime,
  connected: Connected,
): Pick<AgentParts, "driftLoop" | "status" | "processors"> {
  const { now, log } = runtime;
  const { cluster, redis, metrics, send } = connected;
  const policy = {
    rules: settings.rules,
    clusterKinds: settings.clusterKinds,
    allowAdoption: settings.allowAdoption,
    adoptUnmanaged: settings.adoptUnmanaged,
    allowPodSecurityLabels: settings.allowPodSecurityLabels,
    environments: settings.environments,
    maxJobAgeMs: settings.maxJobAgeMs,
    cluster: settings.cluster,
  };
  const inventories = new InventoryStore(cluster, settings.namespace);
  // What deploys, drift checks and live previews share: the cluster, its record, the keys and the policy.
  const shared = { redis, cluster, inventories, appKey: settings.appKeys, policy, concurrency: settings.concurrency };
  const deployer = new Deployer({
    ...shared,
    healthTimeoutMs: settings.healthTimeoutMs,
    clock: { now, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
  });
  const drift = new DriftChecker({ ...shared, now });
  const lease = new DriftLease(redis, { holder: `${hostname()}/${randomUUID().slice(0, 8)}`, now, cluster: settings.cluster });
  const driftLoop = new DriftLoop({
    ...runtime,
    redis,
    cluster,
    drift,
    lease,
    metrics,
    environments: settings.environments,
    intervalMs: settings.driftIntervalMs,
    watch: settings.driftWatch,
    watchStatus: settings.cluster !== undefined,
    send: (report) => send("drift", report),
  });
  const previews = {
    ...shared,
    now,
    baseline: (environment: string, repositoryId: number) => drift.appliedObjects(environment, repositoryId),
  };
  const processors = {
    deploy: deployProcessor({
      deployer,
      policy,
      now,
      appKey: settings.appKeys,
      metrics,
      log,
      remember: (job, envelope) => drift.remember(job, envelope),
      send: (report) => send("report", report),
    }),
    preview: livePreviewProcessor({ previews, metrics, log, send: (report) => send("live", report) }),
  };
  return { driftLoop, status: announced(settings, runtime, cluster, connected.reports), processors };
}

/**
 * Tells the app, signed, what each environment has applied, at start and every few minutes, so
 * it can queue a deploy of a branch head the cluster is behind (a new cluster, an expired job).
 */
function announced(settings: AgentSettings, runtime: Runtime, cluster: Cluster, reports: Queue): { stop: () => Promise<void> } {
  return announceStatus({
    cluster,
    namespace: settings.namespace,
    environments: settings.environments,
    clusterName: settings.cluster,
    now: runtime.now,
    log: runtime.log,
    send: async (body) => {
      await reports.add("status", seal("status", body, settings.signingKey), {
        attempts: 3,
        backoff: { type: "exponential", delay: 1_000 },
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 24 * 3600 },
      });
    },
  });
}

/** Once Redis answered: a deploy worker and a live preview worker per environment, the heartbeat and the drift loop. */
async function startWorkers(settings: AgentSettings, parts: AgentParts): Promise<void> {
  const { redis, state } = parts;
  await untilReady(redis, parts.stopping);
  for (const environment of settings.environments) {
    const q = agentQueue(targetName(environment, settings.cluster));
    const queue = new Queue(q.name, { connection: redis, prefix: q.prefix });
    queue.on("error", (error) => {
      parts.connectionError("deploy queue", error);
    });
    parts.queues.push({ environment, queue });
    await queue.setGlobalConcurrency(1);
    // `stop` may have been called while Redis answered: no worker is started after it.
    if (state.stopped) throw new Error("the agent was stopped before it started");
    // A job whose agent died is taken over once its lock lapses; a job that keeps killing its agent fails after five tries.
    const deploys = new Worker(q.name, parts.processors.deploy, {
      connection: redis,
      prefix: q.prefix,
      concurrency: 1,
      lockDuration: settings.lockMs,
      stalledInterval: settings.lockMs,
      maxStalledCount: 5,
    });
    const live = livePreviewQueue(targetName(environment, settings.cluster));
    const previews = new Worker(live.name, parts.processors.preview, { connection: redis, prefix: live.prefix, concurrency: 2 });
    for (const worker of [deploys, previews]) {
      // BullMQ's own traces (a lost connection, a failed lock renewal) go through the agent's log, as JSON.
      worker.on("error", (error) => {
        parts.connectionError("worker", error);
      });
      parts.workers.push(worker);
    }
  }
  await parts.heartbeat.start();
  state.workersStarted = true;
  parts.driftLoop.start();
}

/** What `/readyz` and `/metrics` answer once the agent is connected. */
function agentSources(settings: AgentSettings, parts: AgentParts, cluster: Cluster): ProbeSources {
  const redisAt = redisAddress(settings.redisUrl);
  const { state } = parts;
  return {
    ready: () =>
      Promise.all([
        redisReadiness(parts.redis, redisAt, parts.redisProblem),
        checkWithin("kubernetes", 5_000, async () => {
          await cluster.version();
          return undefined;
        }),
        state.workersStarted || state.stopped
          ? workersReady(state.stopped, parts.workers)
          : Promise.resolve<ReadinessCheck>({ name: "queues", problem: "starting: waiting for Redis" }),
      ]),
    metrics: async () => ({ contentType: parts.metrics.registry.contentType, body: await parts.metrics.registry.metrics() }),
  };
}

/**
 * Stops the agent: takes no more jobs, lets the work in progress finish unless `stopTimeoutMs`
 * passes first (then drops the connections), and closes the cluster and the probe server.
 */
async function stopAgent(
  settings: AgentSettings,
  parts: AgentParts,
  own: { cluster: Cluster; probeServer: Server; started: Promise<void> },
): Promise<StopOutcome> {
  parts.state.stopped = true;
  parts.wake();
  // Ended now, so no watch starts a check while the rest stops; awaited with the work below.
  parts.driftLoop.stop();
  parts.heartbeat.stop();
  const deadline = parts.runtime.sleep(settings.stopTimeoutMs).then(() => "deadline" as const);
  const graceful = (async () => {
    if (!parts.state.workersStarted) {
      // Redis never answered (or only just did): no job, drift check or heartbeat to finish or clear.
      void parts.status.stop();
      drop(parts);
      return "finished" as const;
    }
    await finishWork(parts, own.started);
    await close(parts);
    return "finished" as const;
  })();
  const outcome = await Promise.race([graceful, deadline]);
  if (outcome === "deadline") {
    parts.runtime.log("warn", "stop deadline passed: dropping the connections", {
      stopTimeoutMs: settings.stopTimeoutMs,
      redis: parts.redis.status,
    });
    drop(parts);
  }
  own.cluster.close();
  await new Promise((resolve) => own.probeServer.close(resolve));
  return outcome;
}

/** What a stop waits for: the drift checks, the status, and the job in progress. */
async function finishWork(parts: AgentParts, started: Promise<void>): Promise<void> {
  await parts.driftLoop.finished();
  await parts.status.stop();
  await started.catch(() => undefined);
  await Promise.all(parts.workers.map((w) => w.pause()));
}

/** Closes the connections, clearing the heartbeat and giving the leases up on the way (which needs Redis). */
async function close(parts: AgentParts): Promise<void> {
  // The jobs are done: forcing only skips waiting for them again, and drops the blocking connections.
  await Promise.all(parts.workers.map((w) => w.close(true)));
  await parts.heartbeat.clear();
  await parts.driftLoop.release();
  await Promise.all([...parts.queues.map((q) => q.queue), parts.reports].map((q) => q.close()));
  await parts.redis.quit();
}

/** Drops every connection without waiting for Redis, which may be gone: nothing here is awaited. */
function drop(parts: AgentParts): void {
  const queues = [...parts.queues.map((q) => q.queue), parts.reports];
  for (const closing of [...parts.workers.map((w) => w.close(true)), ...queues.map((q) => q.close())]) closing.catch(() => undefined);
  parts.redis.disconnect();
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
