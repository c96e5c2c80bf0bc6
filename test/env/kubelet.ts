import { request } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { issue, type TestPki } from "./certs.ts";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { freePort } from "./ports.ts";

/** A running kubelet of the test node. */
export interface Kubelet {
  process: ManagedProcess;
  /** The kubelet's HTTPS port on the node IP (logs, exec; the apiserver dials it). */
  port: number;
  /** Its plain-HTTP /healthz port on 127.0.0.1. */
  healthzPort: number;
}

/** Who the kubelet is and what it talks to. */
export interface KubeletOptions {
  /** The directory for its root dir, certificates, configuration, pod logs and log file. */
  dir: string;
  nodeName: string;
  /** The node's address: the bridge's own address, so that nothing listens beyond this machine. */
  nodeIp: string;
  apiserverUrl: string;
  pki: TestPki;
  /** containerd's gRPC socket. */
  containerdSocket: string;
  /** The cgroup (cgroupfs path, existing in every v1 hierarchy) that holds `kubepods`. */
  cgroupRoot: string;
  /** Extra kubelet flags, for experiments. */
  extraArgs?: readonly string[];
}

/** The KubeletConfiguration of a test node; see startKubelet for why each setting is what it is. */
export function kubeletConfiguration(options: KubeletOptions, ports: { port: number; healthzPort: number }): Record<string, unknown> {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // These machines boot cgroup v1 (hybrid); from 1.35 the kubelet refuses it unless told (KEP-5573).
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupRoot: options.cgroupRoot,
    cgroupsPerQOS: true,
    containerRuntimeEndpoint: `unix://${options.containerdSocket}`,
    address: options.nodeIp,
    port: ports.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: ports.healthzPort,
    // The apiserver authenticates to the kubelet with the test CA's admin certificate; every
    // other caller must present a token or certificate the apiserver vouches for.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: options.pki.caCert },
    },
    authorization: { mode: "Webhook" },
    registerNode: true,
    podLogsDir: join(options.dir, "pod-logs"),
    volumePluginDir: join(options.dir, "volume-plugins"),
    // No resolver for pods: they have no route off the bridge anyway, and a pod that resolves a
    // name fails at once instead of waiting on the host's resolver.
    resolvConf: "",
    clusterDomain: "cluster.local",
    // Images are imported, never pulled: garbage-collecting one would lose it for good, and the
    // shared machine's disk use is not this node's business.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
    failSwapOn: false,
    // The kubelet's own default is -999, which needs CAP_SYS_RESOURCE (see containerd.ts).
    oomScoreAdj: 0,
    serializeImagePulls: false,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    maxPods: 110,
    nodeStatusUpdateFrequency: "2s",
    nodeStatusReportFrequency: "10s",
    syncFrequency: "5s",
    fileCheckFrequency: "5s",
  };
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/healthz", timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => {
      resolve(false);
    });
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/**
 * Starts the kubelet as node `nodeName`: a client certificate for `system:node:<name>` in
 * `system:nodes` signed by the test CA (the apiserver binds that group to `system:node`, see
 * node.ts), cgroupfs under `cgroupRoot`, the given containerd, ports chosen free, everything it
 * writes under `dir`. Resolves once its /healthz answers; the Node's Ready condition is the
 * caller's to wait for.
 */
export async function startKubelet(binary: string, options: KubeletOptions): Promise<Kubelet> {
  const { dir, nodeName } = options;
  const certDir = join(dir, "pki");
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  // issue() signs in the directory that holds the CA, so the node's certificate is made there.
  const pkiDir = dirname(options.pki.caCert);
  const certName = `kubelet-${nodeName}`;
  await issue(
    pkiDir,
    certName,
    `/O=system:nodes/CN=system:node:${nodeName}`,
    "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
  );
  const kubeconfigPath = join(dir, "kubeconfig");
  await writeFile(
    kubeconfigPath,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "sluice-test", cluster: { server: options.apiserverUrl, "certificate-authority": options.pki.caCert } }],
      users: [
        { name: nodeName, user: { "client-certificate": join(pkiDir, `${certName}.crt`), "client-key": join(pkiDir, `${certName}.key`) } },
      ],
      contexts: [{ name: "node", context: { cluster: "sluice-test", user: nodeName } }],
      "current-context": "node",
    }),
    { mode: 0o600 },
  );
  const ports = { port: await freePort(), healthzPort: await freePort() };
  const configPath = join(dir, "config.yaml");
  await writeFile(configPath, stringify(kubeletConfiguration(options, ports)));
  const process = await ManagedProcess.start(
    "kubelet",
    binary,
    [
      `--config=${configPath}`,
      `--kubeconfig=${kubeconfigPath}`,
      `--root-dir=${join(dir, "root")}`,
      `--cert-dir=${certDir}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${options.nodeIp}`,
      "--v=1",
      ...(options.extraArgs ?? []),
    ],
    join(dir, "kubelet.log"),
  );
  try {
    await waitUntil(process, "healthy (/healthz)", 60_000, () => healthy(ports.healthzPort));
  } catch (error) {
    await process.stop();
    throw error;
  }
  return { process, ...ports };
}
