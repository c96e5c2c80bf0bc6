import type { TestPki } from "./certs.ts";
import { startKubeComponent } from "./kube-component.ts";
import type { ManagedProcess } from "./managed-process.ts";

/**
 * Starts kube-controller-manager against the test apiserver so that Deployments, ReplicaSets,
 * Jobs and namespace deletion behave as in a real cluster (pods never run: there are no nodes).
 */
export function startControllerManager(binary: string, kubeconfigPath: string, pki: TestPki, workDir: string): Promise<ManagedProcess> {
  return startKubeComponent("kube-controller-manager", binary, {
    kubeconfigPath,
    dir: workDir,
    logName: "kube-controller-manager",
    args: [
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
      "--use-service-account-credentials=false",
      "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ttl",
    ],
  });
}
