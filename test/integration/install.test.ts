import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { cp, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { parser as promqlParser } from "@prometheus-io/lezer-promql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { appImage } from "../env/app-image.ts";
import type { PodForward } from "../env/pod-network.ts";
import { startTestEnv, type TestEnv } from "../env/start.ts";
import { deliverWebhook, WEBHOOK_SECRET } from "../helpers/app-harness.ts";
import { tempDir, writeTree } from "../helpers/checkouts.ts";
import { expectFreshBuild } from "../helpers/e2e-stack.ts";
import { FakeGitHub, type FakeCheckRun } from "../helpers/fake-github.ts";
import { pullRequestPayload, pushPayload } from "../helpers/payloads.ts";

// What a platform team installs, on a real node: the image built from the Dockerfile, the
// Secrets made by README's commands, `kubectl apply -k deploy/app` and `deploy/agent` as shipped
// (only config.yaml edited, as README says), pods started by a kubelet under the restricted Pod
// Security Standard. GitHub is the fake, reached by the app's pods through the node's network;
// Redis is the test environment's. The environment is its own (its apiserver signs the node).

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const OWNER = "sluice-install";
const REPO = "shop";
const target = { owner: OWNER, repo: REPO, repoId: 9400, installation: 77 };
const NAMESPACE = "shop";

let testEnv: TestEnv;
let core: CoreV1Api;
let apps: AppsV1Api;
let github: FakeGitHub;
let work: string;
let kubeconfig: string;
/** Milliseconds from the first `kubectl apply` to both Deployments Available. */
let applyToReady = 0;
let image: Awaited<ReturnType<typeof appImage>>;

/** The fenced `sh` block of README.md that contains `marker`, as written. */
async function readmeBlock(marker: string): Promise<string> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/^( *)```sh\n([\s\S]*?)^\1```$/gm)].map((m) =>
    (m[2] ?? "")
      .split("\n")
      .map((line) => line.slice(m[1]?.length ?? 0))
      .join("\n"),
  );
  const block = blocks.find((b) => b.includes(marker));
  if (!block) throw new Error(`README.md has no sh block with "${marker}"`);
  return block;
}

/** Runs shell commands as a user at a terminal in the working copy would, against the test cluster. */
async function sh(script: string): Promise<string> {
  const { stdout } = await run("bash", ["-euo", "pipefail", "-c", script], {
    cwd: work,
    env: { ...process.env, KUBECONFIG: kubeconfig },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run("kubectl", ["--kubeconfig", kubeconfig, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Sets keys of a ConfigMap manifest's `data`, as a user editing config.yaml would. */
async function editConfig(path: string, data: Record<string, string>): Promise<void> {
  const text = await readFile(path, "utf8");
  const config = parse(text) as { data: Record<string, string> };
  Object.assign(config.data, data);
  await writeFile(path, stringify(config));
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(check)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() > deadline)
      throw new Error(`${what} did not happen within ${String(timeoutMs / 1000)} s\n${await diagnostics()}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** What a person would look at when the install does not come up: pods, events, the last logs. */
async function diagnostics(): Promise<string> {
  const parts: string[] = [];
  for (const namespace of ["sluice", "sluice-system", NAMESPACE]) {
    parts.push(await kubectl("-n", namespace, "get", "pods,events", "-o", "wide").catch((e: unknown) => String(e)));
    const pods = await core.listNamespacedPod({ namespace }).catch(() => ({ items: [] as V1Pod[] }));
    for (const pod of pods.items.slice(0, 4)) {
      const name = pod.metadata?.name ?? "";
      parts.push(`--- ${namespace}/${name}\n${await kubectl("-n", namespace, "logs", name, "--tail=40").catch((e: unknown) => String(e))}`);
    }
  }
  return parts.join("\n");
}

async function readyPods(namespace: string, name: string): Promise<V1Pod[]> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/name=${name}` });
  return pods.items.filter(
    (p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
}

async function available(namespace: string, name: string, replicas = 2): Promise<true | undefined> {
  const live = await apps.readNamespacedDeployment({ name, namespace });
  return live.status?.readyReplicas === replicas && live.status.updatedReplicas === replicas ? true : undefined;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  return { status: response.status, body: await response.text() };
}

/** Delivers a webhook to one app pod as GitHub does (signed, over HTTP), and answers its status. */
async function deliver(pod: V1Pod, event: string, payload: unknown): Promise<number> {
  return (await deliverWebhook(`http://${pod.status?.podIP ?? ""}:3000`, event, payload)).status;
}

let nextSha = 1;
/**
 * A commit of the repository at `version`, in the shape GitOps repositories have: a kustomize
 * overlay per environment over a shared base (rendered by kustomize inside the app's pod): a
 * ConfigMap that says which version, and a Deployment that really runs on the node.
 */
async function commit(version: string): Promise<string> {
  const sha = createHash("sha1")
    .update(`install-${String(nextSha++)}`)
    .digest("hex");
  const dir = await tempDir("sluice-install-repo-");
  await writeTree(dir, {
    ".github/sluice.yml": `version: 1\nenvironments:\n  - name: production\n    path: envs/production\n    namespace: ${NAMESPACE}\n    prune: true\n`,
    "envs/production/kustomization.yaml":
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\n  - config.yaml\n",
    "envs/production/config.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`,
    "base/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - web.yaml\n",
    "base/web.yaml": stringify({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
            containers: [
              {
                name: "web",
                image: testEnv.node?.images.node.name ?? "",
                imagePullPolicy: "Never",
                command: ["node", "-e", "require('node:http').createServer((q, s) => s.end('ok')).listen(8080)"],
                readinessProbe: { httpGet: { path: "/", port: 8080 }, periodSeconds: 1 },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
              },
            ],
          },
        },
      },
    }),
  });
  await github.addCommit(OWNER, REPO, sha, dir);
  return sha;
}

const checkRun = (sha: string, name: string): FakeCheckRun | undefined =>
  [...github.checkRuns.values()].filter((r) => r.head_sha === sha && r.name === name).at(-1);
const commentOn = (number: number): string =>
  github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.body ?? "";

async function openPull(number: number, head: string): Promise<void> {
  const base = github.branch(OWNER, REPO, "main") ?? "";
  github.setPull(OWNER, REPO, {
    number,
    base: { sha: base, ref: "main" },
    head: { sha: head, ref: `feature-${String(number)}` },
    state: "open",
    draft: false,
    merged: false,
  });
  const [pod] = await readyPods("sluice", "sluice-app");
  if (!pod) throw new Error("no ready app pod");
  expect(await deliver(pod, "pull_request", pullRequestPayload(target, "opened", number, base, head, { author: "alice" }))).toBe(200);
}

// The first run on a machine builds the kubelet, the base images and the app image: minutes.
beforeAll(async () => {
  // README's commands run the built command line (`node bin/sluice.js keys generate`).
  await expectFreshBuild();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.KUBECONFIG;
  delete env.REDIS_URL;
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  testEnv = await startTestEnv({ env, node: true, log });
  const node = testEnv.node;
  if (!node) throw new Error("the test environment started no node");
  kubeconfig = testEnv.kubeconfigPath;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);

  image = await appImage(env, log);
  await node.containerd.ctr(["images", "import", image.path]);

  github = await new FakeGitHub().start();
  github.addRepo(OWNER, REPO, target.repoId);
  github.setInstallation(OWNER, REPO, target.installation);
  // Live previews are for authors who may deploy (commands.permission, write by default).
  github.setPermission(OWNER, REPO, "alice", "write");
  // The app's pods reach GitHub and Redis through the node's bridge; so do GitHub's own links.
  const githubForPods: PodForward = await node.exposeToPods({ host: "127.0.0.1", port: Number(new URL(github.url).port) });
  github.url = `http://${githubForPods.host}:${String(githubForPods.port)}`;
  const redis = new URL(testEnv.redisUrl);
  const redisForPods = await node.exposeToPods({ host: redis.hostname, port: Number(redis.port) });
  redisUrlForPods = `redis://${redisForPods.host}:${String(redisForPods.port)}`;

  // A working copy, as a user has one: the shipped deploy/, the command line, GitHub's files.
  work = await tempDir("sluice-install-");
  await cp(join(ROOT, "deploy"), join(work, "deploy"), { recursive: true });
  await symlink(join(ROOT, "bin"), join(work, "bin"));
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await writeFile(join(work, "app-private-key.pem"), privateKey.export({ type: "pkcs1", format: "pem" }), { mode: 0o600 });
  await writeFile(join(work, "webhook-secret.txt"), `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
}, 60 * 60_000);

let redisUrlForPods = "";

afterAll(async () => {
  // Undefined when beforeAll failed before starting them.
  await (github as FakeGitHub | undefined)?.stop();
  await (testEnv as TestEnv | undefined)?.stop();
}, 180_000);

describe("an install from README on a real node", () => {
  it("makes the keys and Secrets as README says, and `kubectl apply -k deploy/app` and `deploy/agent` reach Ready", async () => {
    // README: edit config.yaml (the app's: its id, Redis, public URL; here also the GitHub API
    // it talks to, the fake), the agent's (what it serves), and bind the agent in its namespace.
    await editConfig(join(work, "deploy/app/config.yaml"), {
      APP_ID: String(FakeGitHub.APP_ID),
      REDIS_URL: redisUrlForPods,
      SLUICE_PUBLIC_URL: "https://sluice.example.com",
      GITHUB_API_URL: github.url,
    });
    await editConfig(join(work, "deploy/agent/config.yaml"), {
      SLUICE_AGENT_ENVIRONMENTS: "production",
      SLUICE_AGENT_REPOSITORIES: `${OWNER}/${REPO}=${NAMESPACE}`,
    });
    const binding = join(work, "deploy/examples/agent-namespace/rolebinding.yaml");
    await writeFile(binding, (await readFile(binding, "utf8")).replace("namespace: team-a", `namespace: ${NAMESPACE}`));
    await kubectl("create", "namespace", NAMESPACE);
    await kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted");

    await sh(await readmeBlock("keys generate --out job-signing"));
    const started = performance.now();
    await sh(await readmeBlock("kubectl apply -k deploy/app"));
    // The one value a user replaces in the agent's commands: where its Redis is.
    const agentCommands = await readmeBlock("kubectl apply -k deploy/agent");
    expect(agentCommands).toContain("redis://redis.sluice.svc:6379");
    await sh(agentCommands.replaceAll("redis://redis.sluice.svc:6379", redisUrlForPods));
    await sh("kubectl apply -k deploy/examples/agent-namespace");

    await until("sluice-app Available with 2 ready replicas", 240_000, () => available("sluice", "sluice-app"));
    await until("sluice-agent Available with 2 ready replicas", 240_000, () => available("sluice-system", "sluice-agent"));
    applyToReady = performance.now() - started;
    process.stderr.write(
      `install: image ${image.name} ${String(Math.round(image.sizeBytes / 1e6))} MB; apply to both Deployments Ready ${(applyToReady / 1000).toFixed(1)} s\n`,
    );

    for (const namespace of ["sluice", "sluice-system"]) {
      const live = await core.readNamespace({ name: namespace });
      expect({ namespace, enforce: live.metadata?.labels?.["pod-security.kubernetes.io/enforce"] }).toEqual({
        namespace,
        enforce: "restricted",
      });
    }
    for (const pod of [...(await readyPods("sluice", "sluice-app")), ...(await readyPods("sluice-system", "sluice-agent"))]) {
      expect(pod.spec?.nodeName).toBe(testEnv.node?.name);
      expect(pod.status?.containerStatuses?.[0]?.image).toContain("ghcr.io/sluice-dev/sluice:");
      expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    }
  }, 600_000);

  it("deploys a merge through the agent in its pod, and the app's pod comments on a pull request and posts its checks", async () => {
    const a = await commit("A");
    github.setBranch(OWNER, REPO, "main", a);
    const [pod] = await readyPods("sluice", "sluice-app");
    if (!pod) throw new Error("no ready app pod");
    expect(await deliver(pod, "push", pushPayload(target, a))).toBe(200);

    await until("sluice/deploy (production) succeeded", 240_000, () =>
      checkRun(a, "sluice/deploy (production)")?.conclusion === "success" ? true : undefined,
    ).catch((error: unknown) => {
      throw new Error(
        `${String(error).slice(0, 200)}\nThe check runs of ${a}:\n${JSON.stringify(
          [...github.checkRuns.values()].filter((r) => r.head_sha === a),
          null,
          2,
        )}`,
      );
    });
    await until("the GitHub Deployment's status success", 60_000, () =>
      github.deploymentStatuses.some((s) => s.state === "success") ? true : undefined,
    );
    expect(await kubectl("-n", NAMESPACE, "get", "configmap", "web", "-o", "jsonpath={.data.version}")).toBe("A");
    await until("the deployed web Deployment available", 60_000, () => available(NAMESPACE, "web", 1));

    const b = await commit("B");
    await openPull(2, b);
    await until("the preview comment on #2", 180_000, () => (/version: "?B/.test(commentOn(2)) ? true : undefined));
    // What merging changes live, read by the agent in its pod from the cluster.
    await until("what merging changes live, in the comment on #2", 120_000, () =>
      commentOn(2).includes("1 object would change live") ? true : undefined,
    ).catch((error: unknown) => {
      throw new Error(`${String(error).slice(0, 200)}\nThe comment on #2:\n${commentOn(2)}`);
    });
    await until("sluice/preview succeeded", 60_000, () => (checkRun(b, "sluice/preview")?.conclusion === "success" ? true : undefined));
  }, 600_000);

  it("answers the probes, the metrics and every query of the Grafana dashboard from the pods", async () => {
    const expositions: string[] = [];
    for (const [namespace, name, port] of [
      ["sluice", "sluice-app", 3000],
      ["sluice-system", "sluice-agent", 8080],
    ] as const) {
      const pods = await readyPods(namespace, name);
      expect(pods).toHaveLength(2);
      for (const pod of pods) {
        const base = `http://${pod.status?.podIP ?? ""}:${String(port)}`;
        expect(await get(`${base}/healthz`)).toMatchObject({ status: 200 });
        const ready = await get(`${base}/readyz`);
        expect({ pod: pod.metadata?.name, status: ready.status }).toEqual({ pod: pod.metadata?.name, status: 200 });
        expect(ready.body).toContain("[+]redis ok");
        const metrics = await get(`${base}/metrics`);
        expect(metrics.status).toBe(200);
        expositions.push(metrics.body);
      }
    }
    // The kubelet has probed every pod every 10 s since it started: none of the answers that
    // passed is in the app's log (one that failed, while Redis was still connecting, is, on purpose).
    for (const pod of await readyPods("sluice", "sluice-app")) {
      const log = await kubectl("-n", "sluice", "logs", pod.metadata?.name ?? "");
      expect(log).toContain('"msg":"sluice app: listening');
      const passedProbes = log
        .split("\n")
        .filter((line) => /"url":"\/(healthz|readyz|metrics)"/.test(line) && /"res":\{"statusCode":2\d\d/.test(line));
      expect(passedProbes).toEqual([]);
    }
    const { families, samples } = readExpositions(expositions);
    const dashboard = JSON.parse(await readFile(join(ROOT, "deploy/grafana/sluice-dashboard.json"), "utf8")) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const unanswered: string[] = [];
    const answered: string[] = [];
    for (const panel of dashboard.panels)
      for (const { expr } of panel.targets ?? [])
        for (const selector of vectorSelectors(expr)) {
          const family = familyOf(selector.name, families);
          if (!family) unanswered.push(`${panel.title}: ${selector.text} (no such metric on the pods)`);
          else if (samples.some((s) => s.name === selector.name && selector.matchers.every((m) => m(s.labels))))
            answered.push(selector.name);
          else if (samples.some((s) => s.name === selector.name)) unanswered.push(`${panel.title}: ${selector.text} (no series matches)`);
        }
    expect(unanswered).toEqual([]);
    // What a working install has had by now: webhooks, queues, a deploy, its objects, drift, memory.
    for (const name of [
      "sluice_webhook_duration_seconds_bucket",
      "sluice_queue_jobs",
      "sluice_jobs_total",
      "sluice_agent_deploys_total",
      "sluice_agent_deploy_objects",
      "sluice_app_process_resident_memory_bytes",
      "sluice_agent_process_resident_memory_bytes",
    ])
      expect({ name, answered: answered.includes(name) }).toEqual({ name, answered: true });
  }, 600_000);
});

interface Sample {
  name: string;
  labels: Record<string, string>;
}

/** The metric families (`# TYPE` lines) and samples of Prometheus text expositions. */
function readExpositions(texts: string[]): { families: Map<string, string>; samples: Sample[] } {
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of texts.join("\n").split("\n")) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) families.set(type[1] ?? "", type[2] ?? "");
    if (line.startsWith("#") || !line.trim()) continue;
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
    if (!sample) continue;
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] ?? ""] = m[2] ?? "";
    samples.push({ name: sample[1] ?? "", labels });
  }
  return { families, samples };
}

/** The family a series name belongs to: itself, or a histogram's or summary's `_bucket`, `_count`, `_sum`. */
function familyOf(name: string, families: Map<string, string>): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|count|sum)$/, "");
  return ["histogram", "summary"].includes(families.get(base) ?? "") ? base : undefined;
}

/** Every vector selector of a PromQL expression (parsed by Prometheus's own grammar), with its label matchers. */
function vectorSelectors(expr: string): { text: string; name: string; matchers: ((labels: Record<string, string>) => boolean)[] }[] {
  const found: { text: string; name: string; matchers: ((labels: Record<string, string>) => boolean)[] }[] = [];
  promqlParser.parse(expr).iterate({
    enter: (node) => {
      if (node.type.name !== "VectorSelector") return;
      const text = expr.slice(node.from, node.to);
      const [, name = "", body = ""] = /^([a-zA-Z_:][\w:]*)\s*(?:\{(.*)\})?$/s.exec(text.trim()) ?? [];
      const matchers = [...body.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map(([, label = "", op, value = ""]) => {
        const anchored = new RegExp(`^(?:${value})$`);
        return (labels: Record<string, string>): boolean => {
          const actual = labels[label] ?? "";
          return op === "="
            ? actual === value
            : op === "!="
              ? actual !== value
              : op === "=~"
                ? anchored.test(actual)
                : !anchored.test(actual);
        };
      });
      found.push({ text, name, matchers });
      return false;
    },
  });
  return found;
}

describe("an install from README on a real node, disrupted", () => {
  it("loses no webhook when every app container is killed while a preview is in flight", async () => {
    const release = github.pause("repos/download-tarball-archive");
    const before = github.calls("repos/download-tarball-archive").length;
    const c = await commit("C");
    await openPull(3, c);
    try {
      await until("a render asked GitHub for the tarball", 60_000, () =>
        github.calls("repos/download-tarball-archive").length > before ? true : undefined,
      );
      // As the OOM killer would: SIGKILL, no shutdown.
      const pods = await readyPods("sluice", "sluice-app");
      expect(pods).toHaveLength(2);
      for (const pod of pods) {
        const id = (pod.status?.containerStatuses?.[0]?.containerID ?? "").replace(/^containerd:\/\//, "");
        await testEnv.node?.containerd.ctr(["tasks", "kill", "--signal", "SIGKILL", id]);
      }
      await until("both app containers restarted", 120_000, async () => {
        const live = await core.listNamespacedPod({ namespace: "sluice", labelSelector: "app.kubernetes.io/name=sluice-app" });
        return live.items.every((p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1) ? true : undefined;
      });
    } finally {
      release();
    }

    await until("the preview comment on #3 after the kill", 240_000, () => (/version: "?C/.test(commentOn(3)) ? true : undefined));
    await until("sluice/preview of #3 succeeded", 60_000, () =>
      checkRun(c, "sluice/preview")?.conclusion === "success" ? true : undefined,
    );
    await until("sluice-app Available again", 120_000, () => available("sluice", "sluice-app"));
  }, 600_000);

  it("keeps one replica of each through a node drain: the PodDisruptionBudgets hold", async () => {
    const node = testEnv.node?.name ?? "";
    const drained = await run(
      "kubectl",
      ["--kubeconfig", kubeconfig, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=40s"],
      { maxBuffer: 16 * 1024 * 1024 },
    ).then(
      () => ({ failed: false, output: "" }),
      (error: unknown) => ({
        failed: true,
        output: `${(error as { stdout?: string }).stdout ?? ""}${(error as { stderr?: string }).stderr ?? ""}`,
      }),
    );

    // One replica of each was evicted; the other would leave none available, so the drain waits on it.
    expect(drained.failed).toBe(true);
    expect(drained.output).toMatch(/Cannot evict pod as it would violate the pod's disruption budget/);
    expect(drained.output).toMatch(/pod\/sluice-app-\S+ evicted/);
    expect(drained.output).toMatch(/pod\/sluice-agent-\S+ evicted/);
    expect(await readyPods("sluice", "sluice-app")).toHaveLength(1);
    expect(await readyPods("sluice-system", "sluice-agent")).toHaveLength(1);
    const [app] = await readyPods("sluice", "sluice-app");
    expect(await get(`http://${app?.status?.podIP ?? ""}:3000/readyz`)).toMatchObject({ status: 200 });

    await kubectl("uncordon", node);
    await until("sluice-app back to 2 ready replicas", 180_000, () => available("sluice", "sluice-app"));
    await until("sluice-agent back to 2 ready replicas", 180_000, () => available("sluice-system", "sluice-agent"));
  }, 600_000);
});
