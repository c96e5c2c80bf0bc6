import { randomUUID } from "node:crypto";
import { ApiException, KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { InventoryStore } from "../../src/agent/inventory-store.ts";
import { Cluster } from "../../src/agent/kube/cluster.ts";
import { testAgentSettings } from "../helpers/agent-settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { pushPayload as push } from "../helpers/payloads.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";

// Issue 23, item 7: what the platform team made in a tenant's namespace (a ResourceQuota, a
// RoleBinding, the Namespace and its Pod Security labels) is not Sluice's. Deploys run through the
// app and real agents on the real apiserver; each agent serves its own environment with its own
// policy, so one repository configuration picks the policy by naming the environment.

const OWNER = "platform-test";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
let h: AppHarness;
let kube: KubernetesObjectApi;
const agents: RunningAgent[] = [];
const agentNamespace = `sluice-own-${randomUUID().slice(0, 6)}`;
const createdNamespaces: string[] = [];
let nextSha = 1;
let nextRepo = 9100;
const sha = (): string => (nextSha++).toString(16).padStart(40, "f");
const ENFORCE = "pod-security.kubernetes.io/enforce";

/** The environments, each served by an agent with its own policy. */
const POLICIES = {
  // The defaults: nothing unmanaged is adopted, Pod Security labels are the platform's.
  production: {},
  adopting: { SLUICE_AGENT_ADOPT_UNMANAGED: "true" },
  labelling: { SLUICE_AGENT_ADOPT_UNMANAGED: "true", SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS: "true" },
  // Checks drift every 2 s; its repositories heal it.
  healing: { SLUICE_AGENT_ADOPT_UNMANAGED: "true", SLUICE_DRIFT_INTERVAL_SECONDS: "2" },
} satisfies Record<string, Record<string, string>>;
type Environment = keyof typeof POLICIES;

/** The harness's Redis, the test apiserver and this file's keys, for every agent it starts. */
const agentBase = () => ({
  redisUrl: h.redisUrl,
  kubeconfigPath: inject("kubeconfigPath"),
  appPublicKey: appKeys.publicKey,
  agentPrivateKey: agentKeys.privateKey,
});

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 5,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  for (const [environment, policy] of Object.entries(POLICIES)) {
    const settings = await testAgentSettings(agentBase(), {
      SLUICE_AGENT_ENVIRONMENTS: environment,
      SLUICE_AGENT_REPOSITORIES: `${OWNER}/*=tenant-*`,
      SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
      SLUICE_AGENT_NAMESPACE: agentNamespace,
      SLUICE_HEALTH_TIMEOUT_SECONDS: "4",
      SLUICE_DRIFT_INTERVAL_SECONDS: "0",
      ...policy,
    });
    agents.push(await startAgent(settings, { log: () => undefined, now: h.clock.read }));
  }
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await h.stop();
  for (const name of [agentNamespace, ...createdNamespaces])
    await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

interface Repo {
  name: string;
  id: number;
  namespace: string;
  environment: Environment;
}

function repository(environment: Environment): Repo {
  const id = nextRepo++;
  const namespace = `tenant-${randomUUID().slice(0, 8)}`;
  createdNamespaces.push(namespace);
  h.github.addRepo(OWNER, `app-${id}`, id);
  return { name: `app-${id}`, id, namespace, environment };
}

const config = (repo: Repo) =>
  `version: 1\nenvironments:\n  - name: ${repo.environment}\n    path: manifests\n    namespace: ${repo.namespace}\n    branch: main\n    prune: true\n${
    repo.environment === "healing" ? "    selfHeal: true\n" : ""
  }`;

async function merge(repo: Repo, manifests: Record<string, string>): Promise<string> {
  const head = sha();
  const files = {
    ".github/sluice.yml": config(repo),
    ...Object.fromEntries(Object.entries(manifests).map(([k, v]) => [`manifests/${k}`, v])),
  };
  await h.github.addCommit(OWNER, repo.name, head, await checkout(undefined, files));
  h.github.setBranch(OWNER, repo.name, "main", head);
  expect((await h.deliver("push", push({ owner: OWNER, repo: repo.name, repoId: repo.id, installation: 71 }, head))).status).toBe(200);
  return head;
}

/** The finished deploy check run, its summary and text with the markdown escapes taken out. */
async function deployed(repo: Repo, head: string): Promise<{ conclusion: string | null | undefined; summary: string; text: string }> {
  const runs = () => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === deployCheckName(repo.environment));
  await expect.poll(() => runs().map((r) => r.status), { timeout: 90_000, interval: 200 }).toEqual(["completed"]);
  const run = runs()[0];
  const plain = (text: string | undefined) => (text ?? "").replace(/\\(.)/g, "$1");
  return { conclusion: run?.conclusion, summary: plain(run?.output?.summary), text: plain(run?.output?.text) };
}

/** The parts of a live object these tests look at. */
interface Live {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { hard?: Record<string, string> };
  subjects?: unknown[];
  data?: Record<string, string>;
}

async function live(apiVersion: string, kind: string, name: string, namespace?: string): Promise<Live | undefined> {
  try {
    return (await kube.read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } })) as unknown as Live;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

const namespaceYaml = (name: string, labels: Record<string, string> = {}) =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${
    Object.keys(labels).length > 0
      ? `  labels:\n${Object.entries(labels)
          .map(([k, v]) => `    ${k}: ${v}\n`)
          .join("")}`
      : ""
  }`;
const quotaYaml = (pods: number) =>
  `apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: compute\nspec:\n  hard:\n    pods: "${pods}"\n`;
const bindingYaml = (...subjects: string[]) =>
  `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: platform-view\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n${subjects
    .map(
      (s) =>
        `  - apiGroup: rbac.authorization.k8s.io\n    kind: ${s.startsWith("group:") ? "Group" : "User"}\n    name: ${s.replace(/^group:/, "")}\n`,
    )
    .join("")}`;
const configMapYaml = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  key: value\n`;
const deploymentYaml = (replicas: number) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels: { app: web }\n  template:\n    metadata:\n      labels: { app: web }\n    spec:\n      containers:\n        - name: web\n          image: registry.invalid/web:1.0\n`;

/** What the platform team makes in a tenant's namespace, by hand, without Sluice's labels. */
async function platformMade(namespace: string, labels: Record<string, string> = {}): Promise<void> {
  const objects: KubernetesObject[] = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels } },
    {
      apiVersion: "v1",
      kind: "ResourceQuota",
      metadata: { name: "compute", namespace },
      spec: { hard: { pods: "10" } },
    } as KubernetesObject,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "platform-view", namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "platform" }],
    } as KubernetesObject,
  ];
  for (const object of objects) await kube.create(object);
}

const sluiceLabels = (object: Live | undefined): string[] =>
  Object.keys(object?.metadata.labels ?? {}).filter((k) => k.startsWith("sluice.dev/") || k === "app.kubernetes.io/managed-by");

describe("objects Sluice did not make", { timeout: 240_000 }, () => {
  it("refuses to overwrite the platform's ResourceQuota, RoleBinding and Namespace with adoption off, naming each and the rule", async () => {
    const repo = repository("production");
    await platformMade(repo.namespace);
    const head = await merge(repo, {
      "ns.yaml": namespaceYaml(repo.namespace),
      "quota.yaml": quotaYaml(1000),
      "binding.yaml": bindingYaml("group:platform", "mallory"),
      "app.yaml": configMapYaml("app"),
    });
    const run = await deployed(repo, head);
    expect(run.conclusion).toBe("failure");
    expect(run.summary).toContain("nothing was written");
    const rule =
      "exists without Sluice's ownership labels (it was made outside Sluice); the agent does not adopt unmanaged objects unless SLUICE_AGENT_ADOPT_UNMANAGED is true";
    for (const name of [
      `ResourceQuota ${repo.namespace}/compute`,
      `RoleBinding ${repo.namespace}/platform-view`,
      `Namespace ${repo.namespace}`,
    ])
      expect(run.summary).toContain(`${name}: ${rule}`);
    expect((await live("v1", "ResourceQuota", "compute", repo.namespace))?.spec?.hard).toEqual({ pods: "10" });
    expect((await live("rbac.authorization.k8s.io/v1", "RoleBinding", "platform-view", repo.namespace))?.subjects).toEqual([
      { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "platform" },
    ]);
    expect(sluiceLabels(await live("v1", "Namespace", repo.namespace))).toEqual([]);
    expect(await live("v1", "ConfigMap", "app", repo.namespace)).toBeUndefined();
  });

  it("adopts them when the policy allows it, and releases instead of deleting them when they leave Git, even after a failed deploy", async () => {
    const repo = repository("adopting");
    await platformMade(repo.namespace);
    // The first deploy adopts the quota and the binding, then fails its health wait: nothing is recorded as deployed.
    const first = await merge(repo, {
      "quota.yaml": quotaYaml(20),
      "binding.yaml": bindingYaml("group:platform", "alice"),
      "temp.yaml": configMapYaml("temp"),
      "web.yaml": deploymentYaml(1),
    });
    const failed = await deployed(repo, first);
    expect(failed.conclusion).toBe("failure");
    expect(failed.summary).toContain("health check timed out");
    const quota = await live("v1", "ResourceQuota", "compute", repo.namespace);
    expect(quota?.spec?.hard).toEqual({ pods: "20" });
    expect(quota?.metadata.labels).toMatchObject({ "sluice.dev/repository-id": String(repo.id), "sluice.dev/environment": "adopting" });
    // The next deploy finds them labelled as its own, and succeeds.
    const second = await merge(repo, {
      "quota.yaml": quotaYaml(20),
      "binding.yaml": bindingYaml("group:platform", "alice"),
      "temp.yaml": configMapYaml("temp"),
      "web.yaml": deploymentYaml(0),
    });
    expect((await deployed(repo, second)).conclusion).toBe("success");

    // Removed from Git: what Sluice created is pruned, what it adopted is handed back.
    const third = await merge(repo, { "app.yaml": configMapYaml("app") });
    const run = await deployed(repo, third);
    expect(run.conclusion).toBe("success");
    await expect.poll(() => live("v1", "ConfigMap", "temp", repo.namespace), { timeout: 10_000 }).toBeUndefined();
    await expect.poll(() => live("apps/v1", "Deployment", "web", repo.namespace), { timeout: 10_000 }).toBeUndefined();
    const released = await live("v1", "ResourceQuota", "compute", repo.namespace);
    expect(released?.spec?.hard).toEqual({ pods: "20" });
    expect(sluiceLabels(released)).toEqual([]);
    expect(released?.metadata.annotations?.["sluice.dev/repository"]).toBeUndefined();
    const binding = await live("rbac.authorization.k8s.io/v1", "RoleBinding", "platform-view", repo.namespace);
    expect(binding).toBeDefined();
    expect(sluiceLabels(binding)).toEqual([]);
    expect(run.text).toContain(
      `ResourceQuota ${repo.namespace}/compute was adopted, not created by Sluice: released (Sluice's labels removed), not deleted`,
    );
    // The cluster's record still knows they were never Sluice's, should they come back to Git.
    const cluster = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 50 });
    try {
      const inventory = await new InventoryStore(cluster, agentNamespace).read(repo.id, "adopting");
      expect(inventory?.adopted.map((id) => `${id.kind}/${id.name}`).sort()).toEqual([
        "ResourceQuota/compute",
        "RoleBinding/platform-view",
      ]);
    } finally {
      cluster.close();
    }
  });
});

describe("a Namespace's Pod Security labels", { timeout: 240_000 }, () => {
  it("are not changed by a repository, on a Namespace it created or one it adopted, unless the policy allows it", async () => {
    // A Namespace Sluice created: the repository may not add a label later.
    const own = repository("production");
    expect(
      (await deployed(own, await merge(own, { "ns.yaml": namespaceYaml(own.namespace), "app.yaml": configMapYaml("app") }))).conclusion,
    ).toBe("success");
    const loosened = await merge(own, {
      "ns.yaml": namespaceYaml(own.namespace, { [ENFORCE]: "privileged" }),
      "app.yaml": configMapYaml("app"),
      "more.yaml": configMapYaml("more"),
    });
    const refused = await deployed(own, loosened);
    expect(refused.conclusion).toBe("failure");
    expect(refused.summary).toContain(
      `Namespace ${own.namespace}: the repository sets ${ENFORCE} to "privileged" (live: not set); a repository may not change a Namespace's pod-security.kubernetes.io/* labels unless SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS is true`,
    );
    expect((await live("v1", "Namespace", own.namespace))?.metadata.labels?.[ENFORCE]).toBeUndefined();
    expect(await live("v1", "ConfigMap", "more", own.namespace)).toBeUndefined();

    // The platform's Namespace, adopted: the same label may be declared as it is, not changed.
    const adopted = repository("adopting");
    await platformMade(adopted.namespace, { [ENFORCE]: "baseline" });
    const changed = await deployed(
      adopted,
      await merge(adopted, { "ns.yaml": namespaceYaml(adopted.namespace, { [ENFORCE]: "privileged" }) }),
    );
    expect(changed.conclusion).toBe("failure");
    expect(changed.summary).toContain(`Namespace ${adopted.namespace}: the repository sets ${ENFORCE} to "privileged" (live: "baseline")`);
    expect((await live("v1", "Namespace", adopted.namespace))?.metadata.labels?.[ENFORCE]).toBe("baseline");
    const same = await deployed(
      adopted,
      await merge(adopted, { "ns.yaml": namespaceYaml(adopted.namespace, { [ENFORCE]: "baseline", team: "a" }) }),
    );
    expect(same.conclusion).toBe("success");
    expect((await live("v1", "Namespace", adopted.namespace))?.metadata.labels).toMatchObject({ [ENFORCE]: "baseline", team: "a" });

    // Where the policy allows it, the repository sets them.
    const allowed = repository("labelling");
    await platformMade(allowed.namespace, { [ENFORCE]: "baseline" });
    const run = await deployed(allowed, await merge(allowed, { "ns.yaml": namespaceYaml(allowed.namespace, { [ENFORCE]: "privileged" }) }));
    expect(run.conclusion).toBe("success");
    expect((await live("v1", "Namespace", allowed.namespace))?.metadata.labels?.[ENFORCE]).toBe("privileged");
  });
});

describe("self-heal", { timeout: 240_000 }, () => {
  it("never takes back an object that lost Sluice's labels, nor puts back Pod Security labels the platform changed", async () => {
    const repo = repository("healing");
    await platformMade(repo.namespace, { [ENFORCE]: "baseline" });
    const head = await merge(repo, {
      "ns.yaml": namespaceYaml(repo.namespace, { [ENFORCE]: "baseline" }),
      "app.yaml": configMapYaml("app"),
    });
    expect((await deployed(repo, head)).conclusion).toBe("success");
    const driftRun = () => [...h.github.checkRuns.values()].find((r) => r.head_sha === head && r.name === "sluice/drift (healing)");
    await expect.poll(() => driftRun()?.output?.title, { timeout: 30_000, interval: 200 }).toBe("In sync");

    // Someone takes the ConfigMap out of Sluice's hands and changes it; the platform tightens Pod Security.
    const app = await live("v1", "ConfigMap", "app", repo.namespace);
    const ns = await live("v1", "Namespace", repo.namespace);
    if (!app || !ns) throw new Error(`ConfigMap ${repo.namespace}/app or Namespace ${repo.namespace} is missing after the deploy`);
    const unlabelled = Object.fromEntries(Object.entries(app.metadata.labels ?? {}).filter(([k]) => !sluiceLabels(app).includes(k)));
    await kube.replace(
      { ...app, metadata: { ...app.metadata, labels: unlabelled }, data: { key: "theirs" } },
      undefined,
      undefined,
      "kubectl-edit",
    );
    await kube.replace(
      { ...ns, metadata: { ...ns.metadata, labels: { ...ns.metadata.labels, [ENFORCE]: "restricted" } } },
      undefined,
      undefined,
      "kubectl-label",
    );
    await expect.poll(() => driftRun()?.output?.title, { timeout: 30_000, interval: 200 }).toBe("2 objects drifted");
    expect(driftRun()?.output?.summary ?? "").not.toContain("again");
    const after = await live("v1", "ConfigMap", "app", repo.namespace);
    expect(after?.data).toEqual({ key: "theirs" });
    expect(sluiceLabels(after)).toEqual([]);
    expect((await live("v1", "Namespace", repo.namespace))?.metadata.labels?.[ENFORCE]).toBe("restricted");
  });
});
