import type { IncomingMessage, Server, ServerResponse } from "node:http";

/** GitHub sends webhook payloads of at most 25 MB. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * How long a refused connection stays open, unread, once its answer and FIN are out. Closing a
 * socket with unread data resets the connection, and a client still sending could lose the answer
 * to that reset; meanwhile what it sends waits unread in the socket buffers (a few MiB).
 */
const LINGER_MS = 2_000;

/**
 * Answers 413 with `reason` and ends the connection without reading another byte of the body. The
 * answer is written to the socket itself: the server's own response would drain the unread body
 * for keep-alive.
 */
export function refuseBody(
  req: IncomingMessage,
  reason: string,
  status: "413 Payload Too Large" | "503 Service Unavailable" = "413 Payload Too Large",
): void {
  req.pause();
  const body = `${reason}\n`;
  const { socket } = req;
  socket.end(
    `HTTP/1.1 ${status}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/**
 * The path a request is routed by, computed as @octokit/webhooks' middleware computes it (trailing
 * slashes dropped, then the URL resolved): `/x/../api/github/webhooks`, an absolute-form
 * `http://host/api/github/webhooks` and `//host/api/github/webhooks` all reach the webhook
 * middleware, so they must all meet the limit. Undefined when the URL does not parse (the
 * middleware refuses it unread).
 */
function routedPath(url: string): string | undefined {
  try {
    return new URL(url.replace(/\/+$/, "") || "/", "http://localhost").pathname;
  } catch {
    return undefined;
  }
}

/**
 * Puts a size limit on every request body the server takes, whatever its path:
 *
 * - a declared `Content-Length` over `maxBytes` is refused with 413 before a byte of the body is read;
 * - a POST routed to `path` (the webhook path, matched as the webhook middleware matches it) is
 *   read up to `maxBytes` before anything else sees it, signature checks included, and refused
 *   with 413 past that; the body is handed on as `req.body`, which the webhook middleware reads
 *   instead of the stream;
 * - any other request goes to its handler as it is, and the body bytes its handler reads are
 *   counted: past `maxBytes` the connection is ended with 413. What a handler left unread once it
 *   has answered is not drained, as Node would otherwise do for keep-alive: the connection is
 *   closed. A chunked body nobody reads is cut off there.
 */
export function limitRequestBodies(
  server: Server,
  path: string,
  maxBytes = MAX_WEBHOOK_BYTES,
  options: { maxInFlightBytes?: number; readTimeoutMs?: number } = {},
): void {
  const maxInFlight = options.maxInFlightBytes ?? 4 * maxBytes;
  // Webhook bodies are read whole before their signature can be checked: the bytes held for
  // bodies not yet handed on have one budget for the whole server, so connections that never
  // send their last byte cannot hold 25 MB each without end. GitHub retries a 503.
  let inFlight = 0;
  // Headers and body must arrive within this; GitHub sends a delivery in one go.
  server.requestTimeout = Math.min(server.requestTimeout || Infinity, options.readTimeoutMs ?? 60_000);
  const listeners = server.listeners("request") as RequestListener[];
  server.removeAllListeners("request");
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    for (const listener of listeners) listener(req, res);
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (Number(req.headers["content-length"] ?? "0") > maxBytes) {
      refuseBody(req, `Payload over the limit of ${maxBytes} bytes`);
      return;
    }
    if (req.method !== "POST" || routedPath(req.url ?? "/") !== path) {
      // Whoever reads the body, each chunk is counted here first: a prepended listener does not set
      // the stream flowing, as `on("data")` would. The dashboard's JSON parser, past its own limit,
      // reads the rest of the body before it answers: it gets as far as `maxBytes`.
      let read = 0;
      req.prependListener("data", (chunk: Buffer) => {
        const over = read <= maxBytes && read + chunk.length > maxBytes;
        read += chunk.length;
        if (!over) return;
        if (res.headersSent) req.destroy();
        else refuseBody(req, `Payload over the limit of ${maxBytes} bytes`);
      });
      res.once("finish", () => {
        if (!req.complete) req.destroy();
      });
      forward(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let held = 0;
    let refused = false;
    const release = (): void => {
      inFlight -= held;
      held = 0;
    };
    req.once("close", release);
    const refuse = (reason: string, status?: "503 Service Unavailable"): void => {
      refused = true;
      chunks.length = 0;
      release();
      refuseBody(req, reason, status);
    };
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxBytes) {
        refuse(`Payload over the limit of ${maxBytes} bytes`);
        return;
      }
      if (inFlight + chunk.length > maxInFlight) {
        refuse(`Webhook bodies in flight are over the limit of ${maxInFlight} bytes; try again`, "503 Service Unavailable");
        return;
      }
      inFlight += chunk.length;
      held += chunk.length;
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (refused) return;
      (req as IncomingMessage & { body?: string }).body = Buffer.concat(chunks).toString("utf8");
      // Handed on: the buffers become the body string, which the handler holds from here.
      release();
      forward(req, res);
    });
  });
}
