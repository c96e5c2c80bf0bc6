import { loadCredentials, type Credentials } from "./credentials.ts";
import { Agent, request, type RequestOptions } from "node:https";
import { objectName } from "../../core/identity.ts";
import { isRecord, metadataOf, type KubeObject } from "../../core/manifest.ts";
import { parseJson } from "../../core/json.ts";

/** An API error about one object: its status code, the API's reason and message. */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  /** The API's message alone, without the object it is about. */
  readonly detail: string;

  constructor(subject: string, status: number, reason: string, message: string, options?: ErrorOptions) {
    super(`${subject}: ${message}`, options);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
    this.detail = message;
  }

  /**
   * Whether retrying may help (throttling, server errors, timeouts). A server-side apply whose
   * object does not fit the kind's schema (a number where a string must be) comes back as a 500,
   * but it is the object's fault and fails the same way every time.
   */
  get transient(): boolean {
    if (this.status === 500 && /failed to create typed patch object/.test(this.message)) return false;
    return this.status === 429 || this.status >= 500 || this.status === 0;
  }

  /** Whether the API refused to change an immutable field. */
  get immutable(): boolean {
    return this.status === 422 && /field is immutable|may not change once set|Forbidden: updates to .* are forbidden/i.test(this.message);
  }
}

function safeJson(text: string): unknown {
  try {
    return parseJson(text);
  } catch {
    return text;
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
  /** Connections kept open to the API server. */
  connections?: number;
}

/** A served resource: its plural name and scope. */
interface ApiResource {
  name: string;
  namespaced: boolean;
}

/**
 * The agent's one door to Kubernetes: server-side apply (real or dry-run), get, list and delete
 * over the REST API, with errors that name the object and keep the API's reason. Credentials come
 * from `credentials.ts`; requests are plain JSON over a keep-alive agent, because the typed
 * client's model conversion costs more CPU than the API server's work.
 */
export class Cluster {
  readonly #credentials: Credentials;
  readonly #server: URL;
  readonly #options: ClusterOptions;
  readonly #limiter: RateLimiter;
  readonly #agent: Agent;
  readonly #discovery = new Map<string, Promise<Map<string, ApiResource>>>();
  #auth: { options: Promise<RequestOptions>; until: number } | undefined;

  /** The field manager this cluster connection applies as. */
  get fieldManager(): string {
    return this.#options.fieldManager;
  }

  constructor(credentials: Credentials, options: ClusterOptions) {
    this.#credentials = credentials;
    this.#server = credentials.server;
    this.#options = options;
    this.#limiter = new RateLimiter(options.qps);
    this.#agent = new Agent({ keepAlive: true, maxSockets: options.connections ?? 32 });
  }

  /** A cluster from a kubeconfig file, or the in-cluster service account when none is given. */
  static connect(kubeconfigPath: string | undefined, options: ClusterOptions): Cluster {
    return new Cluster(loadCredentials(kubeconfigPath), options);
  }

  /** Closes the connections. */
  close(): void {
    this.#agent.destroy();
  }

  async #request(subject: string, method: string, path: string, body?: { contentType: string; data: unknown }): Promise<unknown> {
    await this.#limiter.take();
    const auth = await this.#authOptions();
    const options: RequestOptions = {
      ...auth,
      method,
      agent: this.#agent,
      headers: { ...(auth.headers as Record<string, string> | undefined), accept: "application/json" },
    };
    const url = new URL(path, this.#server);
    const payload = body ? JSON.stringify(body.data) : undefined;
    if (body)
      Object.assign(options.headers ?? {}, { "content-type": body.contentType, "content-length": Buffer.byteLength(payload ?? "") });
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", reject);
      });
      req.on("error", (error) => {
        reject(new KubeApiError(subject, 0, "Unavailable", error.message, { cause: error }));
      });
      req.setTimeout(60_000, () => req.destroy(new Error("request timed out after 60 s")));
      req.end(payload);
    });
    const json: unknown = text ? safeJson(text) : undefined;
    if (status >= 200 && status < 300) return json;
    const reason = isRecord(json) && typeof json.reason === "string" ? json.reason : "";
    const message = isRecord(json) && typeof json.message === "string" ? json.message : `HTTP ${status}`;
    throw new KubeApiError(subject, status, reason, message);
  }

  /**
   * TLS material and credentials, computed once a minute: building them per request costs a TLS
   * context each time, and once a minute still follows token rotation.
   */
  #authOptions(): Promise<RequestOptions> {
    const now = performance.now();
    if (!this.#auth || this.#auth.until < now) {
      this.#auth = { options: this.#credentials.options(), until: now + 60_000 };
    }
    return this.#auth.options;
  }

  /** The resource serving a kind, from discovery (refreshed once when the kind is new, as after a CRD). */
  async #resource(apiVersion: string, kind: string): Promise<ApiResource | undefined> {
    const load = (): Promise<Map<string, ApiResource>> => {
      const path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      return this.#request(`${apiVersion} discovery`, "GET", path).then(
        (list) => {
          const resources = new Map<string, ApiResource>();
          const items = isRecord(list) && Array.isArray(list.resources) ? (list.resources as unknown[]) : [];
          for (const r of items) {
            if (isRecord(r) && typeof r.name === "string" && !r.name.includes("/") && typeof r.kind === "string")
              resources.set(r.kind, { name: r.name, namespaced: r.namespaced === true });
          }
          return resources;
        },
        (error: unknown) => {
          if (error instanceof KubeApiError && error.status === 404) return new Map<string, ApiResource>();
          throw error;
        },
      );
    };
    let cached = this.#discovery.get(apiVersion);
    if (!cached) {
      cached = load();
      this.#discovery.set(apiVersion, cached);
    }
    let resources: Map<string, ApiResource>;
    try {
      resources = await cached;
    } catch (error) {
      this.#discovery.delete(apiVersion);
      throw error;
    }
    if (!resources.has(kind)) {
      const fresh = load();
      this.#discovery.set(apiVersion, fresh);
      resources = await fresh;
    }
    return resources.get(kind);
  }

  async #path(object: KubeObject, options: { collection?: boolean } = {}): Promise<string> {
    const apiVersion = String(object.apiVersion);
    const kind = String(object.kind);
    const resource = await this.#resource(apiVersion, kind);
    if (!resource) throw new KubeApiError(objectName(object), 404, "NotFound", `the server does not serve ${kind} in ${apiVersion}`);
    const metadata = metadataOf(object);
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const namespace = resource.namespaced
      ? `/namespaces/${encodeURIComponent(typeof metadata.namespace === "string" && metadata.namespace ? metadata.namespace : "default")}`
      : "";
    const name = options.collection ? "" : `/${encodeURIComponent(String(metadata.name))}`;
    return `${base}${namespace}/${resource.name}${name}`;
  }

  /** Server-side applies an object as the field manager; `dryRun` writes nothing. Conflicts are forced: Git is the source of truth. */
  async apply(object: KubeObject, options: { dryRun?: boolean } = {}): Promise<KubeObject> {
    const query = new URLSearchParams({ fieldManager: this.#options.fieldManager, force: "true" });
    if (options.dryRun) query.set("dryRun", "All");
    const path = `${await this.#path(object)}?${query.toString()}`;
    return (await this.#request(objectName(object), "PATCH", path, {
      contentType: "application/apply-patch+yaml",
      data: object,
    })) as KubeObject;
  }

  /**
   * Applies a JSON merge patch (RFC 7386) as the field manager: for removing keys, which a
   * server-side apply can only do by dropping every other field the manager owns as well.
   */
  async mergePatch(object: KubeObject, patch: Record<string, unknown>): Promise<KubeObject> {
    const query = new URLSearchParams({ fieldManager: this.#options.fieldManager });
    return (await this.#request(objectName(object), "PATCH", `${await this.#path(object)}?${query.toString()}`, {
      contentType: "application/merge-patch+json",
      data: patch,
    })) as KubeObject;
  }

  /** The API server's version (`/version`), which also proves it answers with these credentials. */
  async version(): Promise<string> {
    const answer = await this.#request("the API server's version", "GET", "/version");
    return isRecord(answer) && typeof answer.gitVersion === "string" ? answer.gitVersion : "unknown";
  }

  /** The live object, or undefined when it (or its kind) does not exist. */
  async get(object: KubeObject): Promise<KubeObject | undefined> {
    try {
      return (await this.#request(objectName(object), "GET", await this.#path(object))) as KubeObject;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Every object of a kind (in a namespace, or cluster-wide when `namespace` is empty); empty when the kind is not served. */
  async list(apiVersion: string, kind: string, namespace: string): Promise<KubeObject[]> {
    try {
      const path = await this.#path({ apiVersion, kind, metadata: { namespace } }, { collection: true });
      const list = await this.#request(`${kind} list${namespace ? ` in ${namespace}` : ""}`, "GET", path);
      const items = isRecord(list) && Array.isArray(list.items) ? (list.items as KubeObject[]) : [];
      // Items of a list come without apiVersion and kind.
      return items.map((item) => ({ ...item, apiVersion, kind }));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return [];
      throw error;
    }
  }

  /** Deletes an object (dependents in the background); a missing object is not an error. */
  async delete(object: KubeObject): Promise<void> {
    try {
      await this.#request(objectName(object), "DELETE", await this.#path(object), {
        contentType: "application/json",
        data: { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background" },
      });
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return;
      throw error;
    }
  }

  /** Whether a kind is namespaced, from discovery; undefined when the API server does not serve it. */
  async namespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return (await this.#resource(apiVersion, kind))?.namespaced;
  }
}
