import { readdir, readFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { AppsV1Api, CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KUBERNETES_SERVICE_IP } from "../env/certs.ts";
import { runCommand } from "../env/command.ts";
import { startTestEnv, type TestEnv } from "../env/start.ts";

// The test environment's node (test/env/node.ts): containerd, a kubelet of the apiserver's
// release, kube-scheduler and the locally built images, so pods really run. The environment here
// is its own (the node's identity is signed by its apiserver's CA), not the run's shared one.

let testEnv: TestEnv;
let core: CoreV1Api;
let apps: AppsV1Api;
const namespace = "test-node";

/** A pod spec the restricted Pod Security Standard admits. */
function restrictedPod(
  image: string,
  command: string[],
  options: { container?: Partial<NonNullable<V1Pod["spec"]>["containers"][number]>; restartPolicy?: string } = {},
): NonNullable<V1Pod["spec"]> {
  return {
    ...(options.restartPolicy ? { restartPolicy: options.restartPolicy } : {}),
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
    containers: [
      {
        name: "node",
        image,
        imagePullPolicy: "Never",
        command,
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
        ...options.container,
      },
    ],
  };
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: "/", timeout: 5_000 }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      res.on("end", () => {
        resolve(body);
      });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`GET http://${host}:${port}/ timed out`)));
    req.end();
  });
}

// Building the kubelet and the base image the first time on a machine takes minutes.
beforeAll(async () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.KUBECONFIG;
  delete env.REDIS_URL;
  testEnv = await startTestEnv({
    env,
    node: true,
    log: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(testEnv.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } } });
  // ServiceAccount admission is on where pods run: a pod waits for its namespace's `default` account.
  await until("ServiceAccount default in test-node", 30_000, () =>
    core.readNamespacedServiceAccount({ name: "default", namespace }).catch(() => undefined),
  );
}, 20 * 60_000);

afterAll(async () => {
  await testEnv.stop();
});

describe("the test environment's node", () => {
  it("is a Ready, schedulable Node of the apiserver's release", async () => {
    const node = testEnv.node;
    expect(node).toBeDefined();
    const live = await core.readNode({ name: node?.name ?? "" });
    expect(live.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(live.spec?.taints ?? []).toEqual([]);
    expect(live.status?.nodeInfo?.kubeletVersion).toBe(testEnv.versions["kube-apiserver"]?.replace(/^kube-apiserver-/, ""));
    expect(live.status?.addresses).toContainEqual({ type: "InternalIP", address: node?.ip });
  });

  it("runs a pod from the locally built Node image under the restricted Pod Security Standard, its log read through the apiserver", async () => {
    const image = testEnv.node?.images.node.name ?? "";
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: "hello" }, spec: restrictedPod(image, ["node", "-e", "console.log('ok')"], { restartPolicy: "Never" }) },
    });

    const done = await until("pod hello finished", 60_000, async () => {
      const pod = await core.readNamespacedPod({ name: "hello", namespace });
      return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed" ? pod : undefined;
    });

    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect(await core.readNamespacedPodLog({ name: "hello", namespace, container: "node" })).toBe("ok\n");
  });

  it("schedules a Deployment's replicas, probes them, and they answer on the pod network", async () => {
    const image = testEnv.node?.images.node.name ?? "";
    const server = "require('node:http').createServer((q, s) => s.end('pong')).listen(8080)";
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: restrictedPod(image, ["node", "-e", server], {
              container: {
                ports: [{ containerPort: 8080 }],
                readinessProbe: { httpGet: { path: "/", port: 8080 }, periodSeconds: 1 },
              },
            }),
          },
        },
      },
    });

    await until("Deployment web available with 2 ready replicas", 90_000, async () => {
      const live = await apps.readNamespacedDeployment({ name: "web", namespace });
      return live.status?.readyReplicas === 2 ? live : undefined;
    });
    const pods = await core.listNamespacedPod({ namespace, labelSelector: "app=web" });

    expect(pods.items).toHaveLength(2);
    for (const pod of pods.items) {
      expect(pod.spec?.nodeName).toBe(testEnv.node?.name);
      expect(await httpGet(pod.status?.podIP ?? "", 8080)).toBe("pong");
    }
  });

  it("gives a pod its ServiceAccount token and the kubernetes Service, and a loopback service of this machine through exposeToPods", async () => {
    const node = testEnv.node;
    if (!node) throw new Error("no node");
    const host = createServer((_request, response) => response.end("from the host"));
    await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
    const forward = await node.exposeToPods({ host: "127.0.0.1", port: (host.address() as AddressInfo).port });
    const script = `
      const fs = require("node:fs"), https = require("node:https"), http = require("node:http");
      const dir = "/var/run/secrets/kubernetes.io/serviceaccount";
      const api = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, path: "/api",
        ca: fs.readFileSync(dir + "/ca.crt"), headers: { authorization: "Bearer " + fs.readFileSync(dir + "/token", "utf8") } };
      https.get(api, (r) => { let b = ""; r.on("data", (c) => b += c); r.on("end", () => {
        console.log("api " + r.statusCode + " " + JSON.parse(b).kind + " via " + api.host);
        http.get("http://${forward.host}:${String(forward.port)}/", (h) => { let t = ""; h.on("data", (c) => t += c); h.on("end", () => console.log("host " + t)); });
      }); });`;
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "in-cluster" },
        spec: Object.assign(restrictedPod(node.images.node.name, ["node", "-e", script], { restartPolicy: "Never" }), {
          automountServiceAccountToken: true,
        }),
      },
    });

    const done = await until("pod in-cluster finished", 60_000, async () => {
      const pod = await core.readNamespacedPod({ name: "in-cluster", namespace });
      return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed" ? pod : undefined;
    });
    const log = await core.readNamespacedPodLog({ name: "in-cluster", namespace, container: "node" });
    host.close();

    expect(log).toBe(`api 200 APIVersions via ${KUBERNETES_SERVICE_IP}\nhost from the host\n`);
    expect(done.status?.phase).toBe("Succeeded");
  });

  it("leaves no bridge, cgroup, mount or process behind when stopped", async () => {
    const node = testEnv.node;
    if (!node) throw new Error("no node");
    const bridge = `slc${node.name.slice(-6)}`;

    await testEnv.stop();

    expect(await runCommand("ip", ["-o", "link"])).not.toContain(bridge);
    expect(await runCommand("iptables", ["-t", "nat", "-S"])).not.toContain(bridge);
    const controllers = await readdir("/sys/fs/cgroup");
    for (const controller of controllers) expect(await readdir(`/sys/fs/cgroup/${controller}`)).not.toContain(node.name);
    expect(await readFile("/proc/self/mountinfo", "utf8")).not.toContain(
      node.containerd.socket.replace(/\/containerd\/containerd\.sock$/, ""),
    );
    expect(node.containerd.process.exited).toBe(true);
    expect(node.kubelet.process.exited).toBe(true);
    const shims = await runCommand("ps", ["-eo", "args"]);
    expect(shims).not.toContain(node.containerd.socket);
  }, 120_000);
});
