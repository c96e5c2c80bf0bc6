import { isRecord } from "../../core/manifest.ts";
import type { Convergence } from "../deploy/convergence.ts";
import type { DeployReports } from "../deploy/deploy-reports.ts";
import type { DriftReports } from "../drift/drift-reports.ts";
import type { LivePreviews } from "../preview/live-previews.ts";
import type { Promotions } from "../promotion/promotions.ts";

/** Which service an agent's message is for: a live-preview answer, a drift report, an agent's status, or a deploy report. */
export type AgentReportKind = "live" | "drift" | "status" | "deploy";

/**
 * Agents send deploy reports and live-preview answers on one queue; the envelope's `kind` says
 * which (it is signed: the service that consumes the message verifies it). Anything else is read
 * as a deploy report, which drops what does not verify.
 */
export function agentReportKind(envelope: unknown): AgentReportKind {
  const kind = isRecord(envelope) ? envelope.kind : undefined;
  if (kind === "live" || kind === "drift" || kind === "status") return kind;
  return "deploy";
}

/** The services that consume the agents' messages; live previews and the deploy flow only when the app signs jobs. */
export interface AgentReportConsumers {
  live: LivePreviews | undefined;
  driftReports: DriftReports;
  convergence: Convergence | undefined;
  deployReports: DeployReports | undefined;
  /** Promotion reads each environment's drift: a drift breaks the soak of what it runs. */
  promotions: Promotions | undefined;
}

/**
 * The report queue's job: hands each message to the service it is for. A drift that changed is
 * shown on the comments of the open pull requests that preview its environment.
 */
export function agentReportJob(consumers: AgentReportConsumers): (envelope: unknown) => Promise<void> {
  return async (envelope) => {
    switch (agentReportKind(envelope)) {
      case "live":
        await consumers.live?.consume(envelope);
        return;
      case "drift": {
        const change = await consumers.driftReports.consume(envelope);
        if (!change) return;
        await consumers.live?.driftChanged(change);
        // One cluster's drift is its rollout's to read (a wave bakes without drift), not promotion's.
        if (change.cluster !== undefined) return;
        await consumers.promotions?.observed(change.deploy, change.environment, {
          kind: "drift",
          drifted: change.summary.objects.length > 0,
        });
        return;
      }
      case "status":
        await consumers.convergence?.consume(envelope);
        return;
      case "deploy":
        await consumers.deployReports?.consume(envelope);
    }
  };
}
