import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { pinoHttp } from "pino-http";
import { describe, expect, it } from "vitest";
import { appLogger } from "../../../src/app/logger.ts";

/** GETs `path` from a server that answers `status`, logged by pino-http (as Probot's server logs) into `lines`. */
async function served(path: string, status: number, lines: string[]): Promise<void> {
  const logger = appLogger("info", { write: (line: string) => void lines.push(line) });
  const http = pinoHttp({ logger: logger.child({ name: "http" }) });
  const server = createServer((req, res) => {
    http(req, res);
    res.statusCode = status;
    res.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve, reject) => {
    request({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, path }, (res) => {
      res.resume();
      res.on("end", resolve);
    })
      .on("error", reject)
      .end();
  });
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

describe("the app's logger", () => {
  it("leaves out probes and scrapes that succeed, and keeps every other request and every failing probe", async () => {
    const lines: string[] = [];
    for (const path of ["/healthz", "/readyz", "/metrics", "/metrics?x=1"]) await served(path, 200, lines);
    expect(lines).toEqual([]);

    await served("/readyz", 503, lines);
    await served("/api/github/webhooks", 200, lines);
    const urls = lines.map((line) => (JSON.parse(line) as { req: { url: string }; res: { statusCode: number } }).req.url);
    expect(urls).toEqual(["/readyz", "/api/github/webhooks"]);
  });
});
