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

/** Objects per page when listing metadata. */
const LIST_PAGE = 500;
/** Asks for metadata only: the API server leaves out spec, data and status. */
const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

/** An object's metadata, as a metadata list or watch gives it. */
export type ObjectMetadata = Record<string, unknown> & { name?: unknown; namespace?: unknown; resourceVersion?: unknown };

/** One event of a watch: what happened and the object's metadata (for `ERROR`, the Status's code and message). */
export type WatchEvent =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; metadata: ObjectMetadata }
  | { type: "BOOKMARK"; resourceVersion: string }
  | { type: "ERROR"; code: number; message: string };

/** One line of a watch stream as an event; undefined for what is not one (a blank line, an unknown type). */
export function watchEvent(line: string): WatchEvent | undefined {
  if (!line.trim()) return undefined;
  const json = safeJson(line);
  if (!isRecord(json) || !isRecord(json.object)) return undefined;
  const object = json.object;
  const metadata = isRecord(object.metadata) ? (object.metadata as ObjectMetadata) : {};
  switch (json.type) {
    case "ADDED":
    case "MODIFIED":
    case "DELETED":
      return { type: json.type, metadata };
    case "BOOKMARK":
      return { type: "BOOKMARK", resourceVersion: typeof metadata.resourceVersion === "string" ? metadata.resourceVersion : "" };
    case "ERROR":
      return {
        type: "ERROR",
        code: typeof object.code === "number" ? object.code : 0,
        message: typeof object.message === "string" ? object.message : "",
      };
    default:
      return undefined;
  }
}

/** Splits a byte stream into lines, handing each whole line to `onLine`; a line split across chunks is joined first. */
function lineSplitter(onLine: (line: string) => void): { push: (chunk: Buffer) => void } {
  let rest: Buffer = Buffer.alloc(0);
  return {
    push: (chunk) => {
      let data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      for (let end = data.indexOf(10); end !== -1; end = data.indexOf(10)) {
        onLine(data.subarray(0, end).toString("utf8"));
        data = data.subarray(end + 1);
      }
      rest = Buffer.from(data);
    },
  };
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
  /** Watches hold their connection for minutes: they get their own, so they never starve requests of the pool. */
  readonly #watchAgent = new Agent({ keepAlive: false });
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
    this.#watchAgent.destroy();
  }

  async #request(
    subject: string,
    method: string,
    path: string,
    body?: { contentType: string; data: unknown },
    accept = "application/json",
  ): Promise<unknown> {
    await this.#limiter.take();
    const auth = await this.#authOptions();
    const options: RequestOptions = {
      ...auth,
      method,
      agent: this.#agent,
      headers: { ...(auth.headers as Record<string, string> | undefined), accept },
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

  /**
   * The metadata of every object of a kind (in a namespace, or cluster-wide when `namespace` is
   * empty), a page at a time, handed to `visit` and not kept: only the metadata is sent
   * (`PartialObjectMetadataList`), so a watch's re-list of 10,000 objects stays small. Returns the
   * list's resourceVersion, where a watch starts; undefined when the kind is not served.
   */
  async listMetadata(
    apiVersion: string,
    kind: string,
    namespace: string,
    visit: (metadata: ObjectMetadata) => void,
  ): Promise<string | undefined> {
    const base = await this.#collectionPath(apiVersion, kind, namespace);
    if (base === undefined) return undefined;
    const subject = `${kind} list${namespace ? ` in ${namespace}` : ""}`;
    let next = "";
    for (;;) {
      const query = new URLSearchParams({ limit: String(LIST_PAGE) });
      if (next) query.set("continue", next);
      const page = await this.#request(subject, "GET", `${base}?${query.toString()}`, undefined, METADATA_LIST);
      const metadata = isRecord(page) && isRecord(page.metadata) ? page.metadata : {};
      const items = isRecord(page) && Array.isArray(page.items) ? (page.items as unknown[]) : [];
      for (const item of items) if (isRecord(item) && isRecord(item.metadata)) visit(item.metadata);
      next = typeof metadata.continue === "string" ? metadata.continue : "";
      if (!next) return typeof metadata.resourceVersion === "string" ? metadata.resourceVersion : "";
    }
  }

  /**
   * Watches the metadata of a kind (in a namespace, or cluster-wide when `namespace` is empty)
   * from `resourceVersion`, with bookmarks, handing each event to `onEvent` as it arrives. Resolves
   * when the server ends the watch (after `timeoutSeconds`) or `signal` aborts it; rejects with a
   * KubeApiError when the request fails or the connection drops. An expired resourceVersion comes
   * as an `ERROR` event whose status code is 410: the caller lists again.
   */
  async watchMetadata(
    target: { apiVersion: string; kind: string; namespace: string; resourceVersion: string; timeoutSeconds: number },
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const { apiVersion, kind, namespace } = target;
    const subject = `${kind} watch${namespace ? ` in ${namespace}` : ""}`;
    const base = await this.#collectionPath(apiVersion, kind, namespace);
    if (base === undefined) throw new KubeApiError(subject, 404, "NotFound", `the server does not serve ${kind} in ${apiVersion}`);
    const query = new URLSearchParams({
      watch: "1",
      resourceVersion: target.resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(target.timeoutSeconds),
    });
    await this.#limiter.take();
    const auth = await this.#authOptions();
    const options: RequestOptions = {
      ...auth,
      method: "GET",
      agent: this.#watchAgent,
      signal,
      headers: { ...(auth.headers as Record<string, string> | undefined), accept: METADATA_WATCH },
    };
    await new Promise<void>((resolve, reject) => {
      const req = request(new URL(`${base}?${query.toString()}`, this.#server), options, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            const json = safeJson(Buffer.concat(chunks).toString("utf8"));
            const reason = isRecord(json) && typeof json.reason === "string" ? json.reason : "";
            const message = isRecord(json) && typeof json.message === "string" ? json.message : `HTTP ${status}`;
            reject(new KubeApiError(subject, status, reason, message));
          });
          return;
        }
        const lines = lineSplitter((line) => {
          const event = watchEvent(line);
          if (event) onEvent(event);
        });
        res.on("data", (chunk: Buffer) => {
          try {
            lines.push(chunk);
          } catch (error) {
            req.destroy(error as Error);
          }
        });
        res.on("end", () => {
          if (res.complete || signal.aborted) resolve();
          else reject(new KubeApiError(subject, 0, "Unavailable", "the watch connection dropped"));
        });
        res.on("error", (error) => {
          if (signal.aborted) resolve();
          else reject(new KubeApiError(subject, 0, "Unavailable", `the watch connection dropped: ${error.message}`, { cause: error }));
        });
      });
      req.on("error", (error) => {
        if (signal.aborted) resolve();
        else reject(new KubeApiError(subject, 0, "Unavailable", error.message, { cause: error }));
      });
      // Bookmarks come about once a minute: a silent connection for longer than the watch's own end is dead.
      req.setTimeout((target.timeoutSeconds + 60) * 1000, () =>
        req.destroy(new Error(`no watch event for ${target.timeoutSeconds + 60} s`)),
      );
      req.end();
    });
  }

  /** The collection path of a kind, in a namespace or cluster-wide; undefined when the server does not serve it. */
  async #collectionPath(apiVersion: string, kind: string, namespace: string): Promise<string | undefined> {
    const resource = await this.#resource(apiVersion, kind);
    if (!resource) return undefined;
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return `${base}${resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ""}/${resource.name}`;
  }

  /** Whether a kind is namespaced, from discovery; undefined when the API server does not serve it. */
  async namespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return (await this.#resource(apiVersion, kind))?.namespaced;
  }
}
