import type { IncomingMessage, ServerResponse } from "node:http";
import { renderHtmlPage, type PageViews } from "../../core/html.ts";
import { DIFF_PAGE_PATH, type DiffPages } from "../preview/diff-pages.ts";

const HEADERS = {
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cache-control": "private, no-store",
};

function reply(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): true {
  res.writeHead(status, { ...HEADERS, "content-type": type });
  res.end(body);
  return true;
}

/**
 * Serves `/sluice/diff/<id>?exp=…&sig=…`: 403 for a forged or malformed link, 410 for an
 * expired one (or one whose data is gone), neither saying more; the page otherwise.
 */
export function diffPageHandler(pages: DiffPages, views: () => Promise<PageViews>, now: () => number) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith(DIFF_PAGE_PATH)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") return reply(res, 405, "Method not allowed\n");
    const verdict = pages.verify(
      url.pathname.slice(DIFF_PAGE_PATH.length),
      url.searchParams.get("exp"),
      url.searchParams.get("sig"),
      now(),
    );
    if (!verdict.ok) return reply(res, verdict.status, verdict.status === 403 ? "Forbidden\n" : "Gone\n");
    const page = await pages.load(verdict.id);
    if (!page) return reply(res, 410, "Gone\n");
    return reply(
      res,
      200,
      renderHtmlPage(page.report, await views(), {
        title: page.title,
        subtitle: page.subtitle,
        ...(page.live ? { live: page.live } : {}),
        ...(page.link ? { link: page.link } : {}),
      }),
      "text/html; charset=utf-8",
    );
  };
}
