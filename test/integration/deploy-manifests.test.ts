import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parser as promqlParser } from "@prometheus-io/lezer-promql";
import { afterAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { PROBE_PATHS } from "../../src/core/probes.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const examples = readdirSync(`${root}deploy/examples`, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => `deploy/examples/${entry.name}`)
  .sort();
const packageVersion = (JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string }).version;

type Labels = Record<string, string>;
type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels };
  [field: string]: unknown;
};
type LabelSelector = { matchLabels?: Labels; matchExpressions?: unknown[] };
type SecurityContext = { runAsUser?: number; runAsGroup?: number; fsGroup?: number; supplementalGroups?: number[] };
type Container = {
  name: string;
  image: string;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: SecurityContext;
};
type SecretItem = { key: string; path: string; mode?: number };
type SecretVolume = { secretName: string; defaultMode?: number; items?: SecretItem[] };
type PodSpec = {
  securityContext?: SecurityContext;
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    secret?: SecretVolume;
    projected?: { defaultMode?: number; sources?: { secret?: { name: string; optional?: boolean; items?: SecretItem[] } }[] };
  }[];
  topologySpreadConstraints?: { topologyKey: string; whenUnsatisfiable: string; labelSelector?: LabelSelector }[];
  affinity?: { podAntiAffinity?: unknown };
};
type Deployment = KubeObject & {
  spec: { replicas?: number; selector: LabelSelector; template: { metadata: { labels?: Labels }; spec: PodSpec } };
};
type Budget = KubeObject & { spec: { selector?: LabelSelector; minAvailable?: number | string; maxUnavailable?: number | string } };
type PolicyPort = { protocol?: string; port?: number | string };
type NetworkPolicy = KubeObject & {
  spec: {
    podSelector: LabelSelector;
    policyTypes?: string[];
    ingress?: { ports?: PolicyPort[] }[];
    egress?: { ports?: PolicyPort[] }[];
  };
};
type PolicyRule = { apiGroups?: string[]; resources?: string[]; verbs: string[] };
type Role = KubeObject & { rules?: PolicyRule[] };
type Binding = KubeObject & { roleRef: { kind: string; name: string }; subjects?: { kind: string; name: string; namespace?: string }[] };

/** The objects `kustomize build` renders for a directory of deploy/, as the user's kubectl would apply them. */
async function build(dir: string): Promise<KubeObject[]> {
  const { stdout } = await run(inject("kustomize"), ["build", `${root}${dir}`]);
  // kubectl reads manifests as YAML 1.1 (an octal 0440 is a mode, not the number 440).
  return parseAllDocuments(stdout, { version: "1.1" }).map((doc) => doc.toJS() as KubeObject);
}

type ConfigMap = KubeObject & { data: Record<string, string> };
type Kinds = { Namespace: KubeObject; Deployment: Deployment; PodDisruptionBudget: Budget; ClusterRole: Role; ConfigMap: ConfigMap };

/** The one object of a kind among rendered objects; throws naming the directory when there is none or several. */
function only<K extends keyof Kinds>(objects: KubeObject[], kind: K, dir: string): Kinds[K] {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`${dir} renders ${found.length} ${kind} objects, expected one`);
  return found[0] as Kinds[K];
}

/** Whether a selector (matchLabels only; expressions are not used in deploy/) selects these labels. */
function selects(selector: LabelSelector | undefined, labels: Labels | undefined): boolean {
  const wanted = Object.entries(selector?.matchLabels ?? {});
  return wanted.length > 0 && (selector?.matchExpressions ?? []).length === 0 && wanted.every(([k, v]) => labels?.[k] === v);
}

/** Runs kubectl against the shared apiserver with input on stdin; rejects with its stderr. */
function kubectl(args: string[], input = ""): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile("kubectl", ["--kubeconfig", inject("kubeconfigPath"), ...args], (error, stdout, stderr) => {
      if (error) reject(new Error(`kubectl ${args.join(" ")}: ${stderr || error.message}`));
      else resolve({ stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

/** Whether a process with these ids may read a file with this owner, group and mode. */
function mayRead(reader: { uid: number; gids: number[] }, file: { uid: number; gid: number; mode: number }): boolean {
  if (reader.uid === file.uid) return (file.mode & 0o400) !== 0;
  if (reader.gids.includes(file.gid)) return (file.mode & 0o040) !== 0;
  return (file.mode & 0o004) !== 0;
}

/** Whether a NetworkPolicy rule list lets traffic through on a protocol and a port (named ports resolved by `names`). */
function allows(rules: { ports?: PolicyPort[] }[] | undefined, protocol: string, port: number, names: Map<string, number>): boolean {
  return (rules ?? []).some(
    (rule) =>
      rule.ports === undefined ||
      rule.ports.some(
        (p) =>
          (p.protocol ?? "TCP") === protocol &&
          (p.port === undefined || p.port === port || (typeof p.port === "string" && names.get(p.port) === port)),
      ),
  );
}

/** The RBAC verbs the agent's requests need, read from its one Kubernetes adapter. */
function verbsTheAgentUses(): Set<string> {
  const source = readFileSync(`${root}src/agent/kube/cluster.ts`, "utf8");
  const methods = new Set([...source.matchAll(/#request\([^;]*?"(GET|POST|PUT|PATCH|DELETE)"/g)].map((m) => m[1]));
  const verbs = new Set<string>();
  for (const method of methods) {
    // A GET of one object is get, of a collection list; a server-side apply is a patch that creates
    // the object when it is missing, which the API server authorizes as create.
    if (method === "GET") ["get", "list"].forEach((v) => verbs.add(v));
    if (method === "PATCH") ["patch", ...(source.includes("application/apply-patch+yaml") ? ["create"] : [])].forEach((v) => verbs.add(v));
    if (method === "POST") verbs.add("create");
    if (method === "PUT") verbs.add("update");
    if (method === "DELETE") verbs.add("delete");
  }
  // A GET with ?watch=1 is the watch verb (drift watches).
  if (/watch: "1"/.test(source)) verbs.add("watch");
  return verbs;
}

describe("deploy/ manifests", () => {
  const testNamespaces: string[] = [];

  afterAll(async () => {
    if (testNamespaces.length) await kubectl(["delete", "namespace", ...testNamespaces, "--ignore-not-found", "--wait=false"]);
  });

  it.each(["deploy/app", "deploy/agent", ...examples])(
    "%s builds with kustomize and passes a strict server-side dry-run on the real apiserver, within its namespace's Pod Security level",
    async (dir) => {
      // Arrange: a namespace of the test's own, labelled as the shipped Namespace is, holds the namespaced objects.
      const objects = await build(dir);
      // An example for a shipped namespace (deploy/examples/redis in `sluice`) is held to that Namespace's level.
      const home = objects.find((o) => o.metadata.namespace === "sluice" || o.metadata.namespace === "sluice-system")?.metadata.namespace;
      const homeDir = home === "sluice" ? "deploy/app" : "deploy/agent";
      const shipped =
        objects.find((o) => o.kind === "Namespace") ?? (home ? (await build(homeDir)).find((o) => o.kind === "Namespace") : undefined);
      const namespace = `sluice-manifests-${randomBytes(4).toString("hex")}`;
      testNamespaces.push(namespace);
      const labels = Object.entries(shipped?.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`);
      await kubectl(["create", "namespace", namespace]);
      if (labels.length) await kubectl(["label", "namespace", namespace, ...labels]);
      // kustomize sets the namespace of every namespaced object (the kustomization's or the manifest's).
      const moved = objects.map((o) => (o.metadata.namespace ? { ...o, metadata: { ...o.metadata, namespace } } : o));

      // Act
      const { stdout, stderr } = await kubectl(
        ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "--validate=strict", "-f", "-"],
        moved.map((o) => stringify(o)).join("---\n"),
      );

      // Assert: every object accepted, no field unknown, and no Pod Security warning.
      expect(stdout.match(/serverside-applied \(server dry run\)/g)?.length).toBe(objects.length);
      expect(stderr).not.toMatch(/would violate PodSecurity|unknown field|Warning/i);
      // A Deployment's pods are held to the namespace's enforced level when they are created: create
      // one from the template (dry-run), its ServiceAccount made for real in the test's namespace.
      const accounts = moved.filter((o) => o.kind === "ServiceAccount");
      if (accounts.length) await kubectl(["apply", "--server-side", "-f", "-"], accounts.map((o) => stringify(o)).join("---\n"));
      for (const deployment of moved.filter((o): o is Deployment => o.kind === "Deployment" || o.kind === "StatefulSet")) {
        const { labels: podLabels } = deployment.spec.template.metadata;
        // A StatefulSet's pods get a volume for each claim template, as its controller gives them.
        const claims = ((deployment.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ?? []).map(
          (claim) => ({
            name: claim.metadata.name,
            persistentVolumeClaim: { claimName: `${claim.metadata.name}-${deployment.metadata.name}-0` },
          }),
        );
        const template = deployment.spec.template.spec as { volumes?: unknown[] };
        const pod = {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: deployment.metadata.name, namespace, labels: podLabels },
          spec: claims.length ? { ...template, volumes: [...(template.volumes ?? []), ...claims] } : deployment.spec.template.spec,
        };
        const created = await kubectl(["create", "--dry-run=server", "--validate=strict", "-f", "-"], stringify(pod));
        expect(created.stdout).toContain(`pod/${deployment.metadata.name} created (server dry run)`);
        expect(created.stderr).toBe("");
      }
    },
  );

  it.each(["deploy/app", "deploy/agent"])("%s's Namespace enforces Pod Security's restricted level", async (dir) => {
    const namespace = only(await build(dir), "Namespace", dir);

    expect(namespace.metadata.labels).toMatchObject({ "pod-security.kubernetes.io/enforce": "restricted" });
  });

  it.each([
    ["deploy/app", "app", 3000],
    ["deploy/agent", "agent", 8080],
  ])("%s probes and scrapes the paths and the port the %s serves", async (dir, _name, defaultPort) => {
    const deployment = only(await build(dir), "Deployment", dir);
    const template = deployment.spec.template as unknown as {
      metadata: { annotations: Record<string, string> };
      spec: { containers: { ports: { name: string; containerPort: number }[]; readinessProbe: Probe; livenessProbe: Probe }[] };
    };
    type Probe = { httpGet: { path: string; port: string } };
    const [container] = template.spec.containers;
    if (!container) throw new Error(`${dir} has no container`);
    expect([container.readinessProbe.httpGet.path, container.livenessProbe.httpGet.path]).toEqual([PROBE_PATHS.ready, PROBE_PATHS.health]);
    const port = container.ports.find((p) => p.name === container.readinessProbe.httpGet.port)?.containerPort;
    expect(port).toBe(defaultPort);
    expect(template.metadata.annotations).toMatchObject({ "prometheus.io/port": String(port), "prometheus.io/path": PROBE_PATHS.metrics });
    if (dir === "deploy/agent") {
      const app = generateKeyPairSync("ed25519");
      const agent = generateKeyPairSync("ed25519");
      const settings = await loadAgentSettings({
        REDIS_URL: "redis://redis.sluice.svc:6379",
        SLUICE_AGENT_ENVIRONMENTS: "production",
        SLUICE_AGENT_REPOSITORIES: "o/*=team-*",
        SLUICE_APP_PUBLIC_KEY: app.publicKey.export({ type: "spki", format: "pem" }).toString(),
        SLUICE_AGENT_SIGNING_KEY: agent.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      });
      expect(settings.probePort).toBe(port);
    }
  });

  it.each([
    ["deploy/app", 5],
    ["deploy/agent", 2],
  ] as const)("%s's container can read every secret file it is pointed at, and no other user on the node can", async (dir, files) => {
    const deployment = only(await build(dir), "Deployment", dir);
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    if (!container) throw new Error("deploy/app has no container");
    const context = { ...pod.securityContext, ...container.securityContext };
    // The kubelet writes Secret files owned by root, with the group fsGroup when one is set.
    const reader = {
      uid: context.runAsUser ?? -1, // the image's user, which the manifest does not say
      // Without runAsGroup the image's group applies, which the manifest does not say: it grants nothing here.
      gids: [context.runAsGroup, context.fsGroup, ...(context.supplementalGroups ?? [])].filter((gid) => gid !== undefined),
    };
    // Each *_PATH variable that points into a Secret volume (plain or projected), with the file the kubelet writes there.
    const secretFiles = (container.env ?? []).flatMap((variable) => {
      const mount = (container.volumeMounts ?? []).find((m) => variable.value?.startsWith(`${m.mountPath}/`));
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      const secrets = volume?.secret
        ? [{ items: volume.secret.items, defaultMode: volume.secret.defaultMode }]
        : (volume?.projected?.sources ?? []).flatMap((source) =>
            source.secret ? [{ items: source.secret.items, defaultMode: volume?.projected?.defaultMode }] : [],
          );
      if (!variable.name.endsWith("_PATH") || !mount || secrets.length === 0) return [];
      const path = (variable.value ?? "").slice(mount.mountPath.length + 1);
      const found = secrets
        .map((secret) => ({
          secret,
          item: secret.items ? secret.items.find((i) => i.path === path) : { key: path, path, mode: undefined },
        }))
        .find(({ item }) => item !== undefined);
      const mode = found?.item?.mode ?? found?.secret.defaultMode ?? 0o644;
      return [{ variable: variable.name, mounted: found !== undefined, file: { uid: 0, gid: context.fsGroup ?? 0, mode } }];
    });

    expect(secretFiles.length).toBe(files);
    // Keys are never variables: only a Redis URL comes from a Secret into the environment.
    const fromSecrets = [
      ...(container.envFrom ?? []).filter((source) => source.secretRef).map(() => "envFrom secretRef"),
      ...(container.env ?? []).filter((variable) => variable.valueFrom?.secretKeyRef).map((variable) => variable.name),
    ];
    expect(fromSecrets.filter((name) => name !== "REDIS_URL")).toEqual([]);
    for (const { variable, mounted, file } of secretFiles) {
      expect({ variable, mounted, readable: mayRead(reader, file), others: file.mode & 0o007 }).toEqual({
        variable,
        mounted: true,
        readable: true,
        others: 0,
      });
    }
  });

  it.each(["deploy/app", "deploy/agent"])("%s has a PodDisruptionBudget that selects its pods and lets one go", async (dir) => {
    const objects = await build(dir);
    const deployment = only(objects, "Deployment", dir);
    const budget = only(objects, "PodDisruptionBudget", dir);
    const podLabels = deployment.spec.template.metadata.labels;

    expect(selects(budget.spec.selector, podLabels)).toBe(true);
    expect(budget.metadata.namespace).toBe(deployment.metadata.namespace);
    const replicas = deployment.spec.replicas ?? 1;
    const allowed =
      typeof budget.spec.minAvailable === "number" ? replicas - budget.spec.minAvailable : Number(budget.spec.maxUnavailable ?? 0);
    expect(allowed).toBeGreaterThanOrEqual(1);
    expect(allowed).toBeLessThan(replicas);
  });

  it.each(["deploy/app", "deploy/agent"])("%s spreads its replicas over nodes", async (dir) => {
    const deployment = only(await build(dir), "Deployment", dir);
    const pod = deployment.spec.template;
    const byNode = (pod.spec.topologySpreadConstraints ?? []).filter((c) => c.topologyKey === "kubernetes.io/hostname");

    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(byNode).toHaveLength(1);
    expect(byNode[0]?.whenUnsatisfiable).toBe("DoNotSchedule");
    expect(selects(byNode[0]?.labelSelector, pod.metadata.labels)).toBe(true);
  });

  it.each(["deploy/app", "deploy/agent"])("%s runs the image of this release, never :latest", async (dir) => {
    const deployment = only(await build(dir), "Deployment", dir);
    const pod = deployment.spec.template.spec;
    const images = [...pod.containers, ...(pod.initContainers ?? [])].map((c) => c.image);

    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      expect(image).toMatch(new RegExp(`^ghcr\\.io/sluice-dev/sluice:${packageVersion.replaceAll(".", "\\.")}(@sha256:[0-9a-f]{64})?$`));
    }
  });

  it.each([
    [
      "deploy/app",
      {
        ingress: ["http"],
        egress: [
          ["UDP", 53],
          ["TCP", 53],
          ["TCP", 6379],
          ["TCP", 443],
        ],
      },
    ],
    [
      "deploy/agent",
      {
        ingress: ["probes"],
        egress: [
          ["UDP", 53],
          ["TCP", 53],
          ["TCP", 6379],
          ["TCP", 443],
          ["TCP", 6443],
        ],
      },
    ],
  ] as const)("%s has NetworkPolicies that select its pods: in on its own port only, out to DNS, Redis and its API", async (dir, want) => {
    const objects = await build(dir);
    const deployment = only(objects, "Deployment", dir);
    const pod = deployment.spec.template;
    const policies = objects.filter(
      (o): o is NetworkPolicy => o.kind === "NetworkPolicy" && selects((o as NetworkPolicy).spec.podSelector, pod.metadata.labels),
    );
    const ports = new Map(pod.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => [p.name ?? "", p.containerPort] as const)));
    const ingress = policies.flatMap((p) => p.spec.ingress ?? []);
    const egress = policies.flatMap((p) => p.spec.egress ?? []);

    expect(policies.length).toBeGreaterThan(0);
    expect(policies.every((p) => p.spec.policyTypes?.includes("Ingress") && p.spec.policyTypes.includes("Egress"))).toBe(true);
    // Every ingress rule names ports, and only the container's own.
    const opened = ingress.flatMap((rule) => rule.ports ?? [{ port: "any port" }]).map((p) => p.port);
    expect(opened).toEqual(want.ingress.map((name) => name));
    expect(ports.has(want.ingress[0])).toBe(true);
    for (const [protocol, port] of want.egress)
      expect({ protocol, port, allowed: allows(egress, protocol, port, ports) }).toEqual({ protocol, port, allowed: true });
    // Nothing else goes out: a port no rule names is refused.
    expect(allows(egress, "TCP", 22, ports)).toBe(false);
  });

  describe("the agent's RBAC", () => {
    const used = verbsTheAgentUses();
    const sets = async () => Promise.all(["deploy/agent", ...examples].map(async (dir) => ({ dir, objects: await build(dir) })));

    it("grants exactly the verbs the agent's API calls use, one API group per rule, never bind, escalate or a wildcard", async () => {
      const all = (await sets()).flatMap(({ dir, objects }) =>
        objects
          .filter((o): o is Role => o.kind === "Role" || o.kind === "ClusterRole")
          .flatMap((role) => (role.rules ?? []).map((rule) => ({ dir, role: role.metadata.name, rule }))),
      );

      expect([...used].sort()).toEqual(["create", "delete", "get", "list", "patch", "watch"]);
      expect(all.length).toBeGreaterThan(0);
      for (const { dir, role, rule } of all) {
        const where = `${dir} ${role}`;
        expect({ where, extra: rule.verbs.filter((v) => !used.has(v)) }).toEqual({ where, extra: [] });
        expect({ where, groups: rule.apiGroups?.length }).toEqual({ where, groups: 1 });
        expect({ where, wildcard: [...(rule.resources ?? []), ...(rule.apiGroups ?? [])].includes("*") }).toEqual({
          where,
          wildcard: false,
        });
      }
      const apply = only(
        (await build("deploy/agent")).filter((o) => o.metadata.name === "sluice-agent-apply"),
        "ClusterRole",
        "deploy/agent",
      );
      for (const rule of apply.rules ?? []) expect([...rule.verbs].sort()).toEqual([...used].sort());
    });

    it("makes Roles and RoleBindings, Namespaces and CRDs opt-in, each granted by a shipped example", async () => {
      const rendered = await sets();
      const grants = (objects: KubeObject[], resource: string) =>
        objects
          .filter((o): o is Role => o.kind === "Role" || o.kind === "ClusterRole")
          .some((role) => (role.rules ?? []).some((rule) => rule.resources?.includes(resource)));
      const agent = rendered.find((r) => r.dir === "deploy/agent")?.objects ?? [];
      const config = only(agent, "ConfigMap", "deploy/agent");
      const bindings = rendered.flatMap(({ objects }) =>
        objects.filter((o): o is Binding => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding"),
      );

      expect(config.data.SLUICE_AGENT_CLUSTER_KINDS).toBe("");
      for (const resource of ["roles", "rolebindings", "namespaces", "customresourcedefinitions"]) {
        expect({ resource, byDefault: grants(agent, resource) }).toEqual({ resource, byDefault: false });
        const example = rendered.find(({ dir, objects }) => dir.startsWith("deploy/examples/") && grants(objects, resource));
        expect({ resource, example: example !== undefined }).toEqual({ resource, example: true });
      }
      // Every binding gives its role to the agent's ServiceAccount, in the agent's namespace.
      for (const binding of bindings) {
        expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "sluice-agent", namespace: "sluice-system" }]);
      }
    });
  });

  it("adds up the queue gauges with max: every replica reports the whole queue from Redis", () => {
    const dashboard = JSON.parse(readFileSync(`${root}deploy/grafana/sluice-dashboard.json`, "utf8")) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const queueTargets = dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).filter((t) => /sluice_(agent_)?queue_jobs/.test(t.expr)).map((t) => `${panel.title}: ${t.expr}`),
    );

    expect(queueTargets.length).toBeGreaterThanOrEqual(2);
    for (const target of queueTargets) expect(target).toMatch(/: max by \(/);
  });

  it("every query of the Grafana dashboard is one whole PromQL expression", () => {
    const dashboard = JSON.parse(readFileSync(`${root}deploy/grafana/sluice-dashboard.json`, "utf8")) as {
      panels: { title: string; targets?: { refId: string; expr: string }[] }[];
    };
    const targets = dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).map((t) => ({ panel: panel.title, refId: t.refId, expr: t.expr })),
    );
    const errors = targets.flatMap(({ panel, refId, expr }) => {
      const at: number[] = [];
      promqlParser.parse(expr).iterate({
        enter: (node) => {
          if (node.type.isError) at.push(node.from);
        },
      });
      return at.length ? [`${panel} ${refId}: ${expr} (error at ${at.join(", ")})`] : [];
    });

    expect(targets.length).toBeGreaterThan(15);
    expect(errors).toEqual([]);
  });

  describe("the Dockerfile", () => {
    const dockerfile = readFileSync(`${root}Dockerfile`, "utf8");
    // Instructions, with continuation lines joined and comments dropped.
    const instructions = dockerfile
      .replace(/\\\n/g, " ")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#"))
      .map((line) => {
        const [keyword = "", ...rest] = line.split(/\s+/);
        return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
      });
    const firstFrom = instructions.findIndex((i) => i.keyword === "FROM");
    const stages = instructions.reduce<{ keyword: string; args: string }[][]>((all, instruction) => {
      if (instruction.keyword === "FROM") all.push([]);
      all.at(-1)?.push(instruction);
      return all;
    }, []);
    const final = stages.at(-1) ?? [];

    it("takes every base image from a build argument with a default, so a release pins digests and a local base can stand in", () => {
      const declared = new Map(
        instructions
          .slice(0, firstFrom)
          .filter((i) => i.keyword === "ARG")
          .map((i) => [i.args.split("=")[0] ?? "", i.args.split("=")[1] ?? ""] as const),
      );
      const froms = instructions.filter((i) => i.keyword === "FROM").map((i) => i.args.split(/\s+/)[0] ?? "");

      expect(froms.length).toBeGreaterThanOrEqual(2);
      for (const from of froms) {
        const name = /^\$\{(\w+)\}$/.exec(from)?.[1];
        expect({ from, argument: name !== undefined && Boolean(declared.get(name)) }).toEqual({ from, argument: true });
      }
    });

    it("runs tini as PID 1 as the Deployments' numeric user", async () => {
      const user = final.filter((i) => i.keyword === "USER").at(-1)?.args ?? "";
      const entrypoint = JSON.parse(final.find((i) => i.keyword === "ENTRYPOINT")?.args ?? "[]") as string[];
      const installs = final.filter((i) => i.keyword === "RUN" && /apt-get install/.test(i.args)).map((i) => i.args);

      expect(user).toMatch(/^\d+:\d+$/);
      expect(entrypoint.slice(0, 2)).toEqual(["/usr/bin/tini", "--"]);
      expect(installs.some((args) => /\btini\b/.test(args))).toBe(true);
      for (const dir of ["deploy/app", "deploy/agent"]) {
        const context = only(await build(dir), "Deployment", dir).spec.template.spec.securityContext;
        expect(`${context?.runAsUser}:${context?.runAsGroup}`).toBe(user);
      }
    });

    it("builds helm and kustomize with the tests' own recipe, scripts/test-tools.sh", () => {
      const runs = instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
      const copies = instructions.filter((i) => i.keyword === "COPY").map((i) => i.args);

      expect(runs.some((args) => /scripts\/test-tools\.sh kustomize helm\b/.test(args))).toBe(true);
      expect(runs.filter((args) => /\bgo build\b/.test(args))).toEqual([]);
      for (const path of ["scripts/test-tools.sh", "test/env/tools/kustomize", "test/env/tools/helm"]) {
        expect({ path, copied: copies.some((args) => args.startsWith(`${path} `)) }).toEqual({ path, copied: true });
      }
    });
  });
});
