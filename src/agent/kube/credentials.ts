import { readFileSync } from "node:fs";
import type { RequestOptions } from "node:https";
import { dirname, isAbsolute, join } from "node:path";
import { load } from "js-yaml";
import { errorMessage } from "../../core/errors.ts";
import { isRecord } from "../../core/manifest.ts";

/** Where the API server is and how to prove who the agent is to it. */
export interface Credentials {
  server: URL;
  /** TLS material and an Authorization header; files (a rotated token) are read again on each call. */
  options: () => Promise<RequestOptions>;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Credentials from a kubeconfig file, or from the pod's service account when there is none. The
 * common cases (the in-cluster service account, client certificates, bearer tokens) are read here;
 * a kubeconfig user that runs a command or an auth provider (cloud logins) is handed to
 * @kubernetes/client-node's KubeConfig, loaded only then: it costs the agent about 90 MB. Every
 * file the credentials need is read here once, so what is missing fails the start, not a deploy.
 * @throws Error naming `KUBECONFIG` (or the service account's file) and what is wrong with it
 */
export function loadCredentials(kubeconfigPath: string | undefined): Credentials {
  if (!kubeconfigPath) return inCluster();
  const problem = (message: string, cause?: unknown) => new Error(`KUBECONFIG ${kubeconfigPath}: ${message}`, { cause });
  let config: unknown;
  try {
    config = load(readFileSync(kubeconfigPath, "utf8"));
  } catch (error) {
    throw problem(`cannot be read as a kubeconfig: ${errorMessage(error)}`, error);
  }
  if (!isRecord(config)) throw problem("not a kubeconfig");
  const named = (list: unknown, name: unknown, what: string): Record<string, unknown> => {
    const entry = Array.isArray(list) ? (list as unknown[]).find((e) => isRecord(e) && e.name === name) : undefined;
    const value = isRecord(entry) ? entry[what] : undefined;
    if (!isRecord(value)) throw problem(`no ${what} named ${String(name)}`);
    return value;
  };
  const context = named(config.contexts, config["current-context"], "context");
  const cluster = named(config.clusters, context.cluster, "cluster");
  const user = named(config.users, context.user, "user");
  if (typeof cluster.server !== "string") throw problem("the current cluster has no server");
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch (error) {
    throw problem(`the current cluster's server ${JSON.stringify(cluster.server)} is not a URL`, error);
  }
  if (user.exec !== undefined || user["auth-provider"] !== undefined || user.username !== undefined)
    return viaClientNode(kubeconfigPath, server);
  const base = dirname(kubeconfigPath);
  const readNamed = (field: string, file: string): Buffer => {
    try {
      return readFileSync(isAbsolute(file) ? file : join(base, file));
    } catch (error) {
      throw problem(`${field} ${file} cannot be read: ${errorMessage(error)}`, error);
    }
  };
  const material = (data: unknown, file: unknown, field: string): Buffer | undefined =>
    typeof data === "string" ? Buffer.from(data, "base64") : typeof file === "string" ? readNamed(field, file) : undefined;
  const ca = material(cluster["certificate-authority-data"], cluster["certificate-authority"], "certificate-authority");
  const cert = material(user["client-certificate-data"], user["client-certificate"], "client-certificate");
  const key = material(user["client-key-data"], user["client-key"], "client-key");
  const insecure = cluster["insecure-skip-tls-verify"] === true;
  const token = (): string | undefined =>
    typeof user.token === "string"
      ? user.token
      : typeof user.tokenFile === "string"
        ? readFileSync(user.tokenFile, "utf8").trim()
        : undefined;
  // A token file is read again on each call (it may rotate); once here, so a missing one fails the start.
  if (typeof user.tokenFile === "string") readNamed("tokenFile", user.tokenFile);
  return {
    server,
    options: () => {
      const bearer = token();
      return Promise.resolve({
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        ...(insecure ? { rejectUnauthorized: false } : {}),
        ...(bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {}),
      });
    },
  };
}

/** The pod's service account: the API server from the environment Kubernetes sets, its token read again each time (it rotates). */
function inCluster(): Credentials {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new Error("KUBECONFIG is not set and this is not a pod (KUBERNETES_SERVICE_HOST is unset): set KUBECONFIG to a kubeconfig file");
  const read = (name: string): Buffer => {
    try {
      return readFileSync(join(SERVICE_ACCOUNT, name));
    } catch (error) {
      throw new Error(
        `KUBECONFIG is not set and the pod's service account token cannot be read (${join(SERVICE_ACCOUNT, name)}: ${errorMessage(error)}): check automountServiceAccountToken`,
        { cause: error },
      );
    }
  };
  const ca = read("ca.crt");
  read("token");
  return {
    server: new URL(`https://${host.includes(":") ? `[${host}]` : host}:${port}`),
    options: () =>
      Promise.resolve({ ca, headers: { authorization: `Bearer ${readFileSync(join(SERVICE_ACCOUNT, "token"), "utf8").trim()}` } }),
  };
}

function viaClientNode(kubeconfigPath: string, server: URL): Credentials {
  let config: Promise<{ applyToHTTPSOptions: (options: RequestOptions) => Promise<void> }> | undefined;
  return {
    server,
    options: async () => {
      config ??= import("@kubernetes/client-node").then(({ KubeConfig }) => {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      });
      const options: RequestOptions = {};
      await (await config).applyToHTTPSOptions(options);
      return options;
    },
  };
}
