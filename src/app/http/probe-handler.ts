import type { IncomingMessage, ServerResponse } from "node:http";
import { answerProbe, metricsAuthorized, PROBE_PATHS, type ProbeSources } from "../../core/probes.ts";

/**
 * Serves `/healthz`, `/readyz` and `/metrics` on the app's server; anything else falls through.
 * With `metricsToken`, `/metrics` (which names repositories and environments) answers 401 without it.
 */
export function probeHandler(sources: ProbeSources, metricsToken?: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === PROBE_PATHS.metrics && !metricsAuthorized(req.headers.authorization, metricsToken)) {
      res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": "Bearer" });
      res.end("Unauthorized\n");
      return true;
    }
    const answer = await answerProbe(path, sources);
    if (!answer) return false;
    res.writeHead(answer.status, { "content-type": answer.contentType, "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : answer.body);
    return true;
  };
}
