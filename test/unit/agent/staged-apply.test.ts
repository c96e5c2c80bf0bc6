import { execFileSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { applyAllStaged } from "../../../src/agent/apply.ts";
import { Deployer } from "../../../src/agent/deployer.ts";
import { InventoryStore } from "../../../src/agent/inventory-store.ts";
import { connectRedis } from "../../../src/redis/connection.ts";
import { mergeJob } from "../../helpers/agent-settings.ts";
import { loadCredentials } from "../../../src/agent/kube/credentials.ts";
import { Cluster, KubeApiError } from "../../../src/agent/kube/cluster.ts";

/**
 * A TLS proxy in front of the test kube-apiserver that answers `503 ServiceUnavailable` to the
 * writes (server-side applies, not dry-runs) whose object name `failing` picks, and forwards the
 * rest: the API server throttling or restarting in the middle of a deploy.
 */
async function faultyApiServer(kubeconfigPath: string, failing: (name: string) => boolean): Promise<{ cluster: Cluster; server: Server }> {
  const real = loadCredentials(kubeconfigPath);
  const upstream = await real.options();
  const dir = mkdtempSync(join(tmpdir(), "sluice-faulty-apiserver-"));
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"],
      ...["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
    ],
    { stdio: "ignore" },
  );
  const cert = readFileSync(join(dir, "cert.pem"));
  const key = readFileSync(join(dir, "key.pem"));
  rmSync(dir, { recursive: true });
  const server = createServer({ cert, key }, (req, res) => {
    const url = new URL(req.url ?? "/", real.server);
    const name = url.pathname.split("/").at(-1) ?? "";
    if (req.method === "PATCH" && !url.searchParams.has("dryRun") && failing(name)) {
      req.resume();
      res.writeHead(503, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ kind: "Status", status: "Failure", reason: "ServiceUnavailable", message: "the server is restarting", code: 503 }),
      );
      return;
    }
    const headers = { ...req.headers, ...(upstream.headers as Record<string, string> | undefined) };
    delete headers.host;
    const forward = request(url, { ...upstream, method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on("error", () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const cluster = new Cluster(
    { server: new URL(`https://127.0.0.1:${port}`), options: () => Promise.resolve({ ca: cert }) },
    { fieldManager: "sluice-test", qps: 50 },
  );
  return { cluster, server };
}

const suffix = randomUUID().slice(0, 8);
const names = ["a", "b", "c"].map((n) => `staged-${n}-${suffix}`);
const planned = names.map((name) => ({
  id: { group: "", version: "v1", kind: "ConfigMap", namespace: "default", name },
  object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default" }, data: { key: name } },
}));

describe("a staged apply stopped by a transient error", () => {
  let faulty: { cluster: Cluster; server: Server };
  let direct: Cluster;

  beforeAll(async () => {
    // The second object's write fails: the first is in the cluster by then, the third never started.
    faulty = await faultyApiServer(inject("kubeconfigPath"), (name) => name === names[1]);
    direct = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 50 });
  });

  afterAll(async () => {
    for (const p of planned) await direct.delete(p.object).catch(() => undefined);
    faulty.cluster.close();
    direct.close();
    await new Promise((resolve) => faulty.server.close(resolve));
  });

  it("returns the changes made before the error, with the error, instead of losing them", async () => {
    const notes: string[] = [];
    let now = 0;
    const outcome = await applyAllStaged(faulty.cluster, planned, {
      concurrency: 1,
      owner: { repositoryId: 1, environment: "staged" },
      allowAdoption: false,
      adoptUnmanaged: false,
      allowPodSecurityLabels: false,
      clock: { now: () => (now += 5), sleep: () => Promise.resolve() },
      progress: (applied, total, note) => {
        notes.push(`${applied} of ${total}: ${note}`);
        return Promise.resolve();
      },
    });

    expect(outcome.changes.map((c) => [c.name, c.action])).toEqual([[names[0], "created"]]);
    expect(outcome.error).toBeInstanceOf(KubeApiError);
    expect(outcome.error).toMatchObject({ status: 503, transient: true });
    expect(outcome.error?.message).toBe(`ConfigMap default/${names[1]}: the server is restarting`);
    expect(notes).toEqual(["0 of 3: applying"]);
    // What the change set says was created is in the cluster; what it leaves out is not.
    const [first, second, third] = planned.map((p) => p.object);
    expect(await direct.get(first ?? {})).toMatchObject({ data: { key: names[0] } });
    expect(await direct.get(second ?? {})).toBeUndefined();
    expect(await direct.get(third ?? {})).toBeUndefined();
  });
});

describe("a deploy stopped by a transient error", () => {
  let faulty: { cluster: Cluster; server: Server };
  let direct: Cluster;
  const repositoryId = 250_000 + Math.floor(Math.random() * 1000);
  const objects = ["d", "e"].map((n) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `deploy-${n}-${suffix}`, namespace: "default" },
    data: { key: n },
  }));

  beforeAll(async () => {
    faulty = await faultyApiServer(inject("kubeconfigPath"), (name) => name === `deploy-e-${suffix}`);
    direct = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 50 });
  });

  afterAll(async () => {
    for (const object of objects) await direct.delete(object).catch(() => undefined);
    // The inventory the deploy accepted the job into: named as InventoryStore names it.
    const inventory = `sluice-inventory-${createHash("sha256").update(`${repositoryId}\nstaged`).digest("hex").slice(0, 16)}`;
    await direct
      .delete({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: inventory, namespace: "default" } })
      .catch(() => undefined);
    faulty.cluster.close();
    direct.close();
    await new Promise((resolve) => faulty.server.close(resolve));
  });

  it("ends with a retryable DeployError that carries the changes made so far", async () => {
    const redis = connectRedis(inject("redisUrl"));
    try {
      const deployer = new Deployer({
        redis,
        cluster: faulty.cluster,
        inventories: new InventoryStore(faulty.cluster, "default"),
        appKey: [],
        policy: {
          rules: [{ repositories: "octo/web", namespaces: ["default"] }],
          clusterKinds: [],
          allowAdoption: false,
          adoptUnmanaged: false,
          allowPodSecurityLabels: false,
          environments: ["staged"],
          maxJobAgeMs: 600_000,
        },
        concurrency: 1,
        healthTimeoutMs: 1_000,
        clock: { now: () => 0, sleep: () => Promise.resolve() },
      });
      const job = mergeJob({
        environment: "staged",
        namespace: "default",
        repositoryId,
        installationId: 1,
        version: 1,
        shaDigit: "a",
        objects,
        now: 0,
      });

      const deploy = deployer.deploy(job, objects, () => Promise.resolve());

      await expect(deploy).rejects.toMatchObject({
        name: "DeployError",
        permanent: false,
        end: "failed",
        message: `ConfigMap default/deploy-e-${suffix}: the server is restarting`,
        objects: [
          { name: `deploy-d-${suffix}`, action: "created" },
          { name: `deploy-e-${suffix}`, action: "skipped" },
        ],
      });
      expect(await direct.get(objects[0] ?? {})).toMatchObject({ data: { key: "d" } });
    } finally {
      redis.disconnect();
    }
  });
});

describe("a staged apply's progress", () => {
  it("counts the definitions written before it waits for them to be established", async () => {
    const cluster = Cluster.connect(inject("kubeconfigPath"), { fieldManager: "sluice-test", qps: 50 });
    const namespace = `staged-${suffix}`;
    const objects = [
      {
        id: { group: "", version: "v1", kind: "Namespace", namespace: "", name: namespace },
        object: { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
      },
      {
        id: { group: "", version: "v1", kind: "ConfigMap", namespace, name: "app" },
        object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "app", namespace }, data: { key: "app" } },
      },
    ];
    const notes: string[] = [];
    try {
      const outcome = await applyAllStaged(cluster, objects, {
        concurrency: 2,
        owner: { repositoryId: 1, environment: "staged" },
        allowAdoption: false,
        adoptUnmanaged: false,
        allowPodSecurityLabels: false,
        clock: { now: () => 0, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
        progress: (applied, total, note) => {
          notes.push(`${applied} of ${total}: ${note}`);
          return Promise.resolve();
        },
      });

      expect(outcome.error).toBeUndefined();
      expect(outcome.changes.map((c) => [c.kind, c.action])).toEqual([
        ["Namespace", "created"],
        ["ConfigMap", "created"],
      ]);
      expect(notes).toEqual(["1 of 2: waiting for 1 definitions to be established", "1 of 2: applying", "2 of 2: applying"]);
    } finally {
      await cluster.delete(objects[0]?.object ?? {}).catch(() => undefined);
      cluster.close();
    }
  });
});
