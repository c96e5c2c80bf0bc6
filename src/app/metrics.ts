import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { agentReportSchema, driftReportSchema } from "../core/agent-protocol.ts";
import { phaseRow } from "../core/deploy-phases.ts";
import { fullName } from "../core/git-ref.ts";
import type { SignedKind } from "../core/signing.ts";
import type { AgentMessageObserver, Rejection } from "./agents/agent-keys.ts";

/** Seconds buckets from a tenth of a second to five minutes: webhooks, renders and previews all fit. */
const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The app's Prometheus metrics, in a registry of their own (served at `/metrics`). */
export class AppMetrics {
  readonly registry = new Registry();
  readonly webhooks = new Histogram({
    name: "sluice_webhook_duration_seconds",
    help: "Time to handle a webhook delivery, by event and outcome (handled, duplicate, failed).",
    labelNames: ["event", "outcome"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly jobs = new Counter({
    name: "sluice_jobs_total",
    help: "Jobs the app's workers finished, by queue and outcome (completed, failed).",
    labelNames: ["queue", "outcome"] as const,
    registers: [this.registry],
  });
  readonly renders = new Histogram({
    name: "sluice_render_duration_seconds",
    help: "Time to render one environment at one or two commits, by outcome (ok, failed).",
    labelNames: ["outcome"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly previews = new Histogram({
    name: "sluice_preview_duration_seconds",
    help: "Time from a preview job's start to its comment and check run, by outcome (ok, failed).",
    labelNames: ["outcome"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly deployReports = new Counter({
    name: "sluice_deploy_reports_total",
    help: "Signed deploy reports accepted from agents, by environment and phase.",
    labelNames: ["environment", "phase"] as const,
    registers: [this.registry],
  });
  readonly deployDuration = new Histogram({
    name: "sluice_deploy_duration_seconds",
    help: "How long finished deploys took on the agent, by environment and phase (succeeded, failed, rejected).",
    labelNames: ["environment", "phase"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly drifted = new Gauge({
    name: "sluice_drift_objects",
    help: "Objects drifted from the last deploy in the newest drift report, by environment and repository.",
    labelNames: ["environment", "repository"] as const,
    registers: [this.registry],
  });
  readonly driftReportTime = new Gauge({
    name: "sluice_drift_last_report_timestamp_seconds",
    help: "When the agents last checked an environment for drift (the newest drift report's time).",
    labelNames: ["environment"] as const,
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: "sluice_agent_messages_rejected_total",
    help: "Agent messages dropped, by kind and reason (signature, malformed, environment, repository, unknown, mismatch).",
    labelNames: ["kind", "reason"] as const,
    registers: [this.registry],
  });
  readonly redisMacFailures = new Counter({
    name: "sluice_redis_mac_failures_total",
    help: "Records read back from Redis whose MAC did not verify (written by something other than this app).",
    registers: [this.registry],
  });
  readonly rateLimit = new Gauge({
    name: "sluice_github_rate_limit_remaining",
    help: "GitHub's x-ratelimit-remaining on the newest response, by installation.",
    labelNames: ["installation"] as const,
    registers: [this.registry],
  });

  readonly githubRetries = new Counter({
    name: "sluice_github_retries_total",
    help: "GitHub requests tried again, by reason (rate_limit, secondary_rate_limit, server_error).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  constructor(options: { queueDepths?: () => Promise<{ queue: string; counts: Record<string, number> }[]> } = {}) {
    collectDefaultMetrics({ register: this.registry, prefix: "sluice_app_" });
    const depths = options.queueDepths;
    new Gauge({
      name: "sluice_queue_jobs",
      help: "Jobs in each queue the app uses, by queue and state (waiting, active, delayed, failed).",
      labelNames: ["queue", "state"] as const,
      registers: [this.registry],
      async collect() {
        if (!depths) return;
        this.reset();
        for (const { queue, counts } of await depths())
          for (const [state, count] of Object.entries(counts)) this.set({ queue, state }, count);
      },
    });
  }

  /** Counts what agents send: accepted deploy and drift reports feed their metrics, drops count by reason. */
  readonly agentMessages: AgentMessageObserver = {
    accepted: (kind: SignedKind, message: unknown) => {
      if (kind === "report") {
        const report = agentReportSchema.parse(message);
        this.deployReports.inc({ environment: report.environment, phase: report.phase });
        if (report.durationMs !== undefined && phaseRow(report.phase).timed)
          this.deployDuration.observe({ environment: report.environment, phase: report.phase }, report.durationMs / 1000);
      } else if (kind === "drift") {
        const report = driftReportSchema.parse(message);
        this.drifted.set({ environment: report.environment, repository: fullName(report.repository) }, report.drifted.length);
        this.driftReportTime.set({ environment: report.environment }, Date.parse(report.at) / 1000);
      }
    },
    rejected: (kind: SignedKind, reason: Rejection) => {
      this.rejected.inc({ kind, reason });
    },
  };

  /** Times `work` into `histogram` with outcome ok or failed, and passes on what it returns or throws. */
  static async timed<T>(histogram: Histogram<"outcome">, work: () => Promise<T>): Promise<T> {
    const end = histogram.startTimer();
    try {
      const result = await work();
      end({ outcome: "ok" });
      return result;
    } catch (error) {
      end({ outcome: "failed" });
      throw error;
    }
  }
}
