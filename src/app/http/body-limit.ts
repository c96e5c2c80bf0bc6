import type { IncomingMessage, Server, ServerResponse } from "node:http";

/** GitHub sends webhook payloads of at most 25 MB. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Puts a size limit in front of the server's request handling: a POST to `path` is read up to
 * `maxBytes` before anything else sees it (signature checks included), and refused with 413 past
 * that. The body is handed on as `req.body`, which the webhook middleware reads instead of the
 * stream.
 */
export function limitRequestBodies(server: Server, path: string, maxBytes = MAX_WEBHOOK_BYTES): void {
  const listeners = server.listeners("request") as RequestListener[];
  server.removeAllListeners("request");
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    for (const listener of listeners) listener(req, res);
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "POST" || !(req.url ?? "").startsWith(path)) {
      forward(req, res);
      return;
    }
    const tooLarge = (): void => {
      // The connection is dropped once the answer is out, so the rest of the body is never read.
      res
        .writeHead(413, { "content-type": "text/plain; charset=utf-8", connection: "close" })
        .end(`Payload over the limit of ${maxBytes} bytes\n`, () => req.destroy());
    };
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > maxBytes) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxBytes) {
        refused = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (refused) return;
      (req as IncomingMessage & { body?: string }).body = Buffer.concat(chunks).toString("utf8");
      forward(req, res);
    });
  });
}
