import { randomUUID } from "node:crypto";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { generatePki, type TestPki } from "../env/certs.ts";
import { freePort } from "../env/ports.ts";
import { startRedis, type RedisServer } from "../env/redis.ts";
import { testAgentSettings } from "../helpers/agent-settings.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { pushPayload as push } from "../helpers/payloads.ts";
import { startAgent, type RunningAgent } from "../../src/agent/start.ts";
import { loadSettings } from "../../src/app/settings.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { liveSettingsValue } from "../helpers/live.ts";

const OWNER = "sluice-test";
const DATABASE = 23;
const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
let pki: TestPki;
let tlsPort: number;
let server: RedisServer;
let h: AppHarness;
let kube: KubernetesObjectApi;
let agent: RunningAgent | undefined;
const namespaces: string[] = [];

/** The settings that reach the test's Redis over TLS: its private CA, and a client certificate, which redis-server asks for by default. */
const tlsSettings = (): Record<string, string> => ({
  REDIS_URL: `rediss://127.0.0.1:${tlsPort}/${DATABASE}`,
  SLUICE_REDIS_CA_PATH: pki.caCert,
  SLUICE_REDIS_CERT_PATH: pki.clientCert,
  SLUICE_REDIS_KEY_PATH: pki.clientKey,
});

/** A namespace of the test's own, deleted at the end. */
function namespaceName(prefix: string): string {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  namespaces.push(name);
  return name;
}

/** An agent's settings on the test apiserver with `env` over the defaults. */
function agentSettings(env: Record<string, string>) {
  return testAgentSettings(
    { redisUrl: "", kubeconfigPath: inject("kubeconfigPath"), appPublicKey: appKeys.publicKey, agentPrivateKey: agentKeys.privateKey },
    { SLUICE_AGENT_ENVIRONMENTS: "tls-env", SLUICE_AGENT_REPOSITORIES: `${OWNER}/*`, SLUICE_AGENT_NAMESPACES: "deploy-*", ...env },
  );
}

beforeAll(async () => {
  const dir = await tempDir("sluice-redis-tls-");
  pki = await generatePki(dir);
  tlsPort = await freePort();
  // TLS on its own port with the test CA's serving certificate for 127.0.0.1; `tls-auth-clients`
  // keeps its default (yes): a client without a certificate from that CA is turned away. The
  // plain port is for the harness's own checks and cleanup.
  server = await startRedis(dir, undefined, [
    "--tls-port",
    String(tlsPort),
    "--tls-cert-file",
    pki.servingCert,
    "--tls-key-file",
    pki.servingKey,
    "--tls-ca-cert-file",
    pki.caCert,
  ]);
  h = await startHarness({
    redisUrl: server.url,
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: DATABASE,
    deployKeys: { jobSigningKey: appKeys.privateKey, agentPublicKeys: agentKeys.publicKey },
    env: tlsSettings(),
  });
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  kube = KubernetesObjectApi.makeApiClient(kc);
});
afterAll(async () => {
  await agent?.stop();
  await h.stop();
  await server.process.stop();
  for (const name of namespaces) await kube.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name } }).catch(() => undefined);
  await removeCheckouts();
});
afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

const liveValue = (namespace: string): Promise<string | undefined> => liveSettingsValue(kube, namespace);

describe("Redis over TLS with a private CA and client certificates", { timeout: 180_000 }, () => {
  it("lets the app and an agent reach it, and a merge deploys", async () => {
    const repoId = 7401;
    const repoName = `app-${repoId}`;
    const namespace = namespaceName("deploy");
    const agentNamespace = namespaceName("sluice-system");
    const head = "e".repeat(40);
    await kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: agentNamespace } });
    h.github.addRepo(OWNER, repoName, repoId);
    await h.github.addCommit(
      OWNER,
      repoName,
      head,
      await checkout(undefined, {
        ".github/sluice.yml": `version: 1\nenvironments:\n  - name: tls-env\n    path: manifests\n    namespace: ${namespace}\n    branch: main\n`,
        "manifests/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n`,
        "manifests/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: over-tls\n`,
      }),
    );
    agent = await startAgent(
      await agentSettings({
        ...tlsSettings(),
        SLUICE_AGENT_CLUSTER_KINDS: "Namespace",
        SLUICE_AGENT_NAMESPACE: agentNamespace,
        SLUICE_HEALTH_TIMEOUT_SECONDS: "30",
      }),
      { log: () => undefined, now: h.clock.read },
    );
    await agent.started;

    h.github.setBranch(OWNER, repoName, "main", head);
    const { status } = await h.deliver("push", push({ owner: OWNER, repo: repoName, repoId, installation: 31 }, head));

    expect(status).toBe(200);
    await expect.poll(() => liveValue(namespace), { timeout: 90_000, interval: 250 }).toBe("over-tls");
    await expect
      .poll(
        () =>
          [...h.github.checkRuns.values()]
            .filter((r) => r.head_sha === head && r.name === deployCheckName("tls-env"))
            .map((r) => r.conclusion),
        { timeout: 60_000, interval: 200 },
      )
      .toEqual(["success"]);
  });

  it("refuses TLS files it cannot use at start, naming the variable", async () => {
    await expect(agentSettings({ ...tlsSettings(), SLUICE_REDIS_CA_PATH: "/nonexistent/ca.crt" })).rejects.toThrow(
      /SLUICE_REDIS_CA_PATH: cannot read "\/nonexistent\/ca.crt"/,
    );
    await expect(agentSettings({ ...tlsSettings(), SLUICE_REDIS_KEY_PATH: "" })).rejects.toThrow(
      /SLUICE_REDIS_CERT_PATH and SLUICE_REDIS_KEY_PATH go together/,
    );
    await expect(agentSettings({ ...tlsSettings(), REDIS_URL: `redis://127.0.0.1:${tlsPort}` })).rejects.toThrow(
      /SLUICE_REDIS_CA_PATH.*used only with rediss:\/\//,
    );
    // The app reads the same three.
    await expect(
      loadSettings({
        APP_ID: "1",
        PRIVATE_KEY: "key",
        WEBHOOK_SECRET: "secret",
        ...tlsSettings(),
        SLUICE_REDIS_CERT_PATH: "/nonexistent/client.crt",
      }),
    ).rejects.toThrow(/SLUICE_REDIS_CERT_PATH: cannot read "\/nonexistent\/client.crt"/);
  });
});
