import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The test apiserver's Service range and the `kubernetes` Service's address in it (its first). */
export const SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16";
export const KUBERNETES_SERVICE_IP = "10.96.0.1";

/** The PKI of a test control plane: paths of every file, and the PEM the kubeconfig embeds. */
export interface TestPki {
  caCert: string;
  servingCert: string;
  servingKey: string;
  clientCert: string;
  clientKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  pem: { ca: string; clientCert: string; clientKey: string };
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`openssl ${args[0] ?? ""} failed (is openssl installed?): ${stderr.trim() || String(error)}`, { cause: error });
  }
}

/** Issues `<dir>/<name>.crt` and `.key` for `subject`, signed by the CA in `dir` (ca.crt, ca.key). */
export async function issue(dir: string, name: string, subject: string, extensions: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(
    [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    ],
    dir,
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      `${name}.crt`,
      "-extfile",
      `${name}.ext`,
    ],
    dir,
  );
}

/**
 * Generates, like envtest, a CA, a serving certificate for 127.0.0.1 and localhost (and the
 * `kubernetes` Service's address and names, for pods on a test node), a client
 * certificate in `system:masters`, and a service-account signing key pair.
 */
export async function generatePki(dir: string): Promise<TestPki> {
  await openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=sluice-test-ca",
    ],
    dir,
  );
  await issue(
    dir,
    "serving",
    "/CN=kube-apiserver",
    // Also the names a pod uses: the `kubernetes` Service's address and DNS names (a test node routes them here).
    `subjectAltName=IP:127.0.0.1,DNS:localhost,IP:${KUBERNETES_SERVICE_IP},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  await issue(
    dir,
    "client",
    "/O=system:masters/CN=sluice-test-admin",
    "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
  );
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await writeFile(join(dir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await writeFile(join(dir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  const [ca, clientCert, clientKey] = await Promise.all(["ca.crt", "client.crt", "client.key"].map((f) => readFile(join(dir, f), "utf8")));
  return {
    caCert: join(dir, "ca.crt"),
    servingCert: join(dir, "serving.crt"),
    servingKey: join(dir, "serving.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
    serviceAccountKey: join(dir, "sa.key"),
    serviceAccountPub: join(dir, "sa.pub"),
    pem: { ca: ca ?? "", clientCert: clientCert ?? "", clientKey: clientKey ?? "" },
  };
}

/** A kubeconfig for the test control plane with the admin client certificate. */
export function kubeconfigYaml(server: string, pki: TestPki): string {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(pki.pem.ca)}
users:
- name: sluice-test-admin
  user:
    client-certificate-data: ${b64(pki.pem.clientCert)}
    client-key-data: ${b64(pki.pem.clientKey)}
contexts:
- name: sluice-test
  context:
    cluster: sluice-test
    user: sluice-test-admin
current-context: sluice-test
`;
}
