import { describe, expect, it } from "vitest";
import { loadAgentSettings } from "../../../src/agent/settings.ts";
import { claimOf, releasePatch } from "../../../src/agent/ownership.ts";
import { inventorySchema, nextInventory, ownershipLabels, withClaims, type Inventory } from "../../../src/core/inventory.ts";
import type { ResourceId } from "../../../src/core/identity.ts";
import type { KubeObject } from "../../../src/core/manifest.ts";
import { podSecurityChanges, podSecurityRefusal } from "../../../src/core/policy.ts";
import { generateSigningKeys } from "../../../src/core/signing.ts";

// Issue 23, item 7: objects without Sluice's labels are someone else's, and a repository does not
// change a Namespace's Pod Security labels unless the agent's policy says it may.

const owner = { repositoryId: 42, environment: "production" };
const closed = { allowAdoption: false, adoptUnmanaged: false };
const quota: KubeObject = { apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "compute", namespace: "team-a" } };
const labelled = (repositoryId: number, environment: string): KubeObject => ({
  ...quota,
  metadata: {
    name: "compute",
    namespace: "team-a",
    labels: ownershipLabels(repositoryId, environment),
    annotations: { "sluice.dev/repository": "acme/b" },
  },
});

describe("whose a live object is", () => {
  it("refuses an object without Sluice's labels unless the policy adopts unmanaged objects, naming the rule", () => {
    expect(claimOf(quota, owner, closed)).toEqual({
      action: "refuse",
      reason: expect.stringContaining("SLUICE_AGENT_ADOPT_UNMANAGED is true") as unknown,
    });
    // Taking over another repository's objects is a different permission: it does not adopt unmanaged ones.
    expect(claimOf(quota, owner, { allowAdoption: true, adoptUnmanaged: false }).action).toBe("refuse");
    expect(claimOf(quota, owner, { allowAdoption: false, adoptUnmanaged: true })).toEqual({ action: "adopt" });
  });

  it("creates what is not there, keeps its own, and takes another owner's only when allowed", () => {
    expect(claimOf(undefined, owner, closed)).toEqual({ action: "create" });
    expect(claimOf(labelled(42, "production"), owner, closed)).toEqual({ action: "keep" });
    expect(claimOf(labelled(7, "production"), owner, closed)).toEqual({
      action: "refuse",
      reason:
        "owned by acme/b (id 7), environment production; the agent does not take objects over unless SLUICE_AGENT_ALLOW_ADOPTION is true",
    });
    expect(claimOf(labelled(42, "staging"), owner, { ...closed, adoptUnmanaged: true }).action).toBe("refuse");
    expect(claimOf(labelled(7, "production"), owner, { allowAdoption: true, adoptUnmanaged: false })).toEqual({ action: "take-over" });
  });

  it("releases an adopted object by removing only Sluice's labels and annotation", () => {
    expect(releasePatch()).toEqual({
      metadata: {
        labels: { "app.kubernetes.io/managed-by": null, "sluice.dev/repository-id": null, "sluice.dev/environment": null },
        annotations: { "sluice.dev/repository": null },
      },
    });
  });
});

describe("Pod Security labels on a Namespace", () => {
  const id: ResourceId = { group: "", version: "v1", kind: "Namespace", namespace: "", name: "team-a" };
  const ns = (labels: Record<string, string>): KubeObject => ({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "team-a", labels },
  });
  const ENFORCE = "pod-security.kubernetes.io/enforce";

  it("names each label a repository sets, changes or makes the apply remove", () => {
    const live = ns({ [ENFORCE]: "baseline", "pod-security.kubernetes.io/warn": "restricted" });
    expect(podSecurityChanges(id, { desired: ns({ [ENFORCE]: "privileged" }), live, applied: ns({ [ENFORCE]: "privileged" }) })).toEqual([
      `sets ${ENFORCE} to "privileged" (live: "baseline")`,
      `removes pod-security.kubernetes.io/warn (live: "restricted")`,
    ]);
    expect(
      podSecurityChanges(id, { desired: ns({ [ENFORCE]: "privileged" }), live: undefined, applied: ns({ [ENFORCE]: "privileged" }) }),
    ).toEqual([`sets ${ENFORCE} to "privileged" (live: not set)`]);
  });

  it("finds no change when the repository leaves them as they are, and none on other kinds", () => {
    const live = ns({ [ENFORCE]: "baseline", team: "a" });
    expect(podSecurityChanges(id, { desired: ns({ [ENFORCE]: "baseline" }), live, applied: live })).toEqual([]);
    // Labels another manager set stay on the applied object: not a change.
    expect(podSecurityChanges(id, { desired: ns({ team: "b" }), live, applied: ns({ [ENFORCE]: "baseline", team: "b" }) })).toEqual([]);
    const cm = { ...id, kind: "ConfigMap", namespace: "team-a" };
    expect(podSecurityChanges(cm, { desired: ns({ [ENFORCE]: "privileged" }), live: undefined, applied: ns({}) })).toEqual([]);
  });

  it("refuses a change unless the policy allows it, naming the switch", () => {
    const changes = [`sets ${ENFORCE} to "privileged" (live: "baseline")`];
    expect(podSecurityRefusal(changes, { allowPodSecurityLabels: false })).toBe(
      `the repository sets ${ENFORCE} to "privileged" (live: "baseline"); a repository may not change a Namespace's pod-security.kubernetes.io/* labels unless SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS is true`,
    );
    expect(podSecurityRefusal(changes, { allowPodSecurityLabels: true })).toBeUndefined();
    expect(podSecurityRefusal([], { allowPodSecurityLabels: false })).toBeUndefined();
  });
});

describe("the inventory's record of adopted objects", () => {
  const id = (name: string): ResourceId => ({ group: "", version: "v1", kind: "ResourceQuota", namespace: "team-a", name });
  const inventory: Inventory = nextInventory(
    undefined,
    { repositoryId: 42, repository: "acme/a", environment: "production", objects: [] },
    { sha: "a".repeat(40), jobId: "j", digest: "d", appliedAt: "2026-11-27T12:00:00.000Z", reason: "merge" },
  );

  it("records what a deploy adopts, and forgets it once Sluice creates the object itself", () => {
    const adopted = withClaims(inventory, { adopted: [id("compute"), id("pods")], created: [] });
    expect(adopted.adopted).toEqual([id("compute"), id("pods")]);
    expect(withClaims(adopted, { adopted: [id("compute")], created: [id("pods")] }).adopted).toEqual([id("compute")]);
  });

  it("is the same inventory when nothing changes, so nothing is written", () => {
    const adopted = withClaims(inventory, { adopted: [id("compute")], created: [] });
    expect(withClaims(adopted, { adopted: [id("compute")], created: [id("other")] })).toBe(adopted);
  });

  it("is empty in inventories written before it was kept, so their objects are pruned as before", () => {
    const older: Record<string, unknown> = { ...inventory };
    delete older.adopted;
    expect(inventorySchema.parse(older).adopted).toEqual([]);
  });
});

describe("the agent's settings", () => {
  it("adopt nothing and keep Pod Security labels by default, and read both switches", async () => {
    const keys = generateSigningKeys();
    const base = {
      REDIS_URL: "redis://127.0.0.1:6379",
      SLUICE_AGENT_ENVIRONMENTS: "prod",
      SLUICE_AGENT_REPOSITORIES: "o/*=team-*",
      SLUICE_APP_PUBLIC_KEY: keys.publicKey,
      SLUICE_AGENT_SIGNING_KEY: keys.privateKey,
    };
    expect(await loadAgentSettings(base)).toMatchObject({ allowAdoption: false, adoptUnmanaged: false, allowPodSecurityLabels: false });
    expect(
      await loadAgentSettings({ ...base, SLUICE_AGENT_ADOPT_UNMANAGED: "true", SLUICE_AGENT_ALLOW_POD_SECURITY_LABELS: "true" }),
    ).toMatchObject({ adoptUnmanaged: true, allowPodSecurityLabels: true });
    await expect(loadAgentSettings({ ...base, SLUICE_AGENT_ADOPT_UNMANAGED: "yes" })).rejects.toThrow("SLUICE_AGENT_ADOPT_UNMANAGED");
  });
});
