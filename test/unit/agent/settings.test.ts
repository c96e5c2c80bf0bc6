import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAll } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { loadAgentSettings, type AgentSettings } from "../../../src/agent/settings.ts";
import { verifyJob } from "../../../src/agent/deployer.ts";
import { objectsDigest, type AgentJob } from "../../../src/core/agent-protocol.ts";
import { generateSigningKeys, privateKeyFromPem, seal } from "../../../src/core/signing.ts";
import { removeCheckouts, tempDir } from "../../helpers/checkouts.ts";

afterAll(async () => {
  await removeCheckouts();
});

const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();

/** The least an agent starts with, as its Secret and ConfigMap give it. */
function env(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    REDIS_URL: "redis://redis.sluice-system:6379",
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: "production",
    SLUICE_AGENT_REPOSITORIES: "acme/*=team-*",
    ...extra,
  };
}

/** What `verifyJob` reads of an agent's settings. */
function verifying(settings: AgentSettings): Parameters<typeof verifyJob>[1] {
  return {
    appKey: settings.appKeys,
    policy: {
      rules: settings.rules,
      clusterKinds: settings.clusterKinds,
      allowAdoption: settings.allowAdoption,
      adoptUnmanaged: settings.adoptUnmanaged,
      allowPodSecurityLabels: settings.allowPodSecurityLabels,
      environments: settings.environments,
      maxJobAgeMs: settings.maxJobAgeMs,
      cluster: settings.cluster,
    },
  };
}

/** A deploy job of `environment` (for one cluster of a fleet, `cluster`), signed by `privateKey`. */
function signedJob(privateKey: string, environment = "production", cluster?: string) {
  const objects = [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "web", namespace: "team-a" }, data: { v: "1" } }];
  const job: AgentJob = {
    version: 1,
    id: `merge-7-${environment}-${"a".repeat(40)}`,
    repository: { owner: "acme", name: "web", id: 7 },
    installationId: 1,
    environment,
    ...(cluster ? { cluster } : {}),
    sha: "a".repeat(40),
    reason: "merge",
    requestedBy: "octocat",
    createdAt: new Date(0).toISOString(),
    settings: { namespace: "team-a", prune: true, allowEmpty: false, selfHeal: false, driftIgnore: [] },
    sequence: 1,
    hold: "keep",
    signedAt: new Date(0).toISOString(),
    expiresAt: new Date(600_000).toISOString(),
    digest: objectsDigest(objects),
    objects: { inline: objects },
  };
  return seal("job", job, privateKeyFromPem(privateKey));
}

describe("the agent's settings", () => {
  it("requires REDIS_URL instead of reaching for a Redis on localhost", async () => {
    await expect(loadAgentSettings(env({ REDIS_URL: undefined }))).rejects.toThrow(
      "REDIS_URL: REDIS_URL is required: redis://host:port of the Redis the app uses",
    );
    await expect(loadAgentSettings(env({ REDIS_URL: "" }))).rejects.toThrow("REDIS_URL is required");
  });

  it("refuses a public key that does not parse at start-up, naming the variable", async () => {
    await expect(
      loadAgentSettings(env({ SLUICE_APP_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n" })),
    ).rejects.toThrow(/^invalid configuration:\n {2}SLUICE_APP_PUBLIC_KEY: key 1 of 1: the verification key is not a PEM public key/);
    await expect(loadAgentSettings(env({ SLUICE_APP_PUBLIC_KEY: "ssh-ed25519 AAAA" }))).rejects.toThrow(
      'SLUICE_APP_PUBLIC_KEY: a line outside any PEM key: "ssh-ed25519 AAAA"',
    );
    // The agent's own key is a private key: its public key in its place is refused, named.
    await expect(loadAgentSettings(env({ SLUICE_AGENT_SIGNING_KEY: agentKeys.publicKey }))).rejects.toThrow(
      "SLUICE_AGENT_SIGNING_KEY: the signing key is not a PEM private key",
    );
  });

  it("names the *_PATH variable and its file when the file cannot be read or does not hold a key", async () => {
    const dir = await tempDir("sluice-agent-settings-");
    const missing = join(dir, "missing.pem");
    await expect(loadAgentSettings(env({ SLUICE_APP_PUBLIC_KEY: undefined, SLUICE_APP_PUBLIC_KEY_PATH: missing }))).rejects.toThrow(
      `SLUICE_APP_PUBLIC_KEY_PATH: cannot read "${missing}": ENOENT`,
    );
    await expect(loadAgentSettings(env({ SLUICE_AGENT_SIGNING_KEY: undefined, SLUICE_AGENT_SIGNING_KEY_PATH: missing }))).rejects.toThrow(
      `SLUICE_AGENT_SIGNING_KEY_PATH: cannot read "${missing}": ENOENT`,
    );
    const wrong = join(dir, "wrong.pem");
    await writeFile(wrong, appKeys.publicKey);
    await expect(loadAgentSettings(env({ SLUICE_AGENT_SIGNING_KEY: undefined, SLUICE_AGENT_SIGNING_KEY_PATH: wrong }))).rejects.toThrow(
      `SLUICE_AGENT_SIGNING_KEY_PATH ("${wrong}"): the signing key is not a PEM private key`,
    );
    await expect(loadAgentSettings(env({ SLUICE_APP_PUBLIC_KEY: undefined }))).rejects.toThrow(
      "SLUICE_APP_PUBLIC_KEY or SLUICE_APP_PUBLIC_KEY_PATH is required",
    );
  });

  it("takes several app public keys, inline or in a file, and a job signed by any of them verifies (issue 24)", async () => {
    const next = generateSigningKeys();
    const other = generateSigningKeys();
    const both = `# the key being retired\n${appKeys.publicKey}\n# the new key\n${next.publicKey}`;
    const dir = await tempDir("sluice-agent-settings-");
    await writeFile(join(dir, "app-public-keys.pem"), both);
    const inline = await loadAgentSettings(env({ SLUICE_APP_PUBLIC_KEY: both }));
    const fromFile = await loadAgentSettings(
      env({ SLUICE_APP_PUBLIC_KEY: undefined, SLUICE_APP_PUBLIC_KEY_PATH: join(dir, "app-public-keys.pem") }),
    );
    for (const settings of [inline, fromFile]) {
      expect(settings.appKeys).toHaveLength(2);
      const deps = verifying(settings);
      expect(verifyJob(signedJob(appKeys.privateKey), deps).id).toBe(`merge-7-production-${"a".repeat(40)}`);
      expect(verifyJob(signedJob(next.privateKey), deps).id).toBe(`merge-7-production-${"a".repeat(40)}`);
      expect(() => verifyJob(signedJob(other.privateKey), deps)).toThrow(
        "the job's signature does not verify with the configured public keys (2)",
      );
    }
    // One key, as before: only its jobs verify.
    const one = await loadAgentSettings(env());
    const deps = verifying(one);
    expect(() => verifyJob(signedJob(next.privateKey), deps)).toThrow("the job's signature does not verify with the configured public key");
  });

  it("takes the jobs of its own cluster of a fleet alone: not another cluster's, not an environment's without clusters", async () => {
    const eu1 = verifying(await loadAgentSettings(env({ SLUICE_AGENT_CLUSTER: "eu-1" })));
    expect(verifyJob(signedJob(appKeys.privateKey, "production", "eu-1"), eu1).cluster).toBe("eu-1");
    // Moved to this cluster's queue by someone who can write to Redis: signed for eu-2, refused here.
    expect(() => verifyJob(signedJob(appKeys.privateKey, "production", "eu-2"), eu1)).toThrow(
      `job merge-7-production-${"a".repeat(40)} is for cluster eu-2; this agent serves cluster eu-1`,
    );
    expect(() => verifyJob(signedJob(appKeys.privateKey, "production"), eu1)).toThrow(
      "is for an environment without clusters; this agent serves cluster eu-1",
    );
    const single = verifying(await loadAgentSettings(env()));
    expect(() => verifyJob(signedJob(appKeys.privateKey, "production", "eu-1"), single)).toThrow(
      "is for cluster eu-1; this agent serves no named cluster",
    );
    await expect(loadAgentSettings(env({ SLUICE_AGENT_CLUSTER: "EU 1" }))).rejects.toThrow(
      /SLUICE_AGENT_CLUSTER: must be lowercase letters/,
    );
  });

  it("stops within a deadline shorter than the shipped Deployment's grace period", async () => {
    const manifest = await readFile(fileURLToPath(new URL("../../../deploy/agent/deployment.yaml", import.meta.url)), "utf8");
    const deployment = loadAll(manifest).find((d) => (d as { kind?: string }).kind === "Deployment") as {
      spec: { template: { spec: { terminationGracePeriodSeconds: number } } };
    };
    const grace = deployment.spec.template.spec.terminationGracePeriodSeconds;
    const settings = await loadAgentSettings(env());
    expect(settings.stopTimeoutMs).toBeGreaterThan(0);
    expect(settings.stopTimeoutMs).toBeLessThan(grace * 1000);
    expect((await loadAgentSettings(env({ SLUICE_AGENT_STOP_TIMEOUT_SECONDS: "20" }))).stopTimeoutMs).toBe(20_000);
  });
});
