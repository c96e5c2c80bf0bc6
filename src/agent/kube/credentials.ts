import { readFileSync } from "node:fs";
import type { RequestOptions } from "node:https";
import { dirname, isAbsolute, join } from "node:path";
import { load } from "js-yaml";
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
 * @kubernetes/client-node's KubeConfig, loaded only then: it costs the agent about 90 MB.
 * @throws Error naming what the kubeconfig lacks
 */
export function loadCredentials(kubeconfigPath: string | undefined): Credentials {
  if (!kubeconfigPath) return inCluster();
  const config: unknown = load(readFileSync(kubeconfigPath, "utf8"));
  if (!isRecord(config)) throw new Error(`${kubeconfigPath}: not a kubeconfig`);
  const named = (list: unknown, name: unknown, what: string): Record<string, unknown> => {
    const entry = Array.isArray(list) ? (list as unknown[]).find((e) => isRecord(e) && e.name === name) : undefined;
    const value = isRecord(entry) ? entry[what] : undefined;
    if (!isRecord(value)) throw new Error(`${kubeconfigPath}: no ${what} named ${String(name)}`);
    return value;
  };
  const context = named(config.contexts, config["current-context"], "context");
  const cluster = named(config.clusters, context.cluster, "cluster");
  const user = named(config.users, context.user, "user");
  if (typeof cluster.server !== "string") throw new Error(`${kubeconfigPath}: the current cluster has no server`);
  const server = new URL(cluster.server);
  if (user.exec !== undefined || user["auth-provider"] !== undefined || user.username !== undefined)
    return viaClientNode(kubeconfigPath, server);
  const base = dirname(kubeconfigPath);
  const material = (data: unknown, file: unknown): Buffer | undefined =>
    typeof data === "string"
      ? Buffer.from(data, "base64")
      : typeof file === "string"
        ? readFileSync(isAbsolute(file) ? file : join(base, file))
        : undefined;
  const ca = material(cluster["certificate-authority-data"], cluster["certificate-authority"]);
  const cert = material(user["client-certificate-data"], user["client-certificate"]);
  const key = material(user["client-key-data"], user["client-key"]);
  const insecure = cluster["insecure-skip-tls-verify"] === true;
  const token = (): string | undefined =>
    typeof user.token === "string"
      ? user.token
      : typeof user.tokenFile === "string"
        ? readFileSync(user.tokenFile, "utf8").trim()
        : undefined;
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
  if (!host || !port) throw new Error("no KUBECONFIG and not in a pod (KUBERNETES_SERVICE_HOST is unset)");
  const ca = readFileSync(join(SERVICE_ACCOUNT, "ca.crt"));
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
