import { startKubeComponent } from "./kube-component.ts";
import type { ManagedProcess } from "./managed-process.ts";

/**
 * Starts a second kube-controller-manager that runs only the node lifecycle controller. The
 * apiserver's TaintNodesByCondition admission gives every new Node the
 * `node.kubernetes.io/not-ready:NoSchedule` taint and this controller is what lifts it once the
 * kubelet reports Ready (and taints, then evicts, when the node stops reporting). The environment's
 * main controller manager leaves it off because it has no nodes.
 */
export function startNodeLifecycleController(binary: string, kubeconfigPath: string, dir: string): Promise<ManagedProcess> {
  return startKubeComponent("kube-controller-manager (nodelifecycle)", binary, {
    kubeconfigPath,
    dir,
    logName: "kube-controller-manager-nodelifecycle",
    args: ["--use-service-account-credentials=false", "--controllers=nodelifecycle"],
  });
}
