import { Cluster, Redis } from "ioredis";

/**
 * What a TLS connection to Redis (`rediss://`, `rediss-cluster://`) trusts and presents, as PEM:
 * a private CA (in place of the public roots), and a client certificate with its key for a Redis
 * that asks for one (redis-server's `tls-auth-clients`, on by default).
 */
export interface RedisTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/** A connection to Redis: one server, or a Redis Cluster (whose commands are the same, key by key). */
export type RedisClient = Redis | Cluster;

/** Where Redis is, from a `REDIS_URL` setting. */
export type RedisTarget =
  | { kind: "server"; url: string }
  | { kind: "cluster"; nodes: { host: string; port: number }[]; tls: boolean; username?: string; password?: string };

const CLUSTER_SCHEMES: Record<string, boolean> = { "redis-cluster:": false, "rediss-cluster:": true };

/**
 * Reads a `REDIS_URL`: `redis://` or `rediss://` for one server (as ioredis reads it), or
 * `redis-cluster://[user:password@]host:port,host:port,...` (`rediss-cluster://` with TLS) for
 * the seed nodes of a Redis Cluster, from which the client learns the rest.
 * @throws Error saying what is wrong, with any password left out
 */
export function parseRedisUrl(text: string): RedisTarget {
  const scheme = /^([a-z-]+:)\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === "redis:" || scheme === "rediss:") return { kind: "server", url: text };
  const tls = scheme === undefined ? undefined : CLUSTER_SCHEMES[scheme];
  if (tls === undefined)
    throw new Error(
      `must be redis://host:port or rediss://host:port (one server), or redis-cluster://host:port,host:port (the seed nodes of a Redis Cluster), not ${JSON.stringify(redacted(text))}`,
    );
  const rest = text.slice((scheme as string).length + 2);
  const at = rest.lastIndexOf("@");
  const userinfo = at < 0 ? undefined : rest.slice(0, at);
  const hosts = (at < 0 ? rest : rest.slice(at + 1)).replace(/\/$/, "");
  if (hosts.includes("/") || hosts.includes("?"))
    throw new Error(
      `a Redis Cluster has no databases or options in its URL (everything is database 0), in ${JSON.stringify(redacted(text))}`,
    );
  const nodes = hosts.split(",").map((entry) => {
    const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+):([0-9]{1,5})$/i.exec(entry.trim());
    const port = Number(match?.[2]);
    if (!match?.[1] || !(port > 0 && port < 65536))
      throw new Error(`each seed node of a Redis Cluster is host:port, not ${JSON.stringify(entry)} in ${JSON.stringify(redacted(text))}`);
    return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
  });
  const target: RedisTarget = { kind: "cluster", nodes, tls };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":");
    const username = decodeURIComponent(colon < 0 ? "" : userinfo.slice(0, colon));
    const password = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(colon + 1));
    if (username) target.username = username;
    if (password) target.password = password;
  }
  return target;
}

/** Checks a `REDIS_URL` setting (a zod refinement): an issue saying what is wrong, never showing a password. */
export function checkRedisUrl(text: string, context: { addIssue: (issue: { code: "custom"; message: string }) => void }): void {
  try {
    parseRedisUrl(text);
  } catch (error) {
    context.addIssue({ code: "custom", message: `REDIS_URL ${(error as Error).message}` });
  }
}

/** The URL with its password replaced, for messages. */
function redacted(text: string): string {
  return text.replace(/\/\/([^@/]*):[^@/]*@/, "//$1:***@");
}

/**
 * Connects to the Redis a `REDIS_URL` names, with `tls` (a private CA, a client certificate) when
 * the URL asks for TLS. Commands are never failed for a lost connection
 * (`maxRetriesPerRequest: null`, as BullMQ's workers need): they wait for Redis to come back.
 */
export function connectRedis(url: string, tls: RedisTls = {}): RedisClient {
  const target = parseRedisUrl(url);
  if (target.kind === "server")
    return new Redis(target.url, { maxRetriesPerRequest: null, ...(/^rediss:/i.test(target.url) ? { tls: { ...tls } } : {}) });
  return new Cluster(target.nodes, {
    redisOptions: {
      maxRetriesPerRequest: null,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: { ...tls } } : {}),
    },
  });
}

/** The servers that hold keys: every master of a cluster, or the one server. */
export function servers(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes("master") : [redis];
}

/** Every key matching `pattern` (a SCAN pattern), from every master of a cluster. */
export async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const server of servers(redis)) {
    let cursor = "0";
    do {
      const [next, found] = await server.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== "0");
  }
  return keys;
}
