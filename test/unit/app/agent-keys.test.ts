import { describe, expect, it } from "vitest";
import { AgentKeys, compareWithSealed, type Rejection } from "../../../src/app/agents/agent-keys.ts";
import { parseAgentKeys } from "../../../src/app/settings.ts";
import { driftReportSchema, type DriftReport } from "../../../src/core/agent-protocol.ts";
import { generateSigningKeys, privateKeyFromPem, publicKeyFromPem, seal } from "../../../src/core/signing.ts";

const first = generateSigningKeys();
const second = generateSigningKeys();

const drift = (environment: string, repositoryId: number, cluster?: string): DriftReport => ({
  version: 1,
  repository: { owner: "acme", name: "shop", id: repositoryId },
  installationId: 1,
  environment,
  ...(cluster ? { cluster } : {}),
  sha: "a".repeat(40),
  jobId: `merge-${repositoryId}-${environment}-a`,
  checked: 0,
  drifted: [],
  healed: [],
  gaveUp: [],
  at: "2026-11-27T12:00:00.000Z",
});

/** Opens one drift report with `keys`: what `use` was handed, and what was logged and counted. */
async function consume(
  keys: readonly { pem: string; environments?: string[]; repositories?: number[]; clusters?: string[] }[],
  report: DriftReport,
) {
  const rejected: Rejection[] = [];
  const logged: { message: string; details: Record<string, unknown> }[] = [];
  const used: DriftReport[] = [];
  const agentKeys = new AgentKeys(
    keys.map((k) => ({ ...k, key: publicKeyFromPem(k.pem) })),
    { accepted: () => undefined, rejected: (_kind, reason) => rejected.push(reason) },
  );
  const log = {
    info: () => undefined,
    error: () => undefined,
    warn: (details: Record<string, unknown>, message: string) => logged.push({ message, details }),
  };
  await agentKeys.consume("drift", seal("drift", report, privateKeyFromPem(first.privateKey)), {
    schema: driftReportSchema,
    log,
    use: (message) => {
      used.push(message);
      return Promise.resolve({ accepted: true });
    },
  });
  return { used, rejected, logged };
}

describe("agent key files", () => {
  it("read keys without bindings, with the environments line as before, and with a repositories line in either order", () => {
    const text = [
      first.publicKey.trim(),
      "# environments: production, staging",
      second.publicKey.trim(),
      "# the staging agent of team a",
      "# repositories: 101, 202",
      "# environments: staging",
      first.publicKey.trim(),
      "# environments: staging",
      "# repositories: 303",
      second.publicKey.trim(),
      "",
    ].join("\n");
    expect(parseAgentKeys(text)).toEqual([
      { pem: first.publicKey.trim() },
      { pem: second.publicKey.trim(), environments: ["production", "staging"] },
      { pem: first.publicKey.trim(), environments: ["staging"], repositories: [101, 202] },
      { pem: second.publicKey.trim(), environments: ["staging"], repositories: [303] },
    ]);
  });

  it("read a clusters line, and refuse one that names nothing or something that is not a cluster's name", () => {
    expect(parseAgentKeys(`# environments: production\n# clusters: eu-1, eu-2\n${first.publicKey}`)).toEqual([
      { pem: first.publicKey.trim(), environments: ["production"], clusters: ["eu-1", "eu-2"] },
    ]);
    expect(() => parseAgentKeys(`# clusters:\n${first.publicKey}`)).toThrow('key 1 (line 1): "# clusters:" names no cluster');
    expect(() => parseAgentKeys(`# clusters: EU_1\n${first.publicKey}`)).toThrow(
      'names "EU_1"; a cluster is named as its agent\'s SLUICE_AGENT_CLUSTER',
    );
    expect(() => parseAgentKeys(`# cluster: eu-1\n${first.publicKey}`)).toThrow(
      '"# cluster: eu-1" binds nothing: the line is "# clusters: …"',
    );
  });

  it("refuse a repositories line that names owner/name, names nothing, or a binding line spelled in the singular", () => {
    expect(() => parseAgentKeys(`# repositories: acme/shop\n${first.publicKey}`)).toThrow(
      'SLUICE_AGENT_PUBLIC_KEYS: key 1 (line 1): "# repositories: acme/shop" names "acme/shop"; repositories are numeric ids',
    );
    expect(() => parseAgentKeys(`${first.publicKey}# repositories:\n${second.publicKey}`)).toThrow(
      'SLUICE_AGENT_PUBLIC_KEYS: key 2 (line 4): "# repositories:" names no repository',
    );
    expect(() => parseAgentKeys(`# repository: 101\n${first.publicKey}`)).toThrow(
      'key 1 (line 1): "# repository: 101" binds nothing: the line is "# repositories: …"',
    );
  });
});

describe("agent key bindings", () => {
  it("hand on a message whose key is bound to its environment and repository", async () => {
    const { used, rejected } = await consume(
      [{ pem: first.publicKey, environments: ["staging"], repositories: [101] }],
      drift("staging", 101),
    );
    expect(used).toHaveLength(1);
    expect(rejected).toEqual([]);
  });

  it("drop, log and count a message about a repository its key is not bound to", async () => {
    const { used, rejected, logged } = await consume(
      [{ pem: first.publicKey, environments: ["staging"], repositories: [101] }],
      drift("staging", 202),
    );
    expect(used).toEqual([]);
    expect(rejected).toEqual(["repository"]);
    expect(logged).toEqual([
      {
        message: "agent message signed by a key not bound to its repository dropped",
        details: { kind: "drift", repository: 202, bound: [101] },
      },
    ]);
  });

  it("drop a message from another cluster, or from none, signed by a key bound to clusters", async () => {
    const keys = [{ pem: first.publicKey, environments: ["production"], clusters: ["eu-1"] }];
    expect((await consume(keys, drift("production", 101, "eu-1"))).used).toHaveLength(1);
    // eu-1's key speaking for eu-2 (a stolen key, or a misconfigured agent): its drift is not eu-2's.
    const other = await consume(keys, drift("production", 101, "eu-2"));
    expect(other.used).toEqual([]);
    expect(other.rejected).toEqual(["cluster"]);
    expect(other.logged).toEqual([
      {
        message: "agent message signed by a key not bound to its cluster dropped",
        details: { kind: "drift", cluster: "eu-2", bound: ["eu-1"] },
      },
    ]);
    expect((await consume(keys, drift("production", 101))).rejected).toEqual(["cluster"]);
    // A key bound to no cluster speaks for any, as before fleets.
    expect((await consume([{ pem: first.publicKey }], drift("production", 101, "eu-2"))).used).toHaveLength(1);
  });

  it("take any one of a key's entries that allows the message, and nothing across two entries", async () => {
    const keys = [
      { pem: first.publicKey, environments: ["staging"], repositories: [101] },
      { pem: first.publicKey, environments: ["production"], repositories: [202] },
    ];
    expect((await consume(keys, drift("production", 202))).used).toHaveLength(1);
    expect((await consume(keys, drift("staging", 101))).used).toHaveLength(1);
    // Staging of the second entry's repository: each entry refuses it.
    expect((await consume(keys, drift("staging", 202))).rejected).toEqual(["repository"]);
  });
});

describe("comparing a message with what the app sealed", () => {
  const sealed = { id: "merge-7-production-a", environment: "production", repositoryId: 7, installationId: 1, sha: "a".repeat(40) };

  it("accepts only when every field is the same, and names the fields that differ", () => {
    expect(compareWithSealed(sealed, sealed, {})).toEqual({ accepted: true });
    expect(compareWithSealed({ ...sealed, environment: "staging", installationId: 2 }, sealed, { job: sealed.id })).toEqual({
      accepted: false,
      reason: "mismatch",
      details: {
        job: sealed.id,
        fields: ["environment", "installationId"],
        reported: { environment: "staging", installationId: 2 },
        sealed: { environment: "production", installationId: 1 },
      },
    });
  });
});
