import { randomUUID } from "node:crypto";
import { ApiException, KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { deployCheckName } from "../../src/core/check-names.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { testAgentSettings } from "../helpers/agent-settings.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { pullRequestPayload, pushPayload, type PayloadTarget } from "../helpers/payloads.ts";

// Plays a tenant team against what the platform team made in the tenant's namespace (issue 23,
// item 7): the app over HTTP with signed webhooks, agents on the real apiserver and Redis. The
// tenant's repository may write to its namespaces; it tries to take over the quota, the limits,
// the network policy, the role binding and the Namespace's Pod Security labels there, first where
// the agent adopts nothing unmanaged, then where it does, by adopting and then pruning them.

const OWNER = "acme";
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
let h: AppHarness;
let kube: KubernetesObjectApi;
const agents: RunningAgent[] = [];
const agentNamespace = `sluice-own-sec-${randomUUID().slice(0, 6)}`;
const namespaces: string[] = [agentNamespace];
let nextSha = 1;
let nextRepo = 9300;
let nextPull = 1;
const sha = (): string => (nextSha++).toString(16).padStart(40, "b");
const ENFORCE = "pod-security.kubernetes.io/enforce";

function tried(attempt: string, outcome: string): void {
  process.stdout.write(`  [attacker] tried: ${attempt}\n  [attacker] result: ${outcome}\n`);
}

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
    database: 15,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    env: { SLUICE_LIVE_PREVIEW_TIMEOUT_SECONDS: "20" },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
  await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
  // `production` is served with the defaults; `shared` by an agent whose policy adopts unmanaged objects.
  for (const [environment, extra] of [
    ["production", {}],
    ["shared", { SLUICE_AGENT_ADOPT_UNMANAGED: "true" }],
  ] as const) {
    const settings = await testAgentSettings(agentBase(), {
      SLUICE_AGENT_ENVIRONMENTS: environment,
      SLUICE_AGENT_REPOSITORIES: `${OWNER}/team-a-*=team-a-*`,
      SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
      SLUICE_AGENT_NAMESPACE: agentNamespace,
      SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
      SLUICE_DRIFT_INTERVAL_SECONDS: "0",
      ...extra,
    });
    agents.push(await startAgent(settings, { log: () => undefined, now: h.clock.read }));
  }
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await h.stop();
  for (const name of namespaces) await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

interface Repo extends PayloadTarget {
  namespace: string;
  environment: string;
}

function repository(environment: string): Repo {
  const repoId = nextRepo++;
  const name = `team-a-${randomUUID().slice(0, 6)}`;
  const namespace = `team-a-${randomUUID().slice(0, 8)}`;
  namespaces.push(namespace);
  h.github.addRepo(OWNER, name, repoId);
  h.github.setPermission(OWNER, name, "mallory", "write");
  return { owner: OWNER, repo: name, repoId, installation: 43, namespace, environment };
}

const files = (repo: Repo, manifests: Record<string, string>): Record<string, string> => ({
  ".github/sluice.yml": `version: 1\nenvironments:\n  - name: ${repo.environment}\n    path: manifests\n    namespace: ${repo.namespace}\n    branch: main\n`,
  ...Object.fromEntries(Object.entries(manifests).map(([path, text]) => [`manifests/${path}`, text])),
});

async function commit(repo: Repo, manifests: Record<string, string>): Promise<string> {
  const id = sha();
  await h.github.addCommit(OWNER, repo.repo, id, await checkout(undefined, files(repo, manifests)));
  return id;
}

async function merge(repo: Repo, head: string): Promise<void> {
  h.github.setBranch(OWNER, repo.repo, "main", head);
  expect((await h.deliver("push", pushPayload(repo, head))).status).toBe(200);
}

/** The finished deploy check run's summary and text, with the markdown escapes taken out. */
async function deployed(repo: Repo, head: string): Promise<{ conclusion: string | null | undefined; output: string }> {
  const runs = () => [...h.github.checkRuns.values()].filter((r) => r.head_sha === head && r.name === deployCheckName(repo.environment));
  await expect.poll(() => runs().map((r) => r.status), { timeout: 90_000, interval: 200 }).toEqual(["completed"]);
  const run = runs()[0];
  return { conclusion: run?.conclusion, output: `${run?.output?.summary ?? ""}\n${run?.output?.text ?? ""}`.replace(/\\(.)/g, "$1") };
}

/** What the platform team made in the tenant's namespace, by hand: no Sluice labels anywhere. */
function platformObjects(namespace: string): KubernetesObject[] {
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels: { [ENFORCE]: "restricted" } } },
    { apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "compute", namespace }, spec: { hard: { pods: "10" } } },
    {
      apiVersion: "v1",
      kind: "LimitRange",
      metadata: { name: "limits", namespace },
      spec: { limits: [{ type: "Container", max: { memory: "512Mi" } }] },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "deny-egress", namespace },
      spec: { podSelector: {}, policyTypes: ["Egress"] },
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "platform-view", namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "platform" }],
    },
  ] as KubernetesObject[];
}

/** The tenant's versions of the same objects: a bigger quota, no limits, open egress, itself bound, privileged pods. */
const takeover = (namespace: string): Record<string, string> => ({
  "ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n  labels:\n    ${ENFORCE}: privileged\n`,
  "quota.yaml": `apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: compute\nspec:\n  hard:\n    pods: "10000"\n`,
  "limits.yaml": `apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\nspec:\n  limits:\n    - type: Container\n      max:\n        memory: 64Gi\n`,
  "netpol.yaml": `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-egress\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n    - {}\n`,
  "binding.yaml": `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: platform-view\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n  - apiGroup: rbac.authorization.k8s.io\n    kind: User\n    name: mallory\n`,
});

/** The platform's objects as they are live, without server bookkeeping, to compare before and after. */
async function platformState(namespace: string): Promise<unknown[]> {
  const state: unknown[] = [];
  for (const object of platformObjects(namespace)) {
    try {
      const live = (await kube.read({
        ...object,
        metadata: { name: object.metadata?.name ?? "", namespace: object.metadata?.namespace },
      })) as unknown as Record<string, Record<string, unknown>>;
      const { labels, annotations } = live.metadata ?? {};
      state.push({ labels, annotations, spec: live.spec, subjects: live.subjects });
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) state.push("deleted");
      else throw error;
    }
  }
  return state;
}

const previewComment = (number: number) => h.github.comments.find((c) => c.issue === number && c.body.includes(PREVIEW_MARKER))?.body ?? "";

describe("a tenant repository and what the platform team made in its namespace", { timeout: 240_000 }, () => {
  it("cannot overwrite, adopt or relabel the platform's objects where the policy adopts nothing; the live preview says so first", async () => {
    const repo = repository("production");
    for (const object of platformObjects(repo.namespace)) await kube.create(object);
    const before = await platformState(repo.namespace);

    const base = await commit(repo, { "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n" });
    h.github.setBranch(OWNER, repo.repo, "main", base);
    const head = await commit(repo, takeover(repo.namespace));
    const number = nextPull++;
    await h.deliver("pull_request", pullRequestPayload(repo, "opened", number, base, head, { author: "mallory" }));
    await expect.poll(() => previewComment(number), { timeout: 60_000, interval: 200 }).toContain("would be refused");
    const comment = previewComment(number).replace(/\\(.)/g, "$1");
    for (const name of [
      `ResourceQuota ${repo.namespace}/compute`,
      `LimitRange ${repo.namespace}/limits`,
      `NetworkPolicy ${repo.namespace}/deny-egress`,
      `RoleBinding ${repo.namespace}/platform-view`,
      `Namespace ${repo.namespace}`,
    ])
      expect(comment).toContain(`\`${name}\` refused by the agent's policy: exists without Sluice's ownership labels`);

    await merge(repo, head);
    const run = await deployed(repo, head);
    expect(run.conclusion).toBe("failure");
    expect(run.output).toContain("nothing was written");
    expect(run.output).toContain(`RoleBinding ${repo.namespace}/platform-view: exists without Sluice's ownership labels`);
    expect(await platformState(repo.namespace)).toEqual(before);
    tried(
      "a pull request and a merge that redefine the platform's ResourceQuota, LimitRange, NetworkPolicy and RoleBinding in my namespace, and set the Namespace's pod-security enforce label to privileged",
      "the live preview listed each as refused by the agent's policy; the deploy was refused naming each; nothing was written",
    );
  });

  it("cannot loosen Pod Security or get the platform's objects deleted where the policy adopts unmanaged objects", async () => {
    const repo = repository("shared");
    for (const object of platformObjects(repo.namespace)) await kube.create(object);

    // Adoption is allowed here, but not a change to the Namespace's Pod Security labels: the live preview says so, then the deploy.
    const base = await commit(repo, { "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n" });
    h.github.setBranch(OWNER, repo.repo, "main", base);
    const loosen = await commit(repo, takeover(repo.namespace));
    const number = nextPull++;
    await h.deliver("pull_request", pullRequestPayload(repo, "opened", number, base, loosen, { author: "mallory" }));
    await expect.poll(() => previewComment(number), { timeout: 60_000, interval: 200 }).toContain("would be refused");
    expect(previewComment(number).replace(/\\(.)/g, "$1")).toContain(
      `\`Namespace ${repo.namespace}\` refused by the agent's policy: the repository sets ${ENFORCE} to "privileged" (live: "restricted")`,
    );
    await merge(repo, loosen);
    const refused = await deployed(repo, loosen);
    expect(refused.conclusion).toBe("failure");
    expect(refused.output).toContain(
      `Namespace ${repo.namespace}: the repository sets ${ENFORCE} to "privileged" (live: "restricted"); a repository may not change a Namespace's pod-security.kubernetes.io/* labels unless SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS is true`,
    );
    const namespace = (await kube.read({ apiVersion: "v1", kind: "Namespace", metadata: { name: repo.namespace } })) as unknown as {
      metadata: { labels: Record<string, string> };
    };
    expect(namespace.metadata.labels[ENFORCE]).toBe("restricted");

    // Adopt the rest, then drop it from Git so that prune would delete it.
    const rest = Object.fromEntries(Object.entries(takeover(repo.namespace)).filter(([path]) => path !== "ns.yaml"));
    const adopt = await commit(repo, rest);
    await merge(repo, adopt);
    expect((await deployed(repo, adopt)).conclusion).toBe("success");
    const drop = await commit(repo, { "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n" });
    await merge(repo, drop);
    const run = await deployed(repo, drop);
    expect(run.conclusion).toBe("success");
    expect(run.output).not.toContain("pruned");
    const after = await platformState(repo.namespace);
    expect(after).not.toContain("deleted");
    for (const state of after.slice(1)) expect(JSON.stringify(state)).not.toContain("sluice.dev/repository");
    tried(
      "where the agent adopts unmanaged objects: setting pod-security enforce to privileged on my Namespace, then adopting the platform's quota, limits, network policy and role binding and removing them from Git so that prune deletes them",
      "the label change was refused, in the live preview and at deploy; the adopted objects were released (Sluice's labels removed), not deleted",
    );
  });
});
