import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { ensureTools } from "./binaries.ts";
import { nodeBaseImage, pauseImage } from "./image.ts";
import { startTestEnv, type TestEnv } from "./start.ts";

// `node test/env/node-smoke.ts`: proves this machine can run pods for the tests. Starts etcd,
// kube-apiserver, kube-controller-manager and a node (containerd, kubelet, kube-scheduler),
// waits for the Node to be Ready, runs `node -e "console.log('ok')"` from the locally built base
// image in a namespace that enforces the restricted Pod Security Standard, reads its log through
// the apiserver, and prints how long each step took. Needs root; exits non-zero on any failure.

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const figures: [string, string][] = [];
async function timed<T>(what: string, work: () => Promise<T>, note: (value: T) => string = () => ""): Promise<T> {
  const started = performance.now();
  const value = await work();
  const ms = Math.round(performance.now() - started);
  const detail = note(value);
  figures.push([what, `${(ms / 1000).toFixed(1)} s${detail ? ` (${detail})` : ""}`]);
  log(`node-smoke: ${what}: ${ms} ms${detail ? ` (${detail})` : ""}`);
  return value;
}

// The node needs the environment's own apiserver; a shared one from .cache/test-env is not used.
const env: NodeJS.ProcessEnv = { ...process.env };
delete env.KUBECONFIG;
delete env.REDIS_URL;

let testEnv: TestEnv | undefined;
const stop = async (): Promise<void> => {
  const running = testEnv;
  testEnv = undefined;
  if (running) await timed("clean-up", () => running.stop());
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`node-smoke: ${signal}, cleaning up`);
    void stop().finally(() => process.exit(1));
  });
}

try {
  const tools = await timed(
    "node binaries (kubelet, kube-scheduler, pause)",
    () => ensureTools(["kubelet", "kube-scheduler", "pause"], env, log),
    (found) =>
      Object.values(found)
        .map((path) => path.split("/").at(-2) ?? path)
        .join(", "),
  );
  await timed(
    "images (pause, node base)",
    async () => [await pauseImage(tools.pause, env), await nodeBaseImage(env, {}, log)],
    (images) => images.map((i) => `${i.name} ${(i.bytes / 1e6).toFixed(0)} MB ${i.built ? "built" : "cached"}`).join(", "),
  );
  testEnv = await timed("control plane and node up to Node Ready", () => startTestEnv({ env, log, node: true }));
  const node = testEnv.node;
  if (!node) throw new Error("startTestEnv({ node: true }) returned no node");
  for (const [step, ms] of Object.entries(node.timings)) figures.push([`  node step ${step}`, `${(ms / 1000).toFixed(1)} s`]);

  const kc = new KubeConfig();
  kc.loadFromFile(testEnv.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `node-smoke-${node.name.slice(-6)}`;
  await core.createNamespace({
    body: { metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
  });
  const pod: V1Pod = {
    metadata: { name: "hello" },
    spec: {
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "node",
          image: node.images.node.name,
          imagePullPolicy: "Never",
          command: ["node", "-e", "console.log('ok')"],
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  };
  const finished = await timed(
    "pod created to Succeeded",
    async () => {
      await core.createNamespacedPod({ namespace, body: pod });
      const deadline = performance.now() + 120_000;
      for (;;) {
        const live = await core.readNamespacedPod({ name: "hello", namespace });
        const phase = live.status?.phase;
        if (phase === "Succeeded") return live;
        if (phase === "Failed" || performance.now() > deadline) {
          throw new Error(
            `pod ${namespace}/hello is ${phase ?? "without a phase"}${phase === "Failed" ? "" : " after 120 s"}: ${JSON.stringify(live.status, null, 2)}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    (live) => `on ${live.spec?.nodeName ?? "?"} at ${live.status?.podIP ?? "?"}`,
  );
  const output = await core.readNamespacedPodLog({ name: "hello", namespace, container: "node" });
  if (output.trim() !== "ok") throw new Error(`pod ${namespace}/hello printed ${JSON.stringify(output)}, expected "ok"`);
  const exitCode = finished.status?.containerStatuses?.[0]?.state?.terminated?.exitCode;
  log(`node-smoke: pod ${namespace}/hello printed "ok" and exited ${String(exitCode)} (log read through the apiserver from the kubelet)`);
  await stop();
  process.stdout.write(`node-smoke: OK\n${figures.map(([what, value]) => `  ${what.padEnd(48)} ${value}`).join("\n")}\n`);
} catch (error) {
  log(`node-smoke: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  await stop().catch((cleanupError: unknown) => {
    log(`node-smoke: clean-up failed too: ${String(cleanupError)}`);
  });
  process.exitCode = 1;
}
