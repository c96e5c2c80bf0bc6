import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AgentReport, DriftReport, LiveReport } from "../core/agent-protocol.ts";
import { JOB_END_PHASES, type DeployPhase } from "../core/deploy-phases.ts";
import { fullName } from "../core/git-ref.ts";

const SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** The phases that end a job, from the phase table. */
const FINAL_PHASES = new Set<DeployPhase>(JOB_END_PHASES);

/** The agent's Prometheus metrics, in a registry of their own (served on its probe port at `/metrics`). */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly deploys = new Counter({
    name: "sluice_agent_deploys_total",
    help: "Deploy jobs the agent finished, by environment and phase (succeeded, failed, rejected, superseded, held).",
    labelNames: ["environment", "phase"] as const,
    registers: [this.registry],
  });
  readonly deployDuration = new Histogram({
    name: "sluice_agent_deploy_duration_seconds",
    help: "Time from taking a deploy job to its final report, by environment and phase.",
    labelNames: ["environment", "phase"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly deployObjects = new Gauge({
    name: "sluice_agent_deploy_objects",
    help: "Objects in the newest finished deploy, by environment.",
    labelNames: ["environment"] as const,
    registers: [this.registry],
  });
  readonly pruned = new Counter({
    name: "sluice_agent_pruned_objects_total",
    help: "Objects deleted by prune, by environment.",
    labelNames: ["environment"] as const,
    registers: [this.registry],
  });
  readonly rejectedJobs = new Counter({
    name: "sluice_agent_jobs_rejected_total",
    help: "Jobs and live-preview requests refused before anything ran (bad signature, stale, outside the policy), by queue.",
    labelNames: ["queue"] as const,
    registers: [this.registry],
  });
  readonly livePreviews = new Counter({
    name: "sluice_agent_live_previews_total",
    help: "Live previews answered, by environment and outcome (ok, failed).",
    labelNames: ["environment", "outcome"] as const,
    registers: [this.registry],
  });
  readonly drifted = new Gauge({
    name: "sluice_drift_objects",
    help: "Objects drifted from the last deploy at the newest drift check, by environment and repository.",
    labelNames: ["environment", "repository"] as const,
    registers: [this.registry],
  });
  readonly driftChecked = new Gauge({
    name: "sluice_drift_checked_objects",
    help: "Objects compared with the live cluster at the newest drift check, by environment and repository.",
    labelNames: ["environment", "repository"] as const,
    registers: [this.registry],
  });
  readonly healed = new Counter({
    name: "sluice_drift_healed_objects_total",
    help: "Drifted objects self-heal applied again, by environment.",
    labelNames: ["environment"] as const,
    registers: [this.registry],
  });
  readonly driftCheckTime = new Gauge({
    name: "sluice_drift_last_check_timestamp_seconds",
    help: "When the newest drift check of an environment finished.",
    labelNames: ["environment"] as const,
    registers: [this.registry],
  });

  constructor(options: { queueDepths?: () => Promise<{ environment: string; queue: string; counts: Record<string, number> }[]> } = {}) {
    collectDefaultMetrics({ register: this.registry, prefix: "sluice_agent_" });
    const depths = options.queueDepths;
    new Gauge({
      name: "sluice_agent_queue_jobs",
      help: "Jobs in the agent's queues, by environment, queue and state (waiting, active, delayed, failed).",
      labelNames: ["environment", "queue", "state"] as const,
      registers: [this.registry],
      async collect() {
        if (!depths) return;
        this.reset();
        for (const { environment, queue, counts } of await depths())
          for (const [state, count] of Object.entries(counts)) this.set({ environment, queue, state }, count);
      },
    });
  }

  /** Counts what the agent is about to send the app: every message passes here once. */
  sent(kind: "report" | "live" | "drift", body: AgentReport | LiveReport | DriftReport): void {
    if (kind === "report") this.#report(body as AgentReport);
    else if (kind === "live") {
      const answer = body as LiveReport;
      this.livePreviews.inc({ environment: answer.environment, outcome: answer.error === undefined ? "ok" : "failed" });
    } else {
      const drift = body as DriftReport;
      const labels = { environment: drift.environment, repository: fullName(drift.repository) };
      this.drifted.set(labels, drift.drifted.length);
      this.driftChecked.set(labels, drift.checked);
      this.healed.inc({ environment: drift.environment }, drift.healed.length);
    }
  }

  #report(report: AgentReport): void {
    if (!FINAL_PHASES.has(report.phase)) return;
    const environment = report.environment;
    this.deploys.inc({ environment, phase: report.phase });
    if (report.durationMs !== undefined) this.deployDuration.observe({ environment, phase: report.phase }, report.durationMs / 1000);
    if (report.phase !== "succeeded") return;
    const objects = report.objects ?? [];
    this.deployObjects.set({ environment }, objects.filter((o) => o.action !== "pruned").length);
    this.pruned.inc({ environment }, objects.filter((o) => o.action === "pruned").length);
  }
}
