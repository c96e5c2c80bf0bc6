import { connect } from "node:net";
import { join } from "node:path";
import type { TestPki } from "./certs.ts";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { freePort } from "./ports.ts";

/**
 * Starts kube-controller-manager against the test apiserver so that Deployments, ReplicaSets,
 * Jobs and namespace deletion behave as in a real cluster (pods never run: there are no nodes).
 */
export async function startControllerManager(
  binary: string,
  kubeconfigPath: string,
  pki: TestPki,
  workDir: string,
): Promise<ManagedProcess> {
  const port = await freePort();
  const process = await ManagedProcess.start(
    "kube-controller-manager",
    binary,
    [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${workDir}`,
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
      "--use-service-account-credentials=false",
      "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ttl",
      "--v=0",
    ],
    join(workDir, "kube-controller-manager.log"),
  );
  try {
    // It listens once its informers are set up; controllers start right after.
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
