import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { openSync, closeSync } from "node:fs";
import { access, constants, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type V1Node } from "@kubernetes/client-node";
import { SERVICE_CLUSTER_IP_RANGE, type TestPki } from "./certs.ts";
import { runCommand } from "./command.ts";
import { type Containerd, startContainerd } from "./containerd.ts";
import { type ImageArchive, nodeBaseImage, pauseImage } from "./image.ts";
import { type Kubelet, startKubelet } from "./kubelet.ts";
import { startScheduler } from "./kube-scheduler.ts";
import { startNodeLifecycleController } from "./node-lifecycle-controller.ts";
import type { ManagedProcess } from "./managed-process.ts";
import { forwardTcp, type PodForward, routeKubernetesService } from "./pod-network.ts";

/** Where Debian's packages put what the node runs. */
const CNI_BIN_DIR = "/usr/lib/cni";
const CGROUP_V1 = "/sys/fs/cgroup";
const TEARDOWN = fileURLToPath(new URL("./node-teardown.sh", import.meta.url));
/** Kernel settings the kubelet changes on start (vm.overcommit_memory, kernel.panic, …) and the bridge may; put back on stop. */
const TUNABLES = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
  "net/ipv4/ip_forward",
];

/**
 * A node of the test cluster: containerd, a kubelet registered with the test apiserver,
 * kube-scheduler and the node lifecycle controller, and the images pods may use.
 */
export interface TestNode {
  /** The Node's name, also the kubelet's identity `system:node:<name>`. */
  name: string;
  /** The node's address: the bridge's own address. */
  ip: string;
  /** The pod network, a private /24 on a bridge of this machine only. */
  podSubnet: string;
  /** Images imported into containerd's CRI namespace (use them with `imagePullPolicy: Never`). */
  images: { node: ImageArchive; pause: ImageArchive };
  containerd: Containerd;
  kubelet: Kubelet;
  /**
   * Makes a service of this machine (listening on loopback) reachable from pods: a forwarder on
   * the bridge's address, closed when the node stops. Pods have no other way off the bridge.
   */
  exposeToPods: (target: { host: string; port: number }) => Promise<PodForward>;
  /** Milliseconds each step took, for reports (`ready`: from the kubelet's /healthz to the Node Ready and schedulable, scheduler and node controller included). */
  timings: Record<"images" | "containerd" | "import" | "kubelet" | "ready", number>;
  /** Deletes the node's pods, stops the kubelet, scheduler and containerd, and removes the bridge, cgroups and mounts. Safe to call twice. */
  stop: () => Promise<void>;
}

/** What the node joins and where it keeps its files. */
export interface NodeOptions {
  /** A directory of its own (it is created). */
  dir: string;
  apiserverUrl: string;
  /** A kubeconfig with cluster-admin rights (for the scheduler and for set-up and clean-up). */
  adminKubeconfigPath: string;
  pki: TestPki;
  tools: { kubelet: string; "kube-scheduler": string; "kube-controller-manager": string; pause: string };
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** An error that says what this machine lacks for a test node and how to get it. */
export class NodePrerequisiteError extends Error {
  constructor(what: string, fix: string) {
    super(`the test node cannot start: ${what}. ${fix}`);
    this.name = "NodePrerequisiteError";
  }
}

async function onPath(command: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  for (const dir of (env.PATH ?? "").split(":").filter(Boolean)) {
    if (
      await access(join(dir, command), constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

/** Checks root, cgroup v1 hierarchies, and Debian's containerd, runc, CNI plugins and debootstrap. */
export async function checkNodePrerequisites(env: NodeJS.ProcessEnv): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new NodePrerequisiteError(
      `it runs as uid ${String(process.getuid?.())}`,
      "containerd and the kubelet need root (namespaces, cgroups, mounts)",
    );
  }
  const packages = "apt-get install -y containerd runc containernetworking-plugins debootstrap iproute2 iptables";
  for (const command of ["containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "iptables", "debootstrap", "tar"]) {
    if (!(await onPath(command, env))) throw new NodePrerequisiteError(`${command} is not on PATH`, `Install it: ${packages}`);
  }
  for (const plugin of ["bridge", "host-local", "loopback"]) {
    const path = join(CNI_BIN_DIR, plugin);
    if (
      !(await access(path, constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      throw new NodePrerequisiteError(`the CNI plugin ${path} is missing`, `Install it: ${packages}`);
  }
  const controllers = await readdir(CGROUP_V1).catch((): string[] => []);
  for (const needed of ["cpu", "memory", "pids", "cpuset"]) {
    if (!controllers.includes(needed)) {
      throw new NodePrerequisiteError(
        `${CGROUP_V1}/${needed} is missing (found: ${controllers.join(", ") || "nothing"})`,
        "The node is set up for the cgroup v1 (hybrid) hierarchy these machines boot",
      );
    }
  }
}

/** A /24 in 10.213.0.0/16 that no interface or route of this machine uses yet. */
async function freePodSubnet(): Promise<{ subnet: string; gateway: string; third: number }> {
  const used = (await runCommand("ip", ["-4", "-o", "addr"])) + (await runCommand("ip", ["-4", "route"]));
  const start = randomBytes(1)[0] ?? 0;
  for (let i = 0; i < 256; i++) {
    const third = (start + i) % 256;
    if (!used.includes(`10.213.${third}.`)) return { subnet: `10.213.${third}.0/24`, gateway: `10.213.${third}.1`, third };
  }
  throw new Error("no free /24 in 10.213.0.0/16 for the test node's pod network (ip -4 addr and ip -4 route use them all)");
}

/**
 * The CNI network of the node: a bridge with host-local addresses, no masquerade, and one route
 * off the bridge: the Service range, to this machine (where only the `kubernetes` Service is
 * answered, see pod-network.ts). No default route: pods reach nothing else.
 */
export function cniConfig(bridge: string, subnet: string, gateway: string, ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "sluice-test",
      plugins: [
        {
          type: "bridge",
          bridge,
          isGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet, gateway }]],
            routes: [{ dst: SERVICE_CLUSTER_IP_RANGE, gw: gateway }],
            dataDir: ipamDir,
          },
        },
      ],
    },
    null,
    2,
  );
}

/** `<path> <value>` lines of the current kernel settings the node may change, for node-teardown.sh to put back. */
async function tunablesFile(): Promise<string> {
  let lines = "";
  for (const name of TUNABLES) {
    const value = await readFile(`/proc/sys/${name}`, "utf8").catch(() => undefined);
    if (value !== undefined) lines += `${name} ${value.trim()}\n`;
  }
  return lines;
}

/** Creates `/sys/fs/cgroup/<controller>/<name>` in every v1 hierarchy (the kubelet checks its cgroupRoot exists in each). */
async function createCgroupRoot(name: string): Promise<void> {
  for (const controller of await readdir(CGROUP_V1)) {
    if (controller === "unified") continue;
    const path = join(CGROUP_V1, controller, name);
    await mkdir(path, { recursive: true });
    if (controller === "cpuset") {
      // A new cpuset cgroup starts with no CPUs and no memory nodes; give it its parent's.
      for (const file of ["cpuset.cpus", "cpuset.mems"]) {
        await writeFile(join(path, file), await readFile(join(CGROUP_V1, controller, file), "utf8"));
      }
    }
  }
}

/**
 * Starts node-teardown.sh as a reaper in a process group of its own: it waits for its stdin to
 * close, then removes what the node made outside its directory. The stdin closes when `finish`
 * is called, and also when this process dies without stopping the node.
 */
function startReaper(env: Record<string, string>, logFile: string): { finish: () => Promise<void> } {
  const log = openSync(logFile, "a");
  const child = spawn("bash", [TEARDOWN, "--reaper"], { env: { ...process.env, ...env }, stdio: ["pipe", log, log], detached: true });
  closeSync(log);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      resolve();
    });
  });
  child.unref();
  return {
    finish: async () => {
      child.stdin?.end();
      await exited;
    },
  };
}

function ready(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/**
 * Starts a node for the test cluster at `apiserverUrl`: a private bridge and pod subnet, a cgroup
 * root of its own, the pause and Node base images (built once, cached), containerd with them
 * imported, a kubelet, kube-scheduler and the node lifecycle controller; resolves once the Node
 * is Ready and schedulable. Everything it creates is removed by `stop`, also when a step fails,
 * and by the reaper (node-teardown.sh) when this process dies first.
 */
export async function startNode(options: NodeOptions): Promise<TestNode> {
  const { dir, env, log } = options;
  await checkNodePrerequisites(env);
  const id = randomBytes(3).toString("hex");
  const name = `sluice-node-${id}`;
  const bridge = `slc${id}`;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const kc = new KubeConfig();
  kc.loadFromFile(options.adminKubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const timings = { images: 0, containerd: 0, import: 0, kubelet: 0, ready: 0 };
  const time = async <T>(step: keyof typeof timings, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      timings[step] = Math.round(performance.now() - started);
    }
  };

  const cleanups: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch((error: unknown) => {
          log(`test-node: clean-up step failed: ${error instanceof Error ? error.message : String(error)}`);
        });
      }
    })());

  try {
    // Whatever happens to this process from here on, the reaper removes the bridge, mounts,
    // network namespaces and cgroups and puts the kernel settings back (node-teardown.sh).
    const network = await freePodSubnet();
    const tunables = join(dir, "tunables");
    await writeFile(tunables, await tunablesFile());
    const reaper = startReaper(
      { NODE_DIR: dir, NODE_NAME: name, NODE_BRIDGE: bridge, NODE_SUBNET: `10.213.${network.third}.`, NODE_TUNABLES: tunables },
      join(dir, "node-teardown.log"),
    );
    cleanups.push(reaper.finish);

    await runCommand("ip", ["link", "add", "name", bridge, "type", "bridge"]);
    await runCommand("ip", ["addr", "add", `${network.gateway}/24`, "dev", bridge]);
    await runCommand("ip", ["link", "set", bridge, "up"]);
    // In-cluster clients (a ServiceAccount's token, KUBERNETES_SERVICE_HOST) reach the apiserver.
    const kubernetesService = await routeKubernetesService(bridge, network.gateway, options.apiserverUrl);
    cleanups.push(kubernetesService.close);
    const exposeToPods = async (target: { host: string; port: number }): Promise<PodForward> => {
      const forward = await forwardTcp(network.gateway, target);
      cleanups.push(forward.close);
      return forward;
    };
    const cgroupRoot = `/${name}`;
    await createCgroupRoot(name);

    const images = await time("images", async () => {
      const pause = await pauseImage(options.tools.pause, env);
      const node = await nodeBaseImage(env, {}, log);
      return { pause, node };
    });
    log(`test-node: images ${images.node.name} (${images.node.built ? "built" : "cached"}), ${images.pause.name}`);

    const cniConfDir = join(dir, "net.d");
    await mkdir(cniConfDir, { recursive: true });
    await writeFile(join(cniConfDir, "10-sluice-test.conflist"), cniConfig(bridge, network.subnet, network.gateway, join(dir, "cni-ipam")));

    const containerd = await time("containerd", () =>
      startContainerd("containerd", {
        dir: join(dir, "containerd"),
        sandboxImage: images.pause.name,
        cniConfDir,
        cniBinDir: CNI_BIN_DIR,
        ...(env.SLUICE_TEST_RUNC ? { runcBinary: env.SLUICE_TEST_RUNC } : {}),
      }),
    );
    cleanups.push(containerd.stop);
    await time("import", async () => {
      for (const image of [images.pause, images.node]) await containerd.ctr(["images", "import", image.path]);
    });

    // The apiserver authorizes with RBAC only (no Node authorizer), so the group of node
    // identities gets the bootstrap ClusterRole made for kubelets.
    const bindingName = `sluice-test-nodes-${id}`;
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: bindingName },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:node" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: `system:node:${name}` }],
      },
    });
    cleanups.push(async () => {
      await rbac.deleteClusterRoleBinding({ name: bindingName });
    });

    const kubeletDir = join(dir, "kubelet");
    const kubelet = await time("kubelet", () =>
      startKubelet(options.tools.kubelet, {
        dir: kubeletDir,
        nodeName: name,
        nodeIp: network.gateway,
        apiserverUrl: options.apiserverUrl,
        pki: options.pki,
        containerdSocket: containerd.socket,
        cgroupRoot,
      }),
    );
    const stoppables: ManagedProcess[] = [kubelet.process];
    cleanups.push(async () => {
      // The node is cordoned so that controllers' replacements stay Pending, and its pods are
      // deleted through the API so that the kubelet tears each down (containers, sandbox, network
      // namespace, cgroups) before it stops; what is left after 30 s is the reaper's.
      await core
        .patchNode({ name, body: { spec: { unschedulable: true } } }, setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch))
        .catch(() => undefined);
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline && !kubelet.process.exited) {
        const left = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` });
        if (left.items.length === 0) break;
        for (const pod of left.items) {
          if (pod.metadata?.deletionTimestamp) continue;
          await core
            .deleteNamespacedPod({ name: pod.metadata?.name ?? "", namespace: pod.metadata?.namespace ?? "", gracePeriodSeconds: 2 })
            .catch(() => undefined);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      for (const process of stoppables.reverse()) await process.stop();
      await core.deleteNode({ name }).catch(() => undefined);
    });
    await time("ready", async () => {
      stoppables.push(await startScheduler(options.tools["kube-scheduler"], options.adminKubeconfigPath, dir));
      stoppables.push(await startNodeLifecycleController(options.tools["kube-controller-manager"], options.adminKubeconfigPath, dir));
      const deadline = performance.now() + 120_000;
      for (;;) {
        if (kubelet.process.exited) throw await kubelet.process.exitError("waiting for the Node to be Ready");
        const node = await core.readNode({ name }).catch(() => undefined);
        // Schedulable too: the not-ready taint the apiserver put on the new Node is lifted.
        if (node && ready(node) && !(node.spec?.taints ?? []).some((t) => t.key === "node.kubernetes.io/not-ready")) return;
        if (performance.now() > deadline) {
          const conditions = (node?.status?.conditions ?? [])
            .map((c) => `${c.type}=${c.status} (${c.reason ?? ""}: ${c.message ?? ""})`)
            .join("; ");
          throw new Error(
            `Node ${name} was not Ready and untainted within 120 s (${conditions || "not registered"}; taints ${JSON.stringify(node?.spec?.taints ?? [])}); log ${kubelet.process.logFile}:\n${await kubelet.process.logTail()}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    });
    log(`test-node: ${name} Ready at ${network.gateway}, pods on ${network.subnet} (bridge ${bridge})`);
    return { name, ip: network.gateway, podSubnet: network.subnet, images, containerd, kubelet, exposeToPods, timings, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
