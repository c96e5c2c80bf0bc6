import { agentStatusSchema, STATUS_INTERVAL_MS, type AgentStatus, type AppliedRevision } from "../core/agent-protocol.ts";
import { commitShaSchema } from "../core/git-ref.ts";
import { errorMessage } from "../core/errors.ts";
import { inventorySchema, type Inventory } from "../core/inventory.ts";
import { isRecord, type KubeObject } from "../core/manifest.ts";
import type { Cluster } from "./kube/cluster.ts";

/** What sending the agent's status needs. */
export interface StatusOptions {
  cluster: Cluster;
  /** The agent's namespace, where its inventory ConfigMaps live. */
  namespace: string;
  environments: readonly string[];
  /** The cluster of a fleet the agent serves its environments on, named in every status. */
  clusterName?: string | undefined;
  /** Signs and queues one status for the app. */
  send: (status: AgentStatus) => Promise<void>;
  now: () => number;
  log: (level: "info" | "warn" | "error", message: string, details: Record<string, unknown>) => void;
  /** How often the status is sent after the first; `STATUS_INTERVAL_MS` unless a test says otherwise, 0 for only at start. */
  intervalMs?: number;
}

/** The agent's status announcements; `stop` ends them, after the one being sent. */
export interface StatusAnnouncer {
  stop: () => Promise<void>;
}

/**
 * What the inventories in `configMaps` say each environment has applied: per repository its newest
 * revision and whether a rollback holds it. Inventories that do not parse, or that record no
 * revision yet (a first deploy accepted but not applied), are left out: the app then sees the
 * repository as not deployed.
 */
export function appliedRevisions(configMaps: readonly KubeObject[], environment: string): AppliedRevision[] {
  const applied: AppliedRevision[] = [];
  for (const configMap of configMaps) {
    const labels = isRecord(configMap.metadata) && isRecord(configMap.metadata.labels) ? configMap.metadata.labels : {};
    if (labels["sluice.dev/inventory"] !== "true") continue;
    const inventory = parseInventory(configMap);
    if (inventory?.environment !== environment) continue;
    const newest = inventory.revisions[0];
    if (!newest || !commitShaSchema.safeParse(newest.sha).success || !/^[^/\s]+\/[^/\s]+$/.test(inventory.repository)) continue;
    applied.push({
      repository: { id: inventory.repositoryId, fullName: inventory.repository },
      sha: newest.sha,
      jobId: newest.jobId,
      held: inventory.hold !== undefined,
    });
  }
  return applied;
}

function parseInventory(configMap: KubeObject): Inventory | undefined {
  const data = isRecord(configMap.data) ? configMap.data : {};
  if (typeof data.inventory !== "string") return undefined;
  try {
    const parsed = inventorySchema.safeParse(JSON.parse(data.inventory));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sends the agent's status for every environment it serves: once at start, then every
 * `intervalMs` (jittered, so replicas and agents do not send in step). A status that cannot be
 * read or sent is logged and tried again at the next turn: it only lets the app catch up sooner.
 */
export function announceStatus(options: StatusOptions): StatusAnnouncer {
  const { cluster, namespace, environments, send, now, log } = options;
  const intervalMs = options.intervalMs ?? STATUS_INTERVAL_MS;
  const announce = async (event: AgentStatus["event"]): Promise<void> => {
    try {
      const configMaps = await cluster.list("v1", "ConfigMap", namespace);
      for (const environment of environments) {
        const status = agentStatusSchema.parse({
          version: 1,
          environment,
          ...(options.clusterName === undefined ? {} : { cluster: options.clusterName }),
          event,
          repositories: appliedRevisions(configMaps, environment),
          at: new Date(now()).toISOString(),
        });
        await send(status);
      }
    } catch (error) {
      log("warn", "status not sent", { event, error: errorMessage(error) });
    }
  };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void>;
  const schedule = (): void => {
    if (stopped || intervalMs <= 0) return;
    timer = setTimeout(
      () => {
        running = announce("running").finally(schedule);
      },
      intervalMs * (0.9 + Math.random() * 0.2),
    );
  };
  running = announce("started").finally(schedule);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
