import { describe, expect, it } from "vitest";
import { verifyJob } from "../../../src/agent/deployer.ts";
import { verifyPreviewRequest } from "../../../src/agent/live-preview.ts";
import { objectsDigest, type LivePreviewRequest, type LiveReport } from "../../../src/core/agent-protocol.ts";
import { liveSection } from "../../../src/core/live-preview.ts";
import { parseRepositoryRules } from "../../../src/core/policy.ts";
import { generateSigningKeys, privateKeyFromPem, publicKeyFromPem, seal } from "../../../src/core/signing.ts";

const keys = generateSigningKeys();
const now = Date.UTC(2026, 10, 27, 12);
const objects = [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "shop" }, data: { k: "v" } }];
const request: LivePreviewRequest = {
  version: 1,
  id: "live-1-2-3-production",
  repository: { owner: "acme", name: "shop", id: 1 },
  installationId: 9,
  environment: "production",
  pullRequest: 2,
  headSha: "a".repeat(40),
  seq: 3,
  settings: { namespace: "shop", prune: true },
  signedAt: new Date(now).toISOString(),
  expiresAt: new Date(now + 60_000).toISOString(),
  digest: objectsDigest(objects),
  objects: { inline: objects },
};
const policy = {
  rules: parseRepositoryRules("acme/*=shop", []),
  clusterKinds: [],
  allowAdoption: false,
  adoptUnmanaged: false,
  allowPodSecurityLabels: false,
  environments: ["production"],
  maxJobAgeMs: 3_600_000,
};
const deps = { appKey: publicKeyFromPem(keys.publicKey), policy, now: () => now };

describe("live-preview requests", () => {
  it("are their own signed kind: a preview request is never a deploy, and a deploy job never a preview", () => {
    const signed = seal("preview", request, privateKeyFromPem(keys.privateKey));
    expect(verifyPreviewRequest(signed, deps).id).toBe(request.id);
    expect(() => verifyJob(signed, deps)).toThrow("expected a signed job, got a signed preview");
    expect(() => verifyPreviewRequest(seal("job", request, privateKeyFromPem(keys.privateKey)), deps)).toThrow(
      "expected a signed preview, got a signed job",
    );
  });

  it("are refused when stale or for a repository the agent does not serve", () => {
    const sign = (r: LivePreviewRequest) => seal("preview", r, privateKeyFromPem(keys.privateKey));
    expect(() => verifyPreviewRequest(sign(request), { ...deps, now: () => now + 120_000 })).toThrow(/expired at/);
    expect(() => verifyPreviewRequest(sign({ ...request, repository: { owner: "evil", name: "shop", id: 7 } }), deps)).toThrow(
      "repository evil/shop is not allowed by this agent",
    );
  });
});

describe("live-preview requests for a fleet", () => {
  const sign = (r: LivePreviewRequest) => seal("preview", r, privateKeyFromPem(keys.privateKey));
  const onEu1 = { ...deps, policy: { ...policy, cluster: "eu-1" } };

  it("are answered only by the agent of the cluster they name", () => {
    expect(verifyPreviewRequest(sign({ ...request, cluster: "eu-1" }), onEu1).cluster).toBe("eu-1");
    expect(() => verifyPreviewRequest(sign({ ...request, cluster: "eu-2" }), onEu1)).toThrow(
      "preview request live-1-2-3-production is for cluster eu-2; this agent serves cluster eu-1",
    );
    expect(() => verifyPreviewRequest(sign(request), onEu1)).toThrow(
      "is for an environment without clusters; this agent serves cluster eu-1",
    );
    expect(() => verifyPreviewRequest(sign({ ...request, cluster: "eu-1" }), deps)).toThrow(
      "is for cluster eu-1; this agent serves no named cluster",
    );
  });
});

describe("the live section", () => {
  const answer = (diffs: number): LiveReport => ({
    version: 1,
    requestId: "r",
    repository: { owner: "acme", name: "shop", id: 1 },
    installationId: 9,
    environment: "production",
    pullRequest: 2,
    headSha: "a".repeat(40),
    seq: 3,
    changes: Array.from({ length: diffs }, (_, i) => ({
      group: "",
      version: "v1",
      kind: "ConfigMap",
      namespace: "shop",
      name: `cm-${i}`,
      action: "configure" as const,
      diff: `-  k: ${"x".repeat(2_000)}\n+  k: y`,
    })),
    unchanged: 4,
    prune: [],
    at: new Date(now).toISOString(),
  });

  it("keeps to its budget and names every live change whose diff did not fit", () => {
    const text = liveSection([{ environment: "production", status: { state: "answered", report: answer(30) } }], 10_000);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(10_000);
    expect(text).toContain("**`production`**: 30 objects would change live, 0 would be pruned, 0 would be refused (4 unchanged).");
    expect(text).toContain("Live diffs not shown here (too long for a comment):");
    expect(text).toContain("`ConfigMap shop/cm-29`");
  });
});
