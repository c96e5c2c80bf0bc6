import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCredentials } from "../../../src/agent/kube/credentials.ts";
import { removeCheckouts, tempDir } from "../../helpers/checkouts.ts";

afterAll(async () => {
  await removeCheckouts();
});

const kubeconfig = (user: string, cluster = "      server: https://10.0.0.1:6443\n      certificate-authority-data: Y2E=\n") =>
  `apiVersion: v1\nkind: Config\ncurrent-context: main\ncontexts:\n  - name: main\n    context: { cluster: c, user: u }\nclusters:\n  - name: c\n    cluster:\n${cluster}users:\n  - name: u\n    user:\n${user}`;

describe("kubeconfig credentials", () => {
  it("reads the current context's server, CA, client certificate and token, and a token file again on each call", async () => {
    const dir = await tempDir("sluice-kubeconfig-");
    await writeFile(join(dir, "token"), "first\n");
    await writeFile(join(dir, "client.crt"), "CERT");
    await writeFile(
      join(dir, "config"),
      kubeconfig("      client-certificate: client.crt\n      client-key-data: S0VZ\n      tokenFile: " + join(dir, "token") + "\n"),
    );
    const credentials = loadCredentials(join(dir, "config"));
    expect(credentials.server.toString()).toBe("https://10.0.0.1:6443/");
    const options = await credentials.options();
    expect([options.ca, options.cert, options.key].map((b) => (Buffer.isBuffer(b) ? b.toString() : b))).toEqual(["ca", "CERT", "KEY"]);
    expect(options.headers).toEqual({ authorization: "Bearer first" });
    await writeFile(join(dir, "token"), "rotated\n");
    expect((await credentials.options()).headers).toEqual({ authorization: "Bearer rotated" });
  });

  it("names what a kubeconfig lacks", async () => {
    const dir = await tempDir("sluice-kubeconfig-");
    await writeFile(join(dir, "config"), kubeconfig("      token: t\n").replace("user: u }", "user: nobody }"));
    expect(() => loadCredentials(join(dir, "config"))).toThrow(`${join(dir, "config")}: no user named nobody`);
  });

  it("names KUBECONFIG and the file when the kubeconfig or a file it names cannot be read, before anything connects", async () => {
    const dir = await tempDir("sluice-kubeconfig-");
    const missing = join(dir, "nowhere");
    expect(() => loadCredentials(missing)).toThrow(`KUBECONFIG ${missing}: cannot be read as a kubeconfig: ENOENT`);
    await writeFile(join(dir, "config"), kubeconfig("      client-certificate: client.crt\n      client-key-data: S0VZ\n"));
    expect(() => loadCredentials(join(dir, "config"))).toThrow(
      `KUBECONFIG ${join(dir, "config")}: client-certificate client.crt cannot be read: ENOENT`,
    );
    await writeFile(join(dir, "token-config"), kubeconfig(`      tokenFile: ${join(dir, "token")}\n`));
    expect(() => loadCredentials(join(dir, "token-config"))).toThrow(
      `KUBECONFIG ${join(dir, "token-config")}: tokenFile ${join(dir, "token")} cannot be read: ENOENT`,
    );
    await writeFile(join(dir, "text"), "just text\n");
    expect(() => loadCredentials(join(dir, "text"))).toThrow(`KUBECONFIG ${join(dir, "text")}: not a kubeconfig`);
  });

  it("skips TLS verification only when the kubeconfig says so", async () => {
    const dir = await tempDir("sluice-kubeconfig-");
    await writeFile(
      join(dir, "config"),
      kubeconfig("      token: t\n", "      server: https://k:6443\n      insecure-skip-tls-verify: true\n"),
    );
    expect(await loadCredentials(join(dir, "config")).options()).toEqual({
      rejectUnauthorized: false,
      headers: { authorization: "Bearer t" },
    });
  });
});
