import { connect } from "node:net";
import { join } from "node:path";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { freePort } from "./ports.ts";

/** Starts kube-scheduler against the test apiserver, so that pods of Deployments land on the test node. */
export async function startScheduler(binary: string, kubeconfigPath: string, workDir: string): Promise<ManagedProcess> {
  const port = await freePort();
  const process = await ManagedProcess.start(
    "kube-scheduler",
    binary,
    [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${workDir}`,
      "--v=0",
    ],
    join(workDir, "kube-scheduler.log"),
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
