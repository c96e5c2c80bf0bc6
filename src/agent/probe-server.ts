import { createServer, type Server } from "node:http";
import { checkWithin, answerProbe, metricsAuthorized, PROBE_PATHS, type ProbeSources, type ReadinessCheck } from "../core/probes.ts";
import { parseRedisUrl, type RedisClient } from "../redis/connection.ts";

/**
 * The agent's only listening socket: probes and metrics, no API. With `metricsToken`, `/metrics`
 * (which names repositories and environments) answers 401 without it; the probes stay open.
 */
export async function serveProbes(host: string, port: number, sources: ProbeSources, metricsToken?: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === PROBE_PATHS.metrics && !metricsAuthorized(req.headers.authorization, metricsToken)) {
      res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": "Bearer" });
      res.end("Unauthorized\n");
      return;
    }
    const answer = req.method === "GET" ? answerProbe(path, sources) : Promise.resolve(undefined);
    answer
      .then((a) => {
        res.writeHead(a?.status ?? 404, { "content-type": a?.contentType ?? "text/plain; charset=utf-8", "cache-control": "no-store" });
        res.end(a?.body ?? "Not found\n");
      })
      .catch(() => {
        res.writeHead(500).end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

/** Where a `REDIS_URL` points, for messages: `host:port`, or a cluster's seed nodes; never a password. */
export function redisAddress(url: string): string {
  const target = parseRedisUrl(url);
  if (target.kind === "cluster") return target.nodes.map((n) => `${n.host}:${n.port}`).join(",");
  const parsed = new URL(target.url);
  return `${parsed.hostname}:${parsed.port || "6379"}`;
}

/** The `redis` readiness check: says where Redis is and what the last connection error was while it cannot be reached. */
export function redisReadiness(redis: RedisClient, at: string, problem: { last?: string }): Promise<ReadinessCheck> {
  return checkWithin("redis", 2_000, async () => {
    if (redis.status !== "ready")
      return `Redis unreachable at ${at} (connection ${redis.status}${problem.last ? `: ${problem.last}` : ""}); retrying`;
    await redis.ping();
    return undefined;
  });
}
