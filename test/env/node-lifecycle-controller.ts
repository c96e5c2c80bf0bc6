import { connect } from "node:net";
import { join } from "node:path";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { freePort } from "./ports.ts";

/**
 * Starts a second kube-controller-manager that runs only the node lifecycle controller. The
 * apiserver's TaintNodesByCondition admission gives every new Node the
 * `node.kubernetes.io/not-ready:NoSchedule` taint and this controller is what lifts it once the
 * kubelet reports Ready (and taints, then evicts, when the node stops reporting). The environment's
 * main controller manager leaves it off because it has no nodes.
 */
export async function startNodeLifecycleController(binary: string, kubeconfigPath: string, dir: string): Promise<ManagedProcess> {
  const port = await freePort();
  const process = await ManagedProcess.start(
    "kube-controller-manager (nodelifecycle)",
    binary,
    [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${dir}`,
      "--use-service-account-credentials=false",
      "--controllers=nodelifecycle",
      "--v=0",
    ],
    join(dir, "kube-controller-manager-nodelifecycle.log"),
  );
  try {
    await waitUntil(process, "listening", 60_000, () => portOpen(port));
  } catch (error) {
    await process.stop();
    throw error;
  }
  return process;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => {
      resolve(false);
    });
  });
}
