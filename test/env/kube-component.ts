import { connect } from "node:net";
import { join } from "node:path";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { freePort } from "./ports.ts";

/**
 * Starts a Kubernetes control-plane component (kube-controller-manager, kube-scheduler) against
 * the test apiserver: authenticated and authorized through `kubeconfigPath`, no leader election,
 * its secure port on a free loopback port, and ready once that port listens. `args` are the
 * component's own flags; its log goes to `<dir>/<logName>.log`.
 */
export async function startKubeComponent(
  name: string,
  binary: string,
  options: { kubeconfigPath: string; dir: string; logName: string; args: readonly string[] },
): Promise<ManagedProcess> {
  const { kubeconfigPath, dir } = options;
  const port = await freePort();
  const process = await ManagedProcess.start(
    name,
    binary,
    [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${dir}`,
      ...options.args,
      "--v=0",
    ],
    join(dir, `${options.logName}.log`),
  );
  try {
    // It listens once its informers are set up; its controllers start right after.
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
