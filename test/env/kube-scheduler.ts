import { startKubeComponent } from "./kube-component.ts";
import type { ManagedProcess } from "./managed-process.ts";

/** Starts kube-scheduler against the test apiserver, so that pods of Deployments land on the test node. */
export function startScheduler(binary: string, kubeconfigPath: string, workDir: string): Promise<ManagedProcess> {
  return startKubeComponent("kube-scheduler", binary, { kubeconfigPath, dir: workDir, logName: "kube-scheduler", args: [] });
}
