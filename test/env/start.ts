import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { ensureTools } from "./binaries.ts";
import { generatePki, kubeconfigYaml } from "./certs.ts";
import { checkDataDir, startEtcd } from "./etcd.ts";
import { startKubeApiServer } from "./kube-apiserver.ts";
import { startControllerManager } from "./kube-controller-manager.ts";
import type { ManagedProcess } from "./managed-process.ts";
import { startNode, type TestNode } from "./node.ts";
import { startRedis } from "./redis.ts";

/** A running test environment. */
export interface TestEnv {
  /** Path of a kubeconfig with cluster-admin rights. */
  kubeconfigPath: string;
  redisUrl: string;
  /** Whether Deployments and Jobs are reconciled by a real kube-controller-manager. */
  controllers: boolean;
  tools: { kustomize: string; helm: string };
  /** Versions of what runs, for reports. */
  versions: Record<string, string>;
  /** The node that runs pods, when `node: true` was asked for. */
  node?: TestNode;
  /** Stops everything this started and removes its files. Safe to call twice. */
  stop: () => Promise<void>;
}

/** Where to start the environment and which existing services to use instead. */
export interface StartOptions {
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Start kube-controller-manager too (default true). */
  controllers?: boolean;
  /** Start etcd and kube-apiserver at all (default true); benchmarks of the app need only Redis. */
  kubernetes?: boolean;
  /** Start a node too (containerd, kubelet, kube-scheduler; default false): pods really run. Needs root and Debian's containerd; see node.ts. */
  node?: boolean;
}

function port(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = env[name];
  if (value === undefined || value === "") return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65_535) throw new Error(`${name} must be a port number, got "${value}"`);
  return parsed;
}

/** Refuses a KUBECONFIG whose server is not on this machine unless SLUICE_TEST_ALLOW_REMOTE=1: tests create and delete objects. */
async function checkExistingKubeconfig(path: string, env: NodeJS.ProcessEnv): Promise<void> {
  const config = parse(await readFile(path, "utf8")) as {
    "current-context"?: string;
    contexts?: { name: string; context: { cluster: string } }[];
    clusters?: { name: string; cluster: { server: string } }[];
  };
  const context = config.contexts?.find((c) => c.name === config["current-context"]);
  const server = config.clusters?.find((c) => c.name === context?.context.cluster)?.cluster.server ?? "";
  const host = server ? new URL(server).hostname : "";
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host) && env.SLUICE_TEST_ALLOW_REMOTE !== "1") {
    throw new Error(
      `KUBECONFIG points at ${server || "no server"}; the tests create and delete objects, so only a local cluster is used. Set SLUICE_TEST_ALLOW_REMOTE=1 to use it anyway`,
    );
  }
}

/**
 * Starts etcd, kube-apiserver, kube-controller-manager and Redis on free loopback ports, or uses
 * what `KUBECONFIG` and `REDIS_URL` point at; builds or reuses kustomize and helm. On any failure
 * everything already started is stopped before the error is thrown.
 */
export async function startTestEnv(options: StartOptions): Promise<TestEnv> {
  const { env, log } = options;
  const wantKubernetes = options.kubernetes ?? true;
  const useKubeconfig = wantKubernetes ? env.KUBECONFIG : undefined;
  const useRedis = env.REDIS_URL;
  const wantControllers = options.controllers ?? true;
  const wantNode = options.node ?? false;
  if (wantNode && (useKubeconfig || !wantKubernetes)) {
    throw new Error(
      `node: true needs the test environment's own apiserver (its CA signs the kubelet's identity); unset KUBECONFIG (${useKubeconfig ?? "unset"}) and keep kubernetes: true`,
    );
  }
  const needed = ["kustomize", "helm"] as const;
  const control =
    useKubeconfig || !wantKubernetes
      ? []
      : wantControllers
        ? (["etcd", "kube-apiserver", "kube-controller-manager"] as const)
        : (["etcd", "kube-apiserver"] as const);
  const nodeTools = wantNode ? (["kubelet", "kube-scheduler", "kube-controller-manager", "pause"] as const) : [];
  const tools = await ensureTools([...new Set([...needed, ...control, ...nodeTools])], env, log);

  const workDir = env.SLUICE_TEST_ENV_DIR ?? (await mkdtemp(join(tmpdir(), "sluice-test-env-")));
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const started: ManagedProcess[] = [];
  const versions: Record<string, string> = {};
  let stopping: Promise<void> | undefined;
  let node: TestNode | undefined;
  // A second call (a test that stops the environment, then the suite's teardown) waits for the first.
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // The node deletes its pods through the apiserver, so it goes first.
      await node?.stop();
      for (const process of started.reverse()) await process.stop();
      if (!env.SLUICE_TEST_ENV_DIR) await rm(workDir, { recursive: true, force: true });
    })());
  try {
    let kubeconfigPath = "";
    let controllers = false;
    if (!wantKubernetes) {
      log("test-env: no Kubernetes requested");
    } else if (useKubeconfig) {
      await checkExistingKubeconfig(useKubeconfig, env);
      kubeconfigPath = useKubeconfig;
      controllers = true;
      log(`test-env: using the cluster of KUBECONFIG=${useKubeconfig}`);
    } else {
      await checkDataDir(join(workDir, "etcd"));
      const pkiDir = join(workDir, "pki");
      await mkdir(pkiDir, { recursive: true, mode: 0o700 });
      const pki = await generatePki(pkiDir);
      const etcd = await startEtcd(tools.etcd, join(workDir, "etcd"), workDir, { client: port(env, "SLUICE_ETCD_PORT") });
      started.push(etcd.process);
      const apiserver = await startKubeApiServer(tools["kube-apiserver"], etcd.url, pki, workDir, port(env, "SLUICE_APISERVER_PORT"), {
        serviceAccounts: wantNode,
      });
      started.push(apiserver.process);
      kubeconfigPath = join(workDir, "kubeconfig");
      await writeFile(kubeconfigPath, kubeconfigYaml(apiserver.url, pki), { mode: 0o600 });
      if (wantControllers) {
        started.push(await startControllerManager(tools["kube-controller-manager"], kubeconfigPath, pki, workDir));
        controllers = true;
      }
      if (wantNode) {
        node = await startNode({
          dir: join(workDir, "node"),
          apiserverUrl: apiserver.url,
          adminKubeconfigPath: kubeconfigPath,
          pki,
          tools: {
            kubelet: tools.kubelet,
            "kube-scheduler": tools["kube-scheduler"],
            "kube-controller-manager": tools["kube-controller-manager"],
            pause: tools.pause,
          },
          env,
          log,
        });
      }
      log(`test-env: kube-apiserver ready at ${apiserver.url}, etcd at ${etcd.url}`);
    }
    let redisUrl: string;
    if (useRedis) {
      redisUrl = useRedis;
      log(`test-env: using the Redis of REDIS_URL`);
    } else {
      const redisDir = join(workDir, "redis");
      await mkdir(redisDir, { recursive: true, mode: 0o700 });
      const redis = await startRedis(redisDir, port(env, "SLUICE_REDIS_PORT"));
      started.push(redis.process);
      redisUrl = redis.url;
      log(`test-env: redis-server ready at ${redis.url}`);
    }
    for (const [name, path] of Object.entries(tools)) versions[name] = path.split("/").at(-2) ?? path;
    return {
      kubeconfigPath,
      redisUrl,
      controllers,
      tools: { kustomize: tools.kustomize, helm: tools.helm },
      versions,
      ...(node ? { node } : {}),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
