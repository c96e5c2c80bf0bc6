import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { agentQueue, objectsDigest } from "../../../src/core/agent-protocol.ts";
import { applyOrder, stageOf } from "../../../src/core/apply-order.ts";
import { checkRunState, deploymentState, isFinal } from "../../../src/core/deploy-phases.ts";
import { actionCounts, deployCheckOutput, deployComment, objectTable } from "../../../src/core/deploy-status.ts";
import { computeHealth } from "../../../src/core/health.ts";
import { labelValue, nextInventory, ownershipLabels, pruneCandidates, replayRefusal } from "../../../src/core/inventory.ts";
import { deployJobId } from "../../../src/core/deploy-requests.ts";
import { clusterKindAllowed, globAllowed, namespacesFor, parseRepositoryRules, policyViolations } from "../../../src/core/policy.ts";
import { generateSigningKeys, open, privateKeyFromPem, publicKeyFromPem, seal } from "../../../src/core/signing.ts";

const id = (kind: string, name = "x", namespace = "ns", group = "") => ({ group, version: "v1", kind, namespace, name });

describe("signing", () => {
  const keys = generateSigningKeys();
  const signer = privateKeyFromPem(keys.privateKey);
  const verifier = publicKeyFromPem(keys.publicKey);

  it("round-trips a payload and binds the kind", () => {
    const envelope = seal("job", { a: 1 }, signer);
    expect(open("job", envelope, verifier)).toEqual({ a: 1 });
    expect(() => open("report", envelope, verifier)).toThrow("expected a signed report, got a signed job");
    expect(() => open("report", { ...envelope, kind: "report" }, verifier)).toThrow("signature does not verify");
  });

  it("rejects tampering, other keys and garbage", () => {
    const envelope = seal("job", { a: 1 }, signer);
    expect(() => open("job", { ...envelope, body: '{"a":2}' }, verifier)).toThrow("signature does not verify");
    expect(() => open("job", envelope, publicKeyFromPem(generateSigningKeys().publicKey))).toThrow("signature does not verify");
    expect(() => open("job", "nonsense", verifier)).toThrow(/^not a signed job/);
    expect(() => privateKeyFromPem(generateRsa())).toThrow("signing keys must be Ed25519, got rsa");
    expect(() => privateKeyFromPem("not a key")).toThrow(/^the signing key is not a PEM private key/);
  });
});

function generateRsa(): string {
  return generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

describe("apply order", () => {
  it("puts CRDs, Namespaces and classes first, then a stable kind order with webhooks last", () => {
    const items = [
      "ValidatingWebhookConfiguration",
      "Deployment",
      "Service",
      "Namespace",
      "ConfigMap",
      "CustomResourceDefinition",
      "StorageClass",
      "Widget",
      "ServiceAccount",
    ].map((kind) => ({ id: id(kind) }));
    expect(applyOrder(items).map((i) => i.id.kind)).toEqual([
      "CustomResourceDefinition",
      "Namespace",
      "StorageClass",
      "ServiceAccount",
      "ConfigMap",
      "Service",
      "Deployment",
      "Widget",
      "ValidatingWebhookConfiguration",
    ]);
    expect(stageOf({ kind: "IngressClass" })).toBe("definitions");
    expect(stageOf({ kind: "Ingress" })).toBe("resources");
  });
});

describe("health", () => {
  it("follows kstatus for Deployments", () => {
    const deployment = (status: Record<string, unknown>, replicas = 2) => ({
      kind: "Deployment",
      metadata: { generation: 3 },
      spec: { replicas },
      status: { observedGeneration: 3, ...status },
    });
    expect(computeHealth(deployment({ updatedReplicas: 2, replicas: 2, availableReplicas: 2 })).status).toBe("current");
    expect(computeHealth(deployment({ updatedReplicas: 1, replicas: 2, availableReplicas: 1 }))).toEqual({
      status: "in-progress",
      message: "1 of 2 replicas updated",
    });
    expect(computeHealth({ ...deployment({}), status: { observedGeneration: 2 } })).toMatchObject({
      status: "in-progress",
      message: "generation 3 not observed yet (observed 2)",
    });
    expect(
      computeHealth(
        deployment({ conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: "too slow" }] }),
      ),
    ).toEqual({ status: "failed", message: "too slow" });
  });

  it("covers Jobs, PVCs, CRDs and generic conditions", () => {
    expect(computeHealth({ kind: "Job", status: { conditions: [{ type: "Complete", status: "True" }] } }).status).toBe("current");
    expect(computeHealth({ kind: "Job", spec: { suspend: true }, status: {} })).toEqual({ status: "current", message: "suspended" });
    expect(computeHealth({ kind: "Job", status: { active: 1 } })).toEqual({ status: "in-progress", message: "0 succeeded, 1 active" });
    expect(computeHealth({ kind: "Job", status: { conditions: [{ type: "Failed", status: "True", message: "backoff" }] } })).toEqual({
      status: "failed",
      message: "backoff",
    });
    expect(computeHealth({ kind: "PersistentVolumeClaim", status: { phase: "Pending" } })).toEqual({
      status: "in-progress",
      message: "phase Pending",
    });
    expect(
      computeHealth({ kind: "CustomResourceDefinition", status: { conditions: [{ type: "Established", status: "True" }] } }).status,
    ).toBe("current");
    expect(computeHealth({ kind: "Widget", status: { conditions: [{ type: "Ready", status: "False", message: "waiting" }] } })).toEqual({
      status: "in-progress",
      message: "waiting",
    });
    expect(computeHealth({ kind: "Widget", status: { conditions: [{ type: "Stalled", status: "True", message: "bad spec" }] } })).toEqual({
      status: "failed",
      message: "bad spec",
    });
    expect(computeHealth({ kind: "ConfigMap" }).status).toBe("current");
  });
});

describe("policy", () => {
  const namespaces = ["team-*", "shared"];
  const clusterKinds = ["Namespace"];
  it("allows namespaces by glob and cluster kinds by name", () => {
    expect(globAllowed("team-a", namespaces)).toBe(true);
    expect(globAllowed("teamx", namespaces)).toBe(false);
    expect(policyViolations([id("ConfigMap", "a", "team-a"), id("Namespace", "team-b", "")], namespaces, clusterKinds)).toEqual([]);
  });

  it("names every object outside the policy", () => {
    expect(
      policyViolations(
        [id("ConfigMap", "a", "kube-system"), id("ClusterRole", "admin", "", "rbac.authorization.k8s.io"), id("Namespace", "prod", "")],
        namespaces,
        clusterKinds,
      ),
    ).toEqual([
      "ConfigMap kube-system/a: namespace kube-system is not allowed for this repository (allowed: team-*, shared)",
      "ClusterRole admin: cluster-scoped kind ClusterRole.rbac.authorization.k8s.io is not allowed (allowed: Namespace)",
      "Namespace prod: namespace prod is not allowed for this repository (allowed: team-*, shared)",
    ]);
  });

  it("matches cluster kinds on group and kind, so a look-alike group is not the real one", () => {
    expect(clusterKindAllowed(["ClusterRole.rbac.authorization.k8s.io"], "rbac.authorization.k8s.io", "ClusterRole")).toBe(true);
    expect(clusterKindAllowed(["ClusterRole.rbac.authorization.k8s.io"], "evil.example.com", "ClusterRole")).toBe(false);
    expect(clusterKindAllowed(["ClusterRole"], "rbac.authorization.k8s.io", "ClusterRole")).toBe(false);
    expect(clusterKindAllowed(["Namespace"], "", "Namespace")).toBe(true);
  });

  it("maps repositories to their own namespaces", () => {
    const rules = parseRepositoryRules("acme/team-a-*=team-a-*|shared, acme/platform, acme/team-b=team-b", ["platform-*"]);
    expect(rules).toEqual([
      { repositories: "acme/team-a-*", namespaces: ["team-a-*", "shared"] },
      { repositories: "acme/platform", namespaces: ["platform-*"] },
      { repositories: "acme/team-b", namespaces: ["team-b"] },
    ]);
    expect(namespacesFor({ rules }, "acme/team-a-web")).toEqual(["team-a-*", "shared"]);
    expect(namespacesFor({ rules }, "acme/team-b")).toEqual(["team-b"]);
    expect(namespacesFor({ rules }, "other/repo")).toBeUndefined();
    expect(() => parseRepositoryRules("team-a-*=x", [])).toThrow('repository rule "team-a-*=x" must start with an owner/name glob');
    expect(() => parseRepositoryRules("acme/x", [])).toThrow("names no namespace");
  });
});

describe("inventory", () => {
  it("finds prune candidates regardless of version", () => {
    expect(
      pruneCandidates(
        [id("ConfigMap", "a"), id("ConfigMap", "b"), { ...id("Deployment", "d"), version: "v1beta1" }],
        [id("ConfigMap", "a"), id("Deployment", "d")],
      ),
    ).toEqual([id("ConfigMap", "b")]);
  });

  it("keeps the last revisions", () => {
    let inventory = undefined as ReturnType<typeof nextInventory> | undefined;
    for (let i = 0; i < 12; i++)
      inventory = nextInventory(
        inventory,
        { repositoryId: 1, repository: "o/r", environment: "p", objects: [] },
        { sha: String(i), jobId: `j${i}`, digest: "d", appliedAt: "2026-01-01T00:00:00.000Z", reason: "merge" },
      );
    expect(inventory?.revisions.map((r) => r.sha)).toEqual(["11", "10", "9", "8", "7", "6", "5", "4", "3", "2"]);
  });

  it("refuses jobs not newer than the last accepted one, except a retry of that job", () => {
    const inventory = {
      ...nextInventory(
        undefined,
        { repositoryId: 1, repository: "o/r", environment: "p", objects: [] },
        { sha: "a", jobId: "j", digest: "d", appliedAt: "2026-01-01T00:00:00.000Z", reason: "merge" },
      ),
      sequence: 10,
      sequenceJobId: "j10",
    };
    expect(replayRefusal(undefined, { id: "j1", sequence: 1 })).toBeUndefined();
    expect(replayRefusal(inventory, { id: "j11", sequence: 11 })).toBeUndefined();
    expect(replayRefusal(inventory, { id: "j10", sequence: 10 })).toBeUndefined();
    expect(replayRefusal(inventory, { id: "other", sequence: 10 })).toMatch(/not newer than the last accepted job j10/);
    expect(replayRefusal(inventory, { id: "j9", sequence: 9 })).toMatch(/replayed or out-of-order/);
  });

  it("makes valid, bounded label values", () => {
    expect(labelValue("production")).toBe("production");
    const long = labelValue(`octo/${"x".repeat(80)}`);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^octo\.x+-[0-9a-f]{10}$/);
    expect(labelValue("weird repo!/name")).toMatch(/^weird_repo_.name-[0-9a-f]{10}$/);
    expect(ownershipLabels(42, "prod")).toEqual({
      "app.kubernetes.io/managed-by": "sluice",
      "sluice.dev/repository-id": "42",
      "sluice.dev/environment": "prod",
    });
  });
});

describe("jobs and reports", () => {
  it("derives BullMQ-safe job ids and per-environment queues", () => {
    const jobId = deployJobId({
      repository: { owner: "o", name: "r", id: 42 },
      environment: "prod",
      sha: "a".repeat(40),
      reason: "merge",
      trigger: "push",
    });
    expect(jobId).toBe(`merge-42-prod-${"a".repeat(40)}`);
    // Each command is a request of its own, even for the same commit.
    const first = deployJobId({
      repository: { owner: "o", name: "r", id: 42 },
      environment: "prod",
      sha: "a".repeat(40),
      reason: "sync",
      trigger: "comment-7",
    });
    const second = deployJobId({
      repository: { owner: "o", name: "r", id: 42 },
      environment: "prod",
      sha: "a".repeat(40),
      reason: "sync",
      trigger: "comment-8",
    });
    expect(first).not.toBe(second);
    expect(jobId).not.toContain(":");
    expect(Number.isInteger(Number(jobId))).toBe(false);
    expect(agentQueue("prod")).toEqual({ name: "deploy-prod", prefix: "{sluice-prod}" });
  });

  it("digests objects independently of key order", () => {
    expect(objectsDigest([{ a: 1, b: 2 }])).toBe(objectsDigest([{ b: 2, a: 1 }]));
    expect(objectsDigest([{ a: 1 }])).not.toBe(objectsDigest([{ a: 2 }]));
  });

  it("renders the per-object table and titles", () => {
    const objects = [
      { ...id("ConfigMap", "a"), action: "created" as const, health: "current" as const, durationMs: 1200 },
      { ...id("ConfigMap", "b"), action: "pruned" as const, health: "current" as const, durationMs: 0, message: "a|b" },
    ];
    expect(objectTable(objects)).toContain("| `ConfigMap ns/a` | 🟢 created | current | 1.2 s |");
    expect(objectTable(objects)).toContain("🔴 pruned — a\\|b");
    expect(actionCounts(objects)).toBe("1 created, 1 pruned");
    const base = {
      version: 1 as const,
      jobId: "j",
      repository: { owner: "o", name: "r", id: 1 },
      installationId: 1,
      environment: "p",
      sha: "a".repeat(40),
      at: "2026-01-01T00:00:00.000Z",
    };
    expect(deployCheckOutput({ ...base, phase: "succeeded", message: "", objects, durationMs: 42_000 }).title).toBe("Deployed in 42 s");
    expect(deployCheckOutput({ ...base, phase: "progress", message: "3 of 9 applied", applied: 3, total: 9 }).title).toBe("3 of 9 applied");
  });
});

describe("what a deploy's phase means on GitHub", () => {
  const phases = ["started", "progress", "succeeded", "failed", "rejected", "superseded"] as const;

  it("maps every phase to a check run state and a Deployment status", () => {
    expect(phases.map((p) => [p, checkRunState(p), deploymentState(p), isFinal(p)])).toEqual([
      ["started", { status: "in_progress" }, "in_progress", false],
      ["progress", { status: "in_progress" }, undefined, false],
      ["succeeded", { status: "completed", conclusion: "success" }, "success", true],
      ["failed", { status: "completed", conclusion: "failure" }, "failure", true],
      ["rejected", { status: "completed", conclusion: "failure" }, "failure", true],
      ["superseded", { status: "completed", conclusion: "cancelled" }, "inactive", true],
    ]);
  });

  it("comments on the pull request only when a deploy succeeded or failed", () => {
    const deploy = { sha: "0123456789abcdef0123456789abcdef01234567", environment: "production" };
    const url = "https://github.example/o/r/runs/5";
    expect(deployComment(deploy, { phase: "succeeded", durationMs: 12_400 }, url)).toBe(
      `🚀 Deployed \`0123456\` to **production** in 12 s. [Details](${url})`,
    );
    expect(deployComment(deploy, { phase: "failed", durationMs: 3_600 }, url)).toBe(
      `❌ Deploying \`0123456\` to **production** failed after 4 s. [Details](${url})`,
    );
    expect(phases.filter((p) => deployComment(deploy, { phase: p }, url) !== undefined)).toEqual(["succeeded", "failed"]);
  });
});
