import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parse } from "yaml";
import { isRecord } from "../core/manifest.ts";
import { refuseBody } from "./http/body-limit.ts";

/** What the setup flow needs: where it listens, where GitHub is, and where the app will be reached. */
export interface SetupOptions {
  port: number;
  /** Where the setup page listens: loopback unless the operator chose otherwise (`SLUICE_SETUP_HOST`). */
  host: string;
  /** The app's public URL: webhooks and the manifest's redirect go there. */
  publicUrl: string;
  githubApiUrl: string;
  githubWebUrl: string;
  /** Register the app under this organization instead of the user who clicks. */
  organization?: string | undefined;
  /** Forward webhooks through this proxy (smee.io) in local development. */
  webhookProxyUrl?: string | undefined;
  /** The GitHub App manifest (`app.yml`). */
  manifestFile: string;
  /** The `.env` file the credentials are written to. */
  envFile: string;
  log: (message: string) => void;
}

/** The credentials GitHub hands over at the end of the manifest flow. */
export interface AppCredentials {
  APP_ID: string;
  PRIVATE_KEY: string;
  WEBHOOK_SECRET: string;
}

/** Text for HTML content or a quoted attribute, exactly (no line folding, unlike the comment's escaper). */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The manifest GitHub registers the app from: `app.yml`, pointed at this app. */
export function setupManifest(options: Pick<SetupOptions, "publicUrl" | "webhookProxyUrl" | "manifestFile">): Record<string, unknown> {
  const manifest: unknown = parse(readFileSync(options.manifestFile, "utf8"));
  if (!isRecord(manifest)) throw new Error(`${options.manifestFile}: not a GitHub App manifest (a mapping)`);
  return {
    ...manifest,
    hook_attributes: { url: options.webhookProxyUrl ?? `${options.publicUrl}/api/github/webhooks`, active: true },
    redirect_url: `${options.publicUrl}/setup/callback`,
  };
}

/** Sets `values` in a dotenv file, keeping its other lines; the file is readable by its owner only. */
export function writeEnvFile(file: string, values: Record<string, string>): void {
  const quote = (value: string) =>
    /[\s"#\\]/.test(value) ? `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"` : value;
  const kept = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => !Object.keys(values).some((key) => line.startsWith(`${key}=`)))
    : [];
  while (kept.at(-1) === "") kept.pop();
  const lines = [...kept, ...Object.entries(values).map(([key, value]) => `${key}=${quote(value)}`)];
  writeFileSync(file, `${lines.join("\n")}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The cookie that ties the manifest flow's `state` to the one browser that opened the setup link. */
const SESSION_COOKIE = "sluice_setup";

/** Whether two secrets are equal, in constant time. */
function same(given: string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? "");
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of cookie `name` in a request's Cookie header. */
function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const pair of (req.headers.cookie ?? "").split(";")) {
    const [key, value] = pair.trim().split("=", 2);
    if (key === name) return value;
  }
  return undefined;
}

/** Answers with a small HTML page that loads nothing and is neither cached nor referred from. */
function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action https: http:",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
  });
  res.end(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
      `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}` +
      `button{font:inherit;padding:.5rem 1rem}@media(prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}}</style>` +
      `</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`,
  );
}

/** Where GitHub registers a new app from a manifest: under the organization when one is named, else the user's. */
export function newAppUrl(options: Pick<SetupOptions, "githubWebUrl" | "organization">, state: string): string {
  const owner = options.organization ? `/organizations/${encodeURIComponent(options.organization)}` : "";
  return `${options.githubWebUrl}${owner}/settings/apps/new?state=${state}`;
}

/** One run of the manifest flow: the console link's one-time token, and the browser that traded it. */
interface SetupFlow {
  readonly options: SetupOptions;
  readonly token: string;
  /** The manifest, as the form posts it. */
  readonly manifest: string;
  /** The browser that traded the token, and the `state` of its manifest flow. */
  session: { id: string; state: string } | undefined;
  /** Ends the flow with the credentials GitHub handed over. */
  done: (credentials: AppCredentials) => void;
}

/**
 * Serves GitHub's manifest flow until it completes: a page that registers the GitHub App from
 * `app.yml`, then the callback that trades GitHub's code for the app's id, key and webhook secret
 * and writes them to `.env`. Resolves with the credentials once the port is free again, so the app
 * can take it.
 *
 * Whoever completes this flow chooses the app Sluice trusts, so the page opens only to the link
 * printed on the console: its one-time token is traded for a cookie in the first browser that
 * opens it, and the callback takes only the `state` of that browser's page, with its cookie. A
 * visitor who reaches the port gets neither the page nor a `state`.
 */
export async function runSetup(options: SetupOptions): Promise<AppCredentials> {
  let done: (credentials: AppCredentials) => void = () => undefined;
  const finished = new Promise<AppCredentials>((resolve) => {
    done = resolve;
  });
  const flow: SetupFlow = {
    options,
    token: randomBytes(24).toString("base64url"),
    manifest: JSON.stringify(setupManifest(options)),
    session: undefined,
    done,
  };
  const server = createServer((req, res) => {
    handleSetupRequest(flow, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      resolve();
    });
  });
  options.log(
    `no GitHub App credentials: open ${options.publicUrl}/?token=${flow.token} to register the app from app.yml (the setup page listens on ${options.host}; the link opens it in one browser only)`,
  );
  const credentials = await finished;
  await new Promise((resolve) => {
    server.close(resolve);
    server.closeAllConnections();
  });
  return credentials;
}

/** Answers one request to the setup server: the setup page, GitHub's callback, or 404. */
function handleSetupRequest(flow: SetupFlow, req: IncomingMessage, res: ServerResponse): void {
  // Nothing here takes a body: one is refused unread, and the connection closed rather than drained.
  if (req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? "0") > 0) {
    refuseBody(req, "The setup page takes no request body");
    return;
  }
  const url = new URL(req.url ?? "/", "http://localhost");
  const inSession = flow.session !== undefined && same(cookie(req, SESSION_COOKIE), flow.session.id);
  if (req.method === "GET" && url.pathname === "/") {
    const given = url.searchParams.get("token");
    if (given !== null) tradeToken(flow, res, given, inSession);
    else serveSetupPage(flow, res, inSession);
    return;
  }
  if (req.method === "GET" && url.pathname === "/setup/callback") {
    serveCallback(flow, res, url, inSession);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found: Sluice is waiting to be set up at /\n");
}

/**
 * Trades the console link's token for the session cookie, in the first browser that opens it; a
 * browser already in the session is sent on. Either way the token leaves the address bar.
 */
function tradeToken(flow: SetupFlow, res: ServerResponse, given: string, inSession: boolean): void {
  const headers: Record<string, string> = { location: "/", "cache-control": "no-store", "referrer-policy": "no-referrer" };
  if (!inSession) {
    if (flow.session || !same(given, flow.token)) {
      page(
        res,
        403,
        "Setup link not valid",
        "<p>This is not the link <code>sluice app</code> printed, or it was already opened in another browser. Restart <code>sluice app</code> for a new link.</p>",
      );
      return;
    }
    flow.session = { id: randomBytes(24).toString("base64url"), state: randomBytes(24).toString("base64url") };
    const secure = flow.options.publicUrl.startsWith("https:") ? "; Secure" : "";
    headers["set-cookie"] = `${SESSION_COOKIE}=${flow.session.id}; Path=/; HttpOnly; SameSite=Lax${secure}`;
  }
  // The token leaves the address bar; from here on the cookie is what opens the page.
  res.writeHead(303, headers).end();
}

/** The page that registers the app, for the browser in the session only. */
function serveSetupPage(flow: SetupFlow, res: ServerResponse, inSession: boolean): void {
  if (!flow.session || !inSession) {
    page(
      res,
      403,
      "Open the setup link",
      "<p>Sluice is waiting to be set up. Open the link <code>sluice app</code> printed on its console: it carries a one-time token.</p>",
    );
    return;
  }
  const { options } = flow;
  page(
    res,
    200,
    "Set up Sluice",
    `<p>Sluice has no GitHub App yet. Register one from <code>app.yml</code>: GitHub asks where to install it, and this page writes its id, private key and webhook secret to <code>${escapeHtml(options.envFile)}</code>.</p>` +
      `<form action="${escapeHtml(newAppUrl(options, flow.session.state))}" method="post"><input type="hidden" name="manifest" value="${escapeHtml(flow.manifest)}">` +
      `<button type="submit">Register the GitHub App</button></form>` +
      `<p>Webhooks will go to <code>${escapeHtml(options.webhookProxyUrl ?? `${options.publicUrl}/api/github/webhooks`)}</code>.</p>`,
  );
}

/**
 * GitHub's redirect after registering the app: trades its code for the credentials, writes them
 * to the `.env` file, sends the browser on to install the app, and ends the flow.
 */
function serveCallback(flow: SetupFlow, res: ServerResponse, url: URL, inSession: boolean): void {
  const { options, session } = flow;
  const code = url.searchParams.get("code") ?? "";
  // The state must be this browser's: a state read elsewhere, or a code from another browser's flow, is refused.
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(code) || !session || !inSession || !same(url.searchParams.get("state") ?? "", session.state)) {
    page(
      res,
      400,
      "Setup link not valid",
      "<p>This link did not come from the setup page in this browser. Start again from the link <code>sluice app</code> printed.</p>",
    );
    return;
  }
  convert(options.githubApiUrl, code)
    .then(({ credentials, htmlUrl }) => {
      writeEnvFile(options.envFile, { ...credentials });
      options.log(`GitHub App ${credentials.APP_ID} registered; its credentials are in ${options.envFile}`);
      res.writeHead(302, { location: `${htmlUrl}/installations/new`, "cache-control": "no-store" }).end();
      flow.done(credentials);
    })
    .catch((error: unknown) => {
      page(
        res,
        502,
        "GitHub did not register the app",
        `<p>${escapeHtml(error instanceof Error ? error.message : String(error))}</p><p><a href="/">Try again</a>.</p>`,
      );
    });
}

/** Trades the manifest flow's code for the new app's credentials (`POST /app-manifests/{code}/conversions`). */
async function convert(apiUrl: string, code: string): Promise<{ credentials: AppCredentials; htmlUrl: string }> {
  const response = await fetch(`${apiUrl}/app-manifests/${code}/conversions`, {
    method: "POST",
    headers: { accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28", "user-agent": "sluice-setup" },
  });
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok || !isRecord(body))
    throw new Error(
      `GitHub answered ${response.status} to the manifest conversion${isRecord(body) && typeof body.message === "string" ? `: ${body.message}` : ""}`,
    );
  const { id, pem, webhook_secret: secret, html_url: htmlUrl } = body;
  if (typeof id !== "number" || typeof pem !== "string" || typeof secret !== "string" || typeof htmlUrl !== "string")
    throw new Error("GitHub's manifest conversion did not carry the app's id, private key, webhook secret and URL");
  return { credentials: { APP_ID: String(id), PRIVATE_KEY: pem, WEBHOOK_SECRET: secret }, htmlUrl };
}
