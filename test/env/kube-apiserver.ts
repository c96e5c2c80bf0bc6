import { request } from "node:https";
import { join } from "node:path";
import { SERVICE_CLUSTER_IP_RANGE, type TestPki } from "./certs.ts";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { choosePort } from "./ports.ts";

/** A running kube-apiserver. */
export interface KubeApiServer {
  url: string;
  process: ManagedProcess;
}

/** GETs `path` with the admin client certificate; resolves with the status code. */
export function getStatus(url: string, path: string, pki: TestPki): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { ca: pki.pem.ca, cert: pki.pem.clientCert, key: pki.pem.clientKey, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.end();
  });
}

/**
 * Starts kube-apiserver the way envtest does: secure serving on loopback with generated
 * certificates, RBAC, a service-account signing key, client certificates trusted from the test
 * CA; then waits for /readyz.
 */
export async function startKubeApiServer(
  binary: string,
  etcdUrl: string,
  pki: TestPki,
  workDir: string,
  port?: number,
  options: { serviceAccounts?: boolean } = {},
): Promise<KubeApiServer> {
  const securePort = await choosePort("kube-apiserver", port);
  const url = `https://127.0.0.1:${securePort}`;
  const process = await ManagedProcess.start(
    "kube-apiserver",
    binary,
    [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${securePort}`,
      `--cert-dir=${workDir}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      "--authorization-mode=RBAC",
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      "--allow-privileged=true",
      // For logs and exec on a test node (node.ts): the apiserver dials the kubelet at its
      // address, never by a host name (which would be resolved off this machine), as the admin.
      "--kubelet-preferred-address-types=InternalIP",
      `--kubelet-client-certificate=${pki.clientCert}`,
      `--kubelet-client-key=${pki.clientKey}`,
      // Pods that run (a test node) get their ServiceAccount's token; elsewhere pods never run, and
      // without the plugin a pod is not refused while its namespace's `default` account is made.
      ...(options.serviceAccounts ? [] : ["--disable-admission-plugins=ServiceAccount"]),
      "--enable-priority-and-fairness=false",
      "--profiling=false",
      "--v=0",
    ],
    join(workDir, "kube-apiserver.log"),
  );
  try {
    await waitUntil(process, "ready (/readyz)", 90_000, async () => (await getStatus(url, "/readyz", pki)) === 200);
  } catch (error) {
    await process.stop();
    throw error;
  }
  return { url, process };
}
