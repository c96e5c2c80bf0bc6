import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { PROBE_PATHS } from "../../src/core/probes.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));

describe("deploy/ manifests", () => {
  afterAll(async () => {
    await run("kubectl", [
      "--kubeconfig",
      inject("kubeconfigPath"),
      "delete",
      "namespace",
      "sluice",
      "sluice-system",
      "team-a",
      "--ignore-not-found",
      "--wait=false",
    ]);
  });

  it.each(["deploy/app", "deploy/agent", "deploy/examples/agent-namespace"])(
    "%s builds with kustomize and passes a server-side dry-run on the real apiserver",
    async (dir) => {
      const { stdout } = await run(inject("kustomize"), ["build", `${root}${dir}`]);
      expect(stdout).toContain("kind:");
      // Namespaces first so namespaced objects can be dry-run, as the agent does.
      const kubectl = (args: string[], input: string) =>
        new Promise<string>((resolve, reject) => {
          const child = execFile("kubectl", ["--kubeconfig", inject("kubeconfigPath"), ...args], (error, out, err) => {
            if (error) reject(new Error(err || error.message));
            else resolve(out);
          });
          child.stdin?.end(input);
        });
      const namespaces = stdout
        .split(/^---$/m)
        .filter((doc) => /^kind: Namespace$/m.test(doc))
        .join("---\n");
      if (namespaces) await kubectl(["apply", "--server-side", "-f", "-"], namespaces);
      if (dir.includes("examples"))
        await kubectl(["create", "namespace", "team-a", "--dry-run=client", "-o", "yaml"], "").then((ns) =>
          kubectl(["apply", "--server-side", "-f", "-"], ns),
        );
      const out = await kubectl(["apply", "--server-side", "--dry-run=server", "-f", "-"], stdout);
      expect(out).toMatch(/serverside-applied \(server dry run\)/);
    },
  );

  it.each([
    ["deploy/app", "app", 3000],
    ["deploy/agent", "agent", 8080],
  ])("%s probes and scrapes the paths and the port the %s serves", async (dir, _name, defaultPort) => {
    const { stdout } = await run(inject("kustomize"), ["build", `${root}${dir}`]);
    const deployment = parseAllDocuments(stdout)
      .map((d) => d.toJS() as { kind?: string; spec?: { template?: Record<string, unknown> } })
      .find((d) => d.kind === "Deployment");
    const template = deployment?.spec?.template as {
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
      const settings = await loadAgentSettings({
        SLUICE_AGENT_ENVIRONMENTS: "production",
        SLUICE_AGENT_REPOSITORIES: "o/*=team-*",
        SLUICE_APP_PUBLIC_KEY: "k",
        SLUICE_AGENT_SIGNING_KEY: "k",
      });
      expect(settings.probePort).toBe(port);
    }
  });
});
