import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";

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
});
