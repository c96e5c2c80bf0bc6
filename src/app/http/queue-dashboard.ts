import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { BaseAdapter } from "@bull-board/api/dist/queueAdapters/base.js";
import { Queue } from "bullmq";
import { scanKeys, type RedisClient } from "../../redis/connection.ts";
import { REPORT_QUEUE } from "../../core/agent-protocol.ts";
import { isRecord } from "../../core/manifest.ts";
import { DEPLOY_REQUEST_QUEUE, LIVE_TIMEOUT_QUEUE, PREVIEW_QUEUE } from "../queue/queues.ts";
import { QUEUE_PREFIX } from "../state/redis-keys.ts";

/** Where the queue dashboard is served. */
export const DASHBOARD_PATH = "/sluice/queues";
/** Strings longer than this are shown by their length only. */
const LONGEST_STRING = 200;
/** How often the dashboard looks for agents' queues it does not list yet. */
const DISCOVERY_MS = 60_000;

/**
 * What the dashboard shows of a job's data: the signed message's kind and fields, but never its
 * objects, diffs or any long string (a job carries the rendered objects, Secrets included).
 */
export function dashboardView(data: unknown): unknown {
  if (isRecord(data) && typeof data.kind === "string" && typeof data.body === "string" && typeof data.sig === "string") {
    let body: unknown;
    try {
      body = JSON.parse(data.body);
    } catch {
      body = "(not JSON)";
    }
    const shown = summarize(body);
    return { signed: data.kind, ...(isRecord(shown) ? shown : { body: shown }) };
  }
  return summarize(data);
}

function summarize(value: unknown): unknown {
  if (typeof value === "string") return value.length > LONGEST_STRING ? `(${value.length} characters)` : value;
  if (Array.isArray(value)) return value.map(summarize);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key === "objects") out[key] = objectsNote(inner);
    else if (key === "diff" || key === "data" || key === "stringData") out[key] = "(not shown)";
    else out[key] = summarize(inner);
  }
  return out;
}

/** A job's objects, inline (`{ inline: [...] }`) or as a list, by their number only. */
function objectsNote(objects: unknown): string {
  const list = Array.isArray(objects) ? objects : isRecord(objects) && Array.isArray(objects.inline) ? objects.inline : undefined;
  return list ? `(${list.length} objects, not shown)` : "(objects in a blob, not shown)";
}

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? "";
  const given = header.startsWith("Basic ") ? Buffer.from(header.slice(6), "base64").toString("utf8") : "";
  // Any user name; the password is the token.
  const password = Buffer.from(given.slice(given.indexOf(":") + 1));
  const expected = Buffer.from(token);
  return given.includes(":") && password.length === expected.length && timingSafeEqual(password, expected);
}

/**
 * bull-board at `/sluice/queues`, behind HTTP basic authentication whose password is `token`:
 * the app's queues and every agent queue found in Redis. Read-only unless `writable`; job data is
 * shown through `dashboardView` only.
 */
export async function queueDashboard(options: { redis: RedisClient; token: string; writable: boolean }) {
  const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }, { default: express }] = await Promise.all([
    import("@bull-board/api"),
    import("@bull-board/api/bullMQAdapter"),
    import("@bull-board/express"),
    import("express"),
  ]);
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  const listed = new Map<string, Queue>();
  const adapter = (queue: Queue): BaseAdapter => {
    const adapted = new BullMQAdapter(queue, { readOnlyMode: !options.writable });
    adapted.setFormatter("data", dashboardView);
    adapted.setFormatter("returnValue", dashboardView);
    return adapted;
  };
  const board = createBullBoard({ queues: [], serverAdapter, options: { uiConfig: { boardTitle: "Sluice" } } });
  const list = (name: string, prefix: string): void => {
    const key = `${prefix}:${name}`;
    if (listed.has(key)) return;
    const queue = new Queue(name, { connection: options.redis, prefix });
    listed.set(key, queue);
    board.addQueue(adapter(queue));
  };
  for (const name of [PREVIEW_QUEUE, DEPLOY_REQUEST_QUEUE, LIVE_TIMEOUT_QUEUE]) list(name, QUEUE_PREFIX);
  list(REPORT_QUEUE.name, REPORT_QUEUE.prefix);
  // Agents' queues are named after environments, which only the repositories' configurations know: found by their meta keys.
  let discoveredAt = -Infinity;
  const discover = async (): Promise<void> => {
    if (performance.now() - discoveredAt < DISCOVERY_MS) return;
    discoveredAt = performance.now();
    for (const key of await scanKeys(options.redis, "{sluice-*}:*:meta")) {
      const match = /^(\{sluice-[^}]+\}):(.+):meta$/.exec(key);
      if (match?.[1] && match[2]) list(match[2], match[1]);
    }
  };
  const app = express();
  app.disable("x-powered-by");
  app.use(DASHBOARD_PATH, serverAdapter.getRouter() as ReturnType<typeof express.Router>);
  return {
    handler: async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
      const path = new URL(req.url ?? "/", "http://localhost").pathname;
      if (path !== DASHBOARD_PATH && !path.startsWith(`${DASHBOARD_PATH}/`)) return false;
      if (!authorized(req, options.token)) {
        res.writeHead(401, {
          "www-authenticate": 'Basic realm="Sluice queues", charset="UTF-8"',
          "content-type": "text/plain; charset=utf-8",
        });
        res.end("Unauthorized\n");
        return true;
      }
      await discover();
      res.setHeader("cache-control", "no-store");
      res.setHeader("x-frame-options", "DENY");
      app(req as Parameters<typeof app>[0], res as Parameters<typeof app>[1]);
      return true;
    },
    close: async (): Promise<void> => {
      await Promise.all([...listed.values()].map((q) => q.close()));
    },
  };
}
