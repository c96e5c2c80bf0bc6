import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { promisify } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { checkout } from "../helpers/checkouts.ts";
import { startStack, type Stack } from "../helpers/e2e-stack.ts";
import type { FakeCheckRun } from "../helpers/fake-github.ts";
import { pullRequestPayload, pushPayload } from "../helpers/payloads.ts";

// The live cluster on pull requests, end to end: `sluice app` and `sluice agent` as processes of
// their own, the real Redis and apiserver (with a ValidatingAdmissionPolicy), real kubectl for the
// hand edits, and GitHub faked over HTTP against its OpenAPI description. Each step builds on the
// one before, as a team's day would.

const run = promisify(execFile);
const OWNER = "sluice-live-e2e";
const REPO = "storefront";
const target = { owner: OWNER, repo: REPO, repoId: 9200, installation: 42 };
const suffix = randomUUID().slice(0, 6);
const ns = { production: `live-e2e-prod-${suffix}`, staging: `live-e2e-stg-${suffix}` };
type Env = keyof typeof ns;
const METRICS_TOKEN = "metrics-token-for-the-e2e-test";
const policyName = `no-latest-e2e-${suffix}`;

let stack: Stack | undefined;
let nextSha = 1;
const sha = (): string => createHash("sha1").update(`live-${suffix}-${nextSha++}`).digest("hex");
const shas: Record<string, string> = {};

const s = (): Stack => {
  if (!stack) throw new Error("the stack is not running");
  return stack;
};

const config = `version: 1
environments:
  - name: production
    path: envs/production
    namespace: ${ns.production}
    prune: true
  - name: staging
    path: envs/staging
    namespace: ${ns.staging}
    selfHeal: true
`;
/** The repository at a version: both environments have a labelled namespace and a ConfigMap that says which version. */
function files(version: string, extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = { ".github/sluice.yml": config };
  for (const env of ["production", "staging"] as const) {
    out[`envs/${env}/namespace.yaml`] =
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns[env]}\n  labels:\n    live-e2e: "${suffix}"\n`;
    out[`envs/${env}/config.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "${version}"\n`;
  }
  return { ...out, ...extra };
}

async function commit(name: string, content: Record<string, string>): Promise<string> {
  const id = sha();
  shas[name] = id;
  await s().github.addCommit(OWNER, REPO, id, await checkout(undefined, content));
  return id;
}

async function open(number: number, head: string): Promise<void> {
  const base = s().github.branch(OWNER, REPO, "main") ?? "";
  s().github.setPull(OWNER, REPO, {
    number,
    base: { sha: base, ref: "main" },
    head: { sha: head, ref: `feature-${number}` },
    state: "open",
    draft: false,
    merged: false,
  });
  await s().deliver("pull_request", pullRequestPayload(target, "opened", number, base, head, { author: "alice" }));
}

/** Pushes main to `id`, as a merge does, and waits until both environments deployed it. */
async function merge(id: string): Promise<void> {
  s().github.setBranch(OWNER, REPO, "main", id);
  await s().deliver("push", pushPayload(target, id));
  for (const env of ["production", "staging"] as const)
    await expect.poll(() => checkRun(id, `sluice/deploy (${env})`)?.conclusion, { timeout: 90_000, interval: 200 }).toBe("success");
}

const checkRun = (commit: string, name: string): FakeCheckRun | undefined =>
  [...s().github.checkRuns.values()].filter((r) => r.head_sha === commit && r.name === name).at(-1);
const commentOn = (number: number): string =>
  s().github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.body ?? "";

/** kubectl, as a person at a terminal would run it. */
async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run("kubectl", ["--kubeconfig", inject("kubeconfigPath"), ...args]);
  return stdout;
}
const liveVersion = async (env: Env): Promise<string> =>
  kubectl("get", "configmap", "web", "-n", ns[env], "-o", "jsonpath={.data.version}");

/** GETs `path` and returns the status and body. */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.text() };
}
/** The value of one series in a Prometheus text exposition, or undefined when it is not there. */
function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
const appMetrics = async (): Promise<string> => (await get(`${s().appUrl}/metrics`, { authorization: `Bearer ${METRICS_TOKEN}` })).body;
const agentMetrics = async (): Promise<string> => (await get(`${s().agentProbeUrl()}/metrics`)).body;

const policy: KubernetesObject[] = [
  {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: policyName },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [{ apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments"] }],
      },
      validations: [
        { expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))", message: "images must be pinned" },
      ],
    },
  } as KubernetesObject,
  {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: policyName },
    spec: {
      policyName,
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: { matchLabels: { "live-e2e": suffix } } },
    },
  } as KubernetesObject,
];

beforeAll(async () => {
  stack = await startStack({
    ...target,
    database: 10,
    environments: ["production", "staging"],
    namespaces: "live-e2e-*",
    agentNamespace: `sluice-live-e2e-${suffix}`,
    cleanup: Object.values(ns),
    app: { SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS: "3", SLUICE_METRICS_TOKEN: METRICS_TOKEN },
    agent: { SLUICE_DRIFT_INTERVAL_SECONDS: "2" },
  });
  stack.github.setPermission(OWNER, REPO, "alice", "write");
  for (const object of policy) await stack.kube.create(object);
});

afterAll(async () => {
  for (const object of [...policy].reverse()) await stack?.kube.delete(object).catch(() => undefined);
  await stack?.stop();
});

afterEach((context) => {
  expect(stack?.github.violations).toEqual([]);
  if (context.task.result?.state === "fail") console.error(stack?.output());
});

describe("the live cluster on pull requests, with the app and the agent as separate processes", { timeout: 240_000 }, () => {
  it("serves probes: the app is unready while GitHub refuses its credentials, and /metrics wants its token", async () => {
    s().github.refuseAppCredentials = true;
    const refused = await get(`${s().appUrl}/readyz`);
    expect(refused.status).toBe(503);
    expect(refused.body).toContain("[+]redis ok\n[+]queues ok\n[-]github failed: GitHub refused the app's credentials (401)");
    expect((await get(`${s().appUrl}/healthz`)).status).toBe(200);
    s().github.refuseAppCredentials = false;
    // A refusal is asked again after 10 s.
    await expect.poll(async () => (await get(`${s().appUrl}/readyz`)).status, { timeout: 30_000, interval: 1_000 }).toBe(200);
    expect((await get(`${s().appUrl}/metrics`)).status).toBe(401);
    expect((await get(`${s().appUrl}/metrics`, { authorization: "Bearer wrong-token-of-the-same-size!!" })).status).toBe(401);
    const agentReady = await get(`${s().agentProbeUrl()}/readyz`);
    expect([agentReady.status, agentReady.body]).toEqual([200, "[+]redis ok\n[+]kubernetes ok\n[+]queues ok\nready\n"]);
    // The agent's port serves probes and nothing else.
    expect((await get(`${s().agentProbeUrl()}/api/v1/namespaces`)).status).toBe(404);
  });

  it("deploys A to both environments, and drift checks find them in sync", async () => {
    await merge(await commit("A", files("A")));
    for (const env of ["production", "staging"] as const)
      await expect
        .poll(() => checkRun(shas.A ?? "", `sluice/drift (${env})`)?.output?.title, { timeout: 30_000, interval: 200 })
        .toBe("In sync");
    const metrics = await agentMetrics();
    expect(sample(metrics, 'sluice_agent_deploys_total{environment="production",phase="succeeded"}')).toBe(1);
    expect(sample(metrics, 'sluice_agent_deploy_objects{environment="production"}')).toBe(2);
    expect(sample(metrics, `sluice_drift_objects{environment="production",repository="${OWNER}/${REPO}"}`)).toBe(0);
  });

  it("comments the git diff and what merging changes live in one comment, then deploys the merge", async () => {
    await open(2, await commit("B", files("B")));
    for (const env of ["production", "staging"] as const)
      await expect
        .poll(() => commentOn(2), { timeout: 60_000, interval: 200 })
        .toContain(`**\`${env}\`**: 1 object would change live, 0 would be pruned, 0 would be refused (1 unchanged).`);
    const body = commentOn(2);
    // The git diff and the live diff, in the same comment.
    expect(body.match(/- {2}version: A\n\+ {2}version: B/g)?.length).toBeGreaterThanOrEqual(4);
    await expect.poll(() => checkRun(shas.B ?? "", "sluice/preview")?.conclusion, { timeout: 30_000 }).toBe("success");
    const metrics = await appMetrics();
    expect(sample(metrics, 'sluice_webhook_duration_seconds_count{event="pull_request",outcome="handled"}')).toBe(1);
    expect(sample(metrics, 'sluice_preview_duration_seconds_count{outcome="ok"}')).toBe(1);
    expect(sample(metrics, 'sluice_render_duration_seconds_count{outcome="ok"}')).toBeGreaterThanOrEqual(2);
    await merge(shas.B ?? "");
    expect(await liveVersion("production")).toBe("B");
  });

  it("shows a kubectl edit as drift on sluice/drift, in another open pull request's comment, and in both processes' metrics", async () => {
    const edited = Date.now();
    await kubectl("patch", "configmap", "web", "-n", ns.production, "--type", "merge", "-p", '{"data":{"version":"by-hand"}}');
    await expect
      .poll(() => checkRun(shas.B ?? "", "sluice/drift (production)")?.output?.title, { timeout: 30_000, interval: 200 })
      .toBe("1 object drifted");
    const drift = checkRun(shas.B ?? "", "sluice/drift (production)");
    expect(drift?.conclusion).toBe("neutral");
    expect(drift?.output?.text).toContain("-  version: B\n+  version: by-hand");
    // A pull request that does not touch the drifted object still says it drifted, and that merging puts it back.
    await open(
      3,
      await commit("C", { ...files("B"), "envs/production/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n" }),
    );
    await expect
      .poll(() => commentOn(3), { timeout: 60_000, interval: 200 })
      .toContain(
        `- ⚠️ drifted from the last deploy (\`${shas.B?.slice(0, 7)}\`), changed in the cluster by hand: \`ConfigMap ${ns.production}/web\`.`,
      );
    await expect.poll(() => commentOn(3), { timeout: 60_000, interval: 200 }).toContain("-  version: by-hand\n+  version: B");
    const series = `sluice_drift_objects{environment="production",repository="${OWNER}/${REPO}"}`;
    expect(sample(await agentMetrics(), series)).toBe(1);
    await expect.poll(async () => sample(await appMetrics(), series), { timeout: 10_000 }).toBe(1);
    // The newest check finished after the edit it reported (whatever the machine's speed), and not in the future.
    const lastCheck = sample(await agentMetrics(), 'sluice_drift_last_check_timestamp_seconds{environment="production"}');
    expect(lastCheck).toBeGreaterThanOrEqual(edited / 1000);
    expect(lastCheck).toBeLessThanOrEqual(Date.now() / 1000);
  });

  it("heals staging, where self-heal is on, and says so on sluice/drift", async () => {
    await kubectl("patch", "configmap", "web", "-n", ns.staging, "--type", "merge", "-p", '{"data":{"version":"by-hand"}}');
    await expect
      .poll(() => checkRun(shas.B ?? "", "sluice/drift (staging)")?.output?.summary ?? "", { timeout: 30_000, interval: 200 })
      .toContain(`applied \`ConfigMap ${ns.staging}/web\` again`);
    expect(await liveVersion("staging")).toBe("B");
    expect(await liveVersion("production")).toBe("by-hand");
    expect(sample(await agentMetrics(), 'sluice_drift_healed_objects_total{environment="staging"}')).toBeGreaterThanOrEqual(1);
  });

  it("fails sluice/preview with an annotation on the line of a Deployment the cluster's admission policy refuses", async () => {
    const web = [
      "apiVersion: v1",
      "kind: Service",
      "metadata:",
      "  name: web",
      "spec:",
      "  ports:",
      "    - port: 80",
      "---",
      "# pinned images only, says the cluster",
      "apiVersion: apps/v1",
      "kind: Deployment",
      "metadata:",
      "  name: web",
      "spec:",
      "  selector:",
      "    matchLabels: { app: web }",
      "  template:",
      "    metadata:",
      "      labels: { app: web }",
      "    spec:",
      "      containers:",
      "        - name: web",
      "          image: nginx:latest",
      "",
    ].join("\n");
    await open(4, await commit("D", { ...files("B"), "envs/production/web.yaml": web }));
    await expect.poll(() => checkRun(shas.D ?? "", "sluice/preview")?.conclusion, { timeout: 60_000, interval: 200 }).toBe("failure");
    const annotations = () =>
      s()
        .github.calls("checks/update")
        .flatMap(
          (c) =>
            (c.body as { output?: { annotations?: { path: string; start_line: number; message: string }[] } }).output?.annotations ?? [],
        );
    // The check may fail first because the 3 s wait ended (`previews.liveTimeout: failure`); the refusal annotates it when it comes.
    await expect.poll(annotations, { timeout: 60_000, interval: 200 }).toContainEqual(
      expect.objectContaining({
        path: "envs/production/web.yaml",
        start_line: 10,
        message: expect.stringContaining("images must be pinned") as unknown,
      }),
    );
    expect(commentOn(4)).toContain(`- ❌ \`Deployment ${ns.production}/web\` refused by the API server:`);
  });

  it("says no agent answered when the agent was killed, and still posts the git diff", async () => {
    const agent = s().agent;
    if (!agent) throw new Error("no agent");
    agent.child.kill("SIGKILL");
    await expect.poll(() => agent.child.signalCode, { timeout: 10_000 }).toBe("SIGKILL");
    await open(5, await commit("E", files("E")));
    await expect
      .poll(() => commentOn(5), { timeout: 60_000, interval: 200 })
      .toContain("**`production`**: ⚠️ no agent answered within 3 s; this compares the two commits only.");
    expect(commentOn(5)).toContain("+  version: E");
    expect((await get(`${s().appUrl}/readyz`)).status).toBe(200);
  });
});
