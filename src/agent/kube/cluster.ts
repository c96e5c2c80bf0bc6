import { ApiException, KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import type { KubeObject } from "../../core/manifest.ts";
import { isRecord } from "../../core/manifest.ts";

/** An API error about one object: its status code, the API's reason and message. */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(subject: string, status: number, reason: string, message: string, options?: ErrorOptions) {
    super(`${subject}: ${message}`, options);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }

  /** Whether retrying may help (throttling, server errors, timeouts). */
  get transient(): boolean {
    return this.status === 429 || this.status >= 500 || this.status === 0;
  }

  /** Whether the API refused to change an immutable field. */
  get immutable(): boolean {
    return this.status === 422 && /field is immutable|may not change once set|Forbidden: updates to .* are forbidden/i.test(this.message);
  }
}

/** `Kind namespace/name` for messages. */
export function subjectOf(object: KubeObject): string {
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const namespace = typeof metadata.namespace === "string" && metadata.namespace ? `${metadata.namespace}/` : "";
  return `${String(object.kind)}/${namespace}${String(metadata.name)}`;
}

function toApiError(subject: string, error: unknown): unknown {
  if (!(error instanceof ApiException)) {
    if (error instanceof Error && /ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up|fetch failed/i.test(error.message)) return new KubeApiError(subject, 0, "Unavailable", error.message, { cause: error });
    return error;
  }
  const code = error.code;
  let reason = "";
  let message = `HTTP ${code}`;
  const body: unknown = typeof error.body === "string" ? safeJson(error.body) : error.body;
  if (isRecord(body)) {
    if (typeof body.reason === "string") reason = body.reason;
    if (typeof body.message === "string") message = body.message;
  }
  return new KubeApiError(subject, code, reason, message, { cause: error });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Exposes the object API's discovery, which the client keeps protected. */
class DiscoveringObjectApi extends KubernetesObjectApi {
  async namespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return (await this.resource(apiVersion, kind))?.namespaced;
  }
}

/** Limits requests per second (a token bucket refilled continuously). */
class RateLimiter {
  readonly #qps: number;
  #tokens: number;
  #last = performance.now();

  constructor(qps: number) {
    this.#qps = qps;
    this.#tokens = qps;
  }

  async take(): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.#tokens = Math.min(this.#qps, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
      this.#last = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(((1 - this.#tokens) / this.#qps) * 1000)));
    }
  }
}

/** How to reach the cluster and as whom. */
export interface ClusterOptions {
  fieldManager: string;
  /** Requests per second to the API server. */
  qps: number;
}

/**
 * The agent's one door to Kubernetes: server-side apply (real or dry-run), get, delete and list,
 * with errors that name the object and keep the API's reason.
 */
export class Cluster {
  readonly #api: DiscoveringObjectApi;
  readonly #options: ClusterOptions;
  readonly #limiter: RateLimiter;

  constructor(kubeConfig: KubeConfig, options: ClusterOptions) {
    this.#api = kubeConfig.makeApiClient(DiscoveringObjectApi);
    this.#options = options;
    this.#limiter = new RateLimiter(options.qps);
  }

  /** A cluster from a kubeconfig file, or the in-cluster service account when none is given. */
  static connect(kubeconfigPath: string | undefined, options: ClusterOptions): Cluster {
    const kc = new KubeConfig();
    if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
    else kc.loadFromCluster();
    return new Cluster(kc, options);
  }

  async #call<T>(subject: string, request: () => Promise<T>): Promise<T> {
    await this.#limiter.take();
    try {
      return await request();
    } catch (error) {
      throw toApiError(subject, error);
    }
  }

  /** Server-side applies an object as the field manager; `dryRun` writes nothing. */
  async apply(object: KubeObject, options: { dryRun?: boolean; force?: boolean } = {}): Promise<KubeObject> {
    return this.#call(subjectOf(object), () => this.#api.patch(object as KubernetesObject, undefined, options.dryRun ? "All" : undefined, this.#options.fieldManager, options.force ?? true, PatchStrategy.ServerSideApply) as Promise<KubeObject>);
  }

  /** The live object, or undefined when it does not exist. */
  async get(object: KubeObject): Promise<KubeObject | undefined> {
    try {
      const header = { apiVersion: String(object.apiVersion), kind: String(object.kind), metadata: object.metadata as { name: string; namespace?: string } };
      return await this.#call(subjectOf(object), () => this.#api.read<KubeObject & { apiVersion: string; kind: string }>(header));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Deletes an object (dependents in the background); a missing object is not an error. */
  async delete(object: KubeObject): Promise<void> {
    try {
      await this.#call(subjectOf(object), () => this.#api.delete(object as KubernetesObject, undefined, undefined, undefined, undefined, "Background"));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return;
      throw error;
    }
  }

  /** Whether a kind is namespaced, from discovery; undefined when the API server does not serve it. */
  async namespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    try {
      return await this.#call(`${kind} (${apiVersion})`, () => this.#api.namespaced(apiVersion, kind));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }
}
