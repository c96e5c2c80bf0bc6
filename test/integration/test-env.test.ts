import { randomUUID } from "node:crypto";
import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  VersionApi,
  Watch,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const FIELD_MANAGER = "sluice-test";

function kubeClient(): { kc: KubeConfig; api: KubernetesObjectApi } {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  return { kc, api: KubernetesObjectApi.makeApiClient(kc) };
}

/** What the tests read back from the server. */
type Live = KubernetesObject & {
  spec?: { size?: number };
  data?: Record<string, string>;
  status?: { conditions?: { type: string; status: string }[] };
};

function apply(
  api: KubernetesObjectApi,
  object: object,
  options: { dryRun?: boolean; force?: boolean; manager?: string } = {},
): Promise<Live> {
  return api.patch<Live>(
    object,
    undefined,
    options.dryRun ? "All" : undefined,
    options.manager ?? FIELD_MANAGER,
    options.force ?? false,
    PatchStrategy.ServerSideApply,
  );
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

describe("the real kube-apiserver", () => {
  const { kc, api } = kubeClient();
  const suffix = randomUUID().slice(0, 8);
  const namespace = `smoke-${suffix}`;
  const group = `smoke${suffix}.sluice.dev`;
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: { type: "object", properties: { spec: { type: "object", properties: { size: { type: "integer" } } } } },
          },
        },
      ],
    },
  };
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: "web" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image: "nginx:1.27" }] } },
    },
  };

  beforeAll(async () => {
    await apply(api, { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  });

  afterAll(async () => {
    await api.delete({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }).catch(() => undefined);
    await api.delete(crd).catch(() => undefined);
  });

  it("reports its real version", async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
  });

  it("applies a Namespace, a CRD, a custom resource and a Deployment with server-side apply", async () => {
    const appliedCrd = await apply(api, crd);
    expect(appliedCrd.metadata?.managedFields?.some((f) => f.manager === FIELD_MANAGER)).toBe(true);
    await expect
      .poll(
        async () => {
          const live = await api.read<Live>(crd);
          return live.status?.conditions?.find((c) => c.type === "Established")?.status;
        },
        { timeout: 20_000, interval: 200 },
      )
      .toBe("True");

    const widget = { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w1", namespace }, spec: { size: 3 } };
    const appliedWidget = await apply(api, widget);
    expect(appliedWidget.spec?.size).toBe(3);

    const appliedDeployment = await apply(api, deployment);
    expect(appliedDeployment.metadata?.managedFields?.map((f) => f.manager)).toContain(FIELD_MANAGER);
  });

  it("writes nothing on dryRun=All", async () => {
    const configMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "dry", namespace }, data: { a: "1" } };
    const returned = await apply(api, configMap, { dryRun: true });
    expect(returned.metadata?.name).toBe("dry");
    expect(await statusOf(api.read(configMap))).toBe(404);
  });

  it("answers 409 to a conflicting apply without force, and accepts it with force", async () => {
    const configMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "contested", namespace }, data: { owner: "first" } };
    await apply(api, configMap, { manager: "first-manager" });
    const contested = { ...configMap, data: { owner: "second" } };
    expect(await statusOf(apply(api, contested, { manager: "second-manager" }))).toBe(409);
    const forced = await apply(api, contested, { manager: "second-manager", force: true });
    expect(forced.data?.owner).toBe("second");
  });

  it("lists and watches", async () => {
    const names = ["w-a", "w-b"];
    const seen: string[] = [];
    const watch = new Watch(kc);
    const done = new Promise<void>((resolve, reject) => {
      void watch
        .watch(
          `/api/v1/namespaces/${namespace}/configmaps`,
          {},
          (phase, object: KubernetesObject) => {
            const name = object.metadata?.name ?? "";
            if (phase === "ADDED" && names.includes(name) && !seen.includes(name)) seen.push(name);
            if (seen.length === names.length) resolve();
          },
          (error: unknown) => {
            if (error) reject(error instanceof Error ? error : new Error("watch failed"));
          },
        )
        .then(
          (controller) =>
            done.finally(() => {
              controller.abort();
            }),
          reject,
        );
    });
    for (const name of names) await apply(api, { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data: {} });
    await done;
    expect(seen.sort()).toEqual(names);
    const list = await api.list("v1", "ConfigMap", namespace);
    expect(list.items.map((i) => i.metadata?.name)).toEqual(expect.arrayContaining(names));
  });

  it("runs kube-controller-manager, so a Deployment with 0 replicas becomes Available", async () => {
    expect(inject("controllers")).toBe(true);
    await apply(api, deployment);
    await expect
      .poll(
        async () => {
          const live = await api.read<Live>(deployment);
          return live.status?.conditions?.find((c) => c.type === "Available")?.status;
        },
        { timeout: 30_000, interval: 250 },
      )
      .toBe("True");
  });
});

describe("the real Redis", () => {
  it("runs a BullMQ job round trip", async () => {
    const connection = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
    const name = `smoke-${randomUUID()}`;
    const queue = new Queue(name, { connection });
    const events = new QueueEvents(name, { connection: connection.duplicate() });
    const worker = new Worker(name, (job) => Promise.resolve({ doubled: (job.data as { n: number }).n * 2 }), {
      connection: connection.duplicate(),
    });
    try {
      await events.waitUntilReady();
      const job = await queue.add("double", { n: 21 });
      const result = (await job.waitUntilFinished(events, 10_000)) as { doubled: number };
      expect(result.doubled).toBe(42);
    } finally {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await connection.quit();
    }
  });
});
