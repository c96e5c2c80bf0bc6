import { isRecord, metadataOf, recordOf, type KubeObject } from "./manifest.ts";

/** An object's health, after kstatus: done, still converging, or failed. */
export type Health = "current" | "in-progress" | "failed";

/** Health with the reason, for reports. */
export interface HealthStatus {
  status: Health;
  message: string;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

function conditions(object: KubeObject): Condition[] {
  const status = recordOf(object.status);
  return Array.isArray(status.conditions)
    ? (status.conditions as unknown[]).filter(isRecord).map((c) => ({
        type: String(c.type),
        status: String(c.status),
        ...(typeof c.reason === "string" ? { reason: c.reason } : {}),
        ...(typeof c.message === "string" ? { message: c.message } : {}),
      }))
    : [];
}

function num(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

/**
 * Computes an object's health from its live state, with kstatus's rules: a controller that has
 * not observed the latest generation is in progress; Deployments, StatefulSets, DaemonSets, Jobs,
 * PVCs and CRDs by their own status; anything else by the generic Ready and Stalled conditions;
 * and objects without status semantics are current.
 */
export function computeHealth(object: KubeObject): HealthStatus {
  const kind = String(object.kind);
  const status = recordOf(object.status);
  const spec = recordOf(object.spec);
  const metadata = metadataOf(object);
  const conds = conditions(object);
  const condition = (type: string) => conds.find((c) => c.type === type);
  if (typeof metadata.deletionTimestamp === "string") return { status: "in-progress", message: "being deleted" };
  const stalled = condition("Stalled");
  if (stalled?.status === "True") return { status: "failed", message: stalled.message ?? stalled.reason ?? "stalled" };
  if (typeof metadata.generation === "number" && "observedGeneration" in status && num(status.observedGeneration) < metadata.generation) {
    return {
      status: "in-progress",
      message: `generation ${metadata.generation} not observed yet (observed ${num(status.observedGeneration)})`,
    };
  }
  switch (kind) {
    case "Deployment": {
      const progressing = condition("Progressing");
      if (progressing?.reason === "ProgressDeadlineExceeded")
        return { status: "failed", message: progressing.message ?? "progress deadline exceeded" };
      if (!("observedGeneration" in status)) return { status: "in-progress", message: "not observed by the deployment controller yet" };
      const replicas = "replicas" in spec ? num(spec.replicas) : 1;
      if (num(status.updatedReplicas) < replicas)
        return { status: "in-progress", message: `${num(status.updatedReplicas)} of ${replicas} replicas updated` };
      if (num(status.replicas) > num(status.updatedReplicas))
        return { status: "in-progress", message: `${num(status.replicas) - num(status.updatedReplicas)} old replicas pending termination` };
      if (num(status.availableReplicas) < replicas)
        return { status: "in-progress", message: `${num(status.availableReplicas)} of ${replicas} replicas available` };
      return { status: "current", message: `${replicas} replicas available` };
    }
    case "StatefulSet": {
      if (!("observedGeneration" in status)) return { status: "in-progress", message: "not observed by the statefulset controller yet" };
      const replicas = "replicas" in spec ? num(spec.replicas) : 1;
      if (num(status.readyReplicas) < replicas)
        return { status: "in-progress", message: `${num(status.readyReplicas)} of ${replicas} replicas ready` };
      if (status.updateRevision !== undefined && status.currentRevision !== status.updateRevision)
        return { status: "in-progress", message: "rolling update in progress" };
      return { status: "current", message: `${replicas} replicas ready` };
    }
    case "DaemonSet": {
      if (!("observedGeneration" in status)) return { status: "in-progress", message: "not observed by the daemonset controller yet" };
      const desired = num(status.desiredNumberScheduled);
      if (num(status.updatedNumberScheduled) < desired || num(status.numberAvailable) < desired)
        return { status: "in-progress", message: `${num(status.numberAvailable)} of ${desired} pods available` };
      return { status: "current", message: `${desired} pods available` };
    }
    case "Job": {
      if (spec.suspend === true) return { status: "current", message: "suspended" };
      if (condition("Failed")?.status === "True") return { status: "failed", message: condition("Failed")?.message ?? "job failed" };
      if (condition("Complete")?.status === "True") return { status: "current", message: "job complete" };
      return { status: "in-progress", message: `${num(status.succeeded)} succeeded, ${num(status.active)} active` };
    }
    case "PersistentVolumeClaim":
      return status.phase === "Bound"
        ? { status: "current", message: "bound" }
        : { status: "in-progress", message: `phase ${typeof status.phase === "string" ? status.phase : "Pending"}` };
    case "CustomResourceDefinition": {
      if (condition("NamesAccepted")?.status === "False")
        return { status: "failed", message: condition("NamesAccepted")?.message ?? "names not accepted" };
      return condition("Established")?.status === "True"
        ? { status: "current", message: "established" }
        : { status: "in-progress", message: "not established yet" };
    }
    case "Namespace":
      return status.phase === "Terminating" ? { status: "in-progress", message: "terminating" } : { status: "current", message: "active" };
    default: {
      const ready = condition("Ready");
      if (ready?.status === "True") return { status: "current", message: ready.message ?? "ready" };
      if (ready?.status === "False") return { status: "in-progress", message: ready.message ?? ready.reason ?? "not ready" };
      if (condition("Reconciling")?.status === "True") return { status: "in-progress", message: "reconciling" };
      return { status: "current", message: "no status to wait for" };
    }
  }
}
