import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DEPLOY_REQUEST_QUEUE } from "../../src/app/queue/queues.ts";
import { QUEUE_PREFIX } from "../../src/app/state/redis-keys.ts";
import { limitRequestBodies } from "../../src/app/http/body-limit.ts";
import { DiffPages } from "../../src/app/preview/diff-pages.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import { loadSettings } from "../../src/app/settings.ts";
import { runSetup, type AppCredentials } from "../../src/app/setup.ts";
import { freePort } from "../env/ports.ts";
import { startHarness, WEBHOOK_SECRET, type AppHarness } from "../helpers/app-harness.ts";
import { removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { startSluice } from "../helpers/processes.ts";

// The app's edges, played as an attacker who can reach its port: request bodies on every path, the
// setup page before the app is configured, and the keys of what the app keeps in Redis.

/** The Redis MAC secret the app under test is configured with, apart from its webhook secret. */
const MAC_SECRET = "redis-mac-secret-for-the-edges-tests";
/** The Redis MAC secret rotated out, still accepted during the overlap. */
const PREVIOUS_MAC_SECRET = "redis-mac-secret-before-the-rotation";
const LINK_SECRET = "diff-page-link-secret-for-the-edges-tests";
const DASHBOARD_TOKEN = "dashboard-token-for-the-edges-tests";

let h: AppHarness;

function tried(attempt: string, outcome: string): void {
  process.stdout.write(`  [attacker] tried: ${attempt}\n  [attacker] result: ${outcome}\n`);
}

beforeAll(async () => {
  h = await startHarness({
    redisUrl: inject("redisUrl"),
    kustomize: inject("kustomize"),
    helm: inject("helm"),
    database: 7,
    env: {
      SLUICE_REDIS_MAC_SECRET: MAC_SECRET,
      SLUICE_REDIS_MAC_PREVIOUS_SECRETS: `another-retired-secret-0000,${PREVIOUS_MAC_SECRET}`,
      SLUICE_LINK_SECRET: LINK_SECRET,
      SLUICE_DASHBOARD_TOKEN: DASHBOARD_TOKEN,
      SLUICE_DASHBOARD_WRITE: "true",
    },
  });
});
afterAll(async () => {
  await h.stop();
  await removeCheckouts();
});

/** What the server did with a streamed body: the status it answered (if it did) and how many body bytes it let in. */
interface Streamed {
  status: number | undefined;
  /** Body bytes the server's socket accepted before it closed the connection (all of them if it never did). */
  sent: number;
}

const MiB = 1024 * 1024;

/**
 * Sends a request head, then a body of `total` bytes over a raw socket (chunked when `chunked`,
 * else as the declared Content-Length), for as long as the server takes it: writes wait for the
 * socket to drain, so the count stops where the server stopped reading (plus the kernel's socket
 * buffers). Sending goes on after an answer, since a server that answers early may still read the
 * rest. Resolves once the connection is closed or the whole body is sent and answered.
 */
function stream(port: number, head: string, total: number, chunked: boolean): Promise<Streamed> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const result: Streamed = { status: undefined, sent: 0 };
    let answer = "";
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(result);
    };
    socket.on("data", (data: Buffer) => {
      answer += data.toString("latin1");
      result.status ??= Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]) || undefined;
      if (result.status !== undefined && result.sent >= total) finish();
    });
    socket.on("error", finish);
    socket.on("close", finish);
    const chunk = Buffer.alloc(MiB, "x");
    const frame = chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]) : chunk;
    const write = (): void => {
      while (result.sent < total && !socket.destroyed) {
        result.sent += chunk.length;
        if (!socket.write(frame)) {
          socket.once("drain", write);
          return;
        }
      }
      if (!socket.destroyed && chunked) socket.write("0\r\n\r\n");
      if (result.status !== undefined) finish();
    };
    socket.once("connect", () => {
      socket.write(head);
      write();
    });
  });
}

/** A webhook request head as GitHub sends one (with a signature that will not verify), at `target`. */
function webhookHead(target: string, total: number, chunked: boolean): string {
  return (
    `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\nx-github-event: push\r\n` +
    `x-github-delivery: 7c1e4a20-0000-4000-8000-000000000000\r\nx-hub-signature-256: sha256=${"0".repeat(64)}\r\n` +
    `${chunked ? "transfer-encoding: chunked" : `content-length: ${total}`}\r\n\r\n`
  );
}

describe("request bodies", { timeout: 120_000 }, () => {
  const total = 200 * MiB;
  const port = (): number => Number(new URL(h.url).port);

  for (const [name, target] of [
    ["a dot segment", () => "/x/../api/github/webhooks"],
    ["an absolute-form URL", () => `http://127.0.0.1:${port()}/api/github/webhooks`],
    ["a network-path reference", () => "//evil.example/api/github/webhooks"],
  ] as const) {
    for (const chunked of [false, true]) {
      it(`refuses a 200 MiB webhook body sent to the webhook path through ${name} (${chunked ? "chunked" : "declared"}) before reading it`, async () => {
        const streamed = await stream(port(), webhookHead(target(), total, chunked), total, chunked);
        expect(streamed.status).toBe(413);
        // The server stopped reading at the limit: what it let in is the limit plus socket buffers at most.
        expect(streamed.sent).toBeLessThan(100 * MiB);
        tried(
          `POST ${target()} with a 200 MiB ${chunked ? "chunked" : "declared"} body`,
          `413 after ${streamed.sent / MiB} MiB were let in`,
        );
      });
    }
  }

  it("does not drain a chunked body that a handler answering other paths never reads", async () => {
    for (const target of ["/", "/healthz", "/sluice/diff/x", "/api/github/webhooks"]) {
      const streamed = await stream(port(), `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n`, total, true);
      expect(streamed.status, target).toBeDefined();
      expect(streamed.sent, target).toBeLessThan(100 * MiB);
      tried(`GET ${target} with a 200 MiB chunked body`, `answered ${streamed.status}, connection closed after ${streamed.sent / MiB} MiB`);
    }
  });

  it("cuts off a chunked body past the dashboard's own JSON limit instead of draining it", async () => {
    const auth = Buffer.from(`ops:${DASHBOARD_TOKEN}`).toString("base64");
    const head =
      `PUT /sluice/queues/api/queues HTTP/1.1\r\nHost: 127.0.0.1\r\nauthorization: Basic ${auth}\r\n` +
      "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    const streamed = await stream(port(), head, total, true);
    expect(streamed.status).toBe(413);
    expect(streamed.sent).toBeLessThan(100 * MiB);
    tried("an authenticated dashboard PUT with a 200 MiB chunked JSON body", `413, connection closed after ${streamed.sent / MiB} MiB`);
  });

  it("hands a handler that reads a body all of it", async () => {
    const marker = "x".repeat(50_000);
    const added = await fetch(`${h.url}/sluice/queues/api/queues/${DEPLOY_REQUEST_QUEUE}/add`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`ops:${DASHBOARD_TOKEN}`).toString("base64")}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "edges-probe", data: { marker }, options: {} }),
    });
    expect(added.status).toBe(200);
    const { job } = (await added.json()) as { job: { id: string } };
    const queue = new Queue(DEPLOY_REQUEST_QUEUE, { connection: h.redis, prefix: QUEUE_PREFIX });
    try {
      const stored = await queue.getJob(job.id);
      expect((stored?.data as { marker?: string } | undefined)?.marker).toBe(marker);
      await stored?.remove();
    } finally {
      await queue.close();
    }
  });

  it("refuses a declared body over the limit on any path without reading it", async () => {
    for (const target of ["/", "/sluice/queues", "/setup/callback"]) {
      const streamed = await stream(port(), `PUT ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: ${total}\r\n\r\n`, total, false);
      expect([target, streamed.status]).toEqual([target, 413]);
      expect(streamed.sent, target).toBeLessThan(100 * MiB);
    }
  });

  it("still takes a webhook within the limit", async () => {
    expect((await h.deliver("ping", { zen: "Keep it logically awesome.", hook_id: 1 })).status).toBe(200);
  });
});

/** A browser as far as the setup page cares: it keeps the cookies it is given and does not follow redirects. */
class Browser {
  readonly #cookies = new Map<string, string>();

  async get(url: string): Promise<{ status: number; location: string | null; body: string }> {
    const cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    const response = await fetch(url, { redirect: "manual", headers: cookie ? { cookie } : {} });
    for (const line of response.headers.getSetCookie()) {
      const [name = "", value = ""] = (line.split(";")[0] ?? "").split("=", 2);
      this.#cookies.set(name.trim(), value);
    }
    return { status: response.status, location: response.headers.get("location"), body: await response.text() };
  }
}

/** The `state` in a setup page's form, unescaped. */
function stateOf(page: string): string {
  const action = /<form action="([^"]+)" method="post">/
    .exec(page)?.[1]
    ?.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
  const state = action ? new URL(action).searchParams.get("state") : null;
  if (!state) throw new Error(`the setup page carries no form with a state:\n${page}`);
  return state;
}

/** The setup flow served in this process, as `sluice app` serves it before it is configured. */
async function serveSetup(): Promise<{
  origin: string;
  link: string;
  credentials: Promise<AppCredentials>;
  finish: (browser: Browser, state: string) => Promise<void>;
}> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const lines: string[] = [];
  const credentials = runSetup({
    port,
    host: "127.0.0.1",
    publicUrl: origin,
    githubApiUrl: h.github.url,
    githubWebUrl: "https://github.example",
    manifestFile: fileURLToPath(new URL("../../app.yml", import.meta.url)),
    envFile: join(await tempDir("sluice-setup-"), ".env"),
    log: (line) => lines.push(line),
  });
  await expect.poll(() => lines.join("\n"), { timeout: 30_000 }).toMatch(/open (\S+) to register the app/);
  const link = /open (\S+) to register the app/.exec(lines.join("\n"))?.[1] ?? "";
  return {
    origin,
    link,
    credentials,
    finish: async (browser, state) => {
      h.github.manifestCode = "code-of-the-owner";
      const callback = await browser.get(`${origin}/setup/callback?code=code-of-the-owner&state=${state}`);
      expect([callback.status, callback.location]).toEqual([302, "https://github.example/apps/sluice-test/installations/new"]);
      expect((await credentials).WEBHOOK_SECRET).toBe("fake-webhook-secret-from-the-manifest-flow");
    },
  };
}

/** The addresses something listens on at TCP `port` on this machine, from the kernel's own tables. */
function listeningAddresses(port: number): string[] {
  const addresses: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const [, local = "", , state = ""] = line.trim().split(/\s+/);
      const [hex = "", portHex = ""] = local.split(":");
      if (state !== "0A" || Number.parseInt(portHex, 16) !== port) continue;
      // Each 32-bit word is in host (little-endian) byte order.
      const bytes = (hex.match(/.{8}/g) ?? []).flatMap((word) => (word.match(/../g) ?? []).reverse().map((b) => Number.parseInt(b, 16)));
      addresses.push(
        bytes.length === 4
          ? bytes.join(".")
          : bytes.every((b, i) => (i < 10 ? b === 0 : i < 12 ? b === 255 : true))
            ? bytes.slice(12).join(".")
            : bytes.every((b) => b === 0)
              ? "::"
              : bytes.map((b) => b.toString(16).padStart(2, "0")).join(""),
      );
    }
  }
  return addresses;
}

describe("the setup page", { timeout: 120_000 }, () => {
  it("opens only to the link printed on the console, in the one browser that opened it first", async () => {
    const setup = await serveSetup();
    const owner = new Browser();
    const stranger = new Browser();
    const refused = await stranger.get(`${setup.origin}/`);
    expect(refused.status).toBe(403);
    expect(refused.body).not.toContain("state=");
    expect((await stranger.get(`${setup.origin}/?token=guessed`)).status).toBe(403);
    expect(setup.link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
    const opened = await owner.get(setup.link);
    expect([opened.status, opened.location]).toEqual([303, "/"]);
    const page = await owner.get(`${setup.origin}/`);
    expect(page.status).toBe(200);
    const state = stateOf(page.body);
    // The token is spent: the same link opens nothing for anyone else.
    const again = await stranger.get(setup.link);
    expect(again.status).toBe(403);
    expect(again.body).not.toContain(state);
    expect((await stranger.get(`${setup.origin}/`)).status).toBe(403);
    await setup.finish(owner, state);
    tried(
      "the setup page without the console's token, with a guessed one, and with the owner's once spent",
      "403 each time; no state given out",
    );
  });

  it("takes GitHub's code only from the browser whose page holds the state, with that page's cookie", async () => {
    const setup = await serveSetup();
    const owner = new Browser();
    await owner.get(setup.link);
    const state = stateOf((await owner.get(`${setup.origin}/`)).body);
    const conversions = h.github.calls("apps/create-from-manifest").length;
    // A visitor who learned the state registers their own app and sends its code without the owner's cookie.
    h.github.manifestCode = "code-of-the-attacker";
    const forged = await new Browser().get(`${setup.origin}/setup/callback?code=code-of-the-attacker&state=${state}`);
    expect(forged.status).toBe(400);
    // The owner's cookie with another state is refused too.
    const wrongState = await owner.get(`${setup.origin}/setup/callback?code=code-of-the-attacker&state=${"x".repeat(state.length)}`);
    expect(wrongState.status).toBe(400);
    expect(h.github.calls("apps/create-from-manifest")).toHaveLength(conversions);
    await setup.finish(owner, state);
    tried("the owner's state with the attacker's manifest code, from another browser", "400; GitHub was never asked to convert the code");
  });

  it("takes no request body, and closes the connection instead of draining one", async () => {
    const setup = await serveSetup();
    const port = Number(new URL(setup.origin).port);
    const streamed = await stream(
      port,
      "POST /setup/callback HTTP/1.1\r\nHost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n",
      200 * MiB,
      true,
    );
    expect(streamed.status).toBe(413);
    expect(streamed.sent).toBeLessThan(100 * MiB);
    const owner = new Browser();
    await owner.get(setup.link);
    await setup.finish(owner, stateOf((await owner.get(`${setup.origin}/`)).body));
  });

  it("listens on loopback until the app is configured, unless SLUICE_SETUP_HOST says otherwise", async () => {
    for (const [given, expected] of [
      [{}, ["127.0.0.1"]],
      [{ HOST: "0.0.0.0" }, ["127.0.0.1"]],
      [{ SLUICE_SETUP_HOST: "0.0.0.0" }, ["0.0.0.0"]],
    ] as const) {
      const port = await freePort();
      const app = await startSluice(
        "app",
        { GITHUB_API_URL: h.github.url, PORT: String(port), LOG_LEVEL: "warn", ...given },
        /to register the app/,
        { cwd: await tempDir("sluice-setup-host-") },
      );
      try {
        expect([given, listeningAddresses(port)]).toEqual([given, expected]);
        const link = /open (\S+) to register the app/.exec(app.output())?.[1] ?? "";
        expect(link).toMatch(new RegExp(`^http://localhost:${port}/\\?token=[A-Za-z0-9_-]{32}$`));
        const opened = await new Browser().get(link.replace("localhost", "127.0.0.1"));
        expect(opened.status).toBe(303);
      } finally {
        await app.stop();
      }
    }
    tried(
      "reaching the setup page of an unconfigured app from another host",
      "it listens on 127.0.0.1 only unless SLUICE_SETUP_HOST is set",
    );
  });
});

describe("the Redis MAC key", () => {
  const data = '{"request":"preview"}';

  it("verifies a MAC made under a previous secret during the overlap, and one under an unknown secret never", () => {
    let mismatches = 0;
    const rotated = new RedisMac({ current: MAC_SECRET, previous: [PREVIOUS_MAC_SECRET] }, () => {
      mismatches++;
    });
    const before = new RedisMac(PREVIOUS_MAC_SECRET).sign("preview-render", data);
    expect(rotated.verify("preview-render", data, before)).toBe(true);
    expect(rotated.verify("preview-render", data, new RedisMac("a-secret-nobody-configured").sign("preview-render", data))).toBe(false);
    // A previous key's MAC is still bound to its purpose.
    expect(rotated.verify("deploy-requests", data, before)).toBe(false);
    // New MACs are made with the current secret only; once the overlap ends, the old MAC is refused.
    expect(rotated.sign("preview-render", data)).toBe(new RedisMac(MAC_SECRET).sign("preview-render", data));
    expect(new RedisMac(MAC_SECRET).verify("preview-render", data, before)).toBe(false);
    expect(mismatches).toBe(2);
  });

  it("takes SLUICE_REDIS_MAC_SECRET apart from the webhook secret, and the webhook secret only when it is unset", async () => {
    const base = { APP_ID: "1", PRIVATE_KEY: "k", REDIS_URL: "redis://r:6379" };
    const one = await loadSettings({ ...base, WEBHOOK_SECRET: "first-webhook-secret", SLUICE_REDIS_MAC_SECRET: MAC_SECRET });
    const rotated = await loadSettings({
      ...base,
      WEBHOOK_SECRET: "rotated-webhook-secret",
      SLUICE_REDIS_MAC_SECRET: MAC_SECRET,
      SLUICE_REDIS_MAC_PREVIOUS_SECRETS: ` ${PREVIOUS_MAC_SECRET} ,\nanother-retired-secret-0000`,
    });
    const sealed = new RedisMac(one.redisMacSecrets).sign("preview-render", data);
    expect(new RedisMac(rotated.redisMacSecrets).verify("preview-render", data, sealed)).toBe(true);
    expect(rotated.redisMacSecrets).toEqual({ current: MAC_SECRET, previous: [PREVIOUS_MAC_SECRET, "another-retired-secret-0000"] });
    // Installs that never set it keep the MACs they made: the key still derives from the webhook secret.
    const legacy = await loadSettings({ ...base, WEBHOOK_SECRET: WEBHOOK_SECRET, SLUICE_REDIS_MAC_SECRET: "" });
    expect(new RedisMac(legacy.redisMacSecrets).sign("preview-render", data)).toBe(
      new RedisMac(WEBHOOK_SECRET).sign("preview-render", data),
    );
    await expect(loadSettings({ ...base, WEBHOOK_SECRET: "w", SLUICE_REDIS_MAC_SECRET: "short" })).rejects.toThrow(
      "SLUICE_REDIS_MAC_SECRET: the Redis MAC secret must be at least 16 characters, got 5",
    );
  });

  it("serves what was sealed under the current or a previous secret, and nothing sealed with the webhook secret or an unknown one", async () => {
    const failures = async (): Promise<number> =>
      Number(/^sluice_redis_mac_failures_total (\d+)$/m.exec(await (await fetch(`${h.url}/metrics`)).text())?.[1] ?? Number.NaN);
    const before = await failures();
    /** Stores a diff page as a Redis writer holding `secret` would, and asks the app for it. */
    const served = async (secret: string): Promise<number> => {
      const pages = new DiffPages(h.redis, { publicUrl: h.url, secret: LINK_SECRET, ttlSeconds: 3600, mac: new RedisMac(secret) });
      const link = await pages.store(
        { title: `sealed with ${secret}`, subtitle: "", report: { environments: [], errors: [] } },
        h.clock.now,
      );
      return (await fetch(link)).status;
    };
    expect(await served(MAC_SECRET)).toBe(200);
    expect(await served(PREVIOUS_MAC_SECRET)).toBe(200);
    // 410: the app reads the page as gone, since it did not write it.
    expect(await served(WEBHOOK_SECRET)).toBe(410);
    expect(await served("a-secret-nobody-configured")).toBe(410);
    expect(await failures()).toBe(before + 2);
    tried("diff pages sealed with the webhook secret and with an unknown secret", "not served (410), each counted as a MAC failure");
  });
});

describe("webhook bodies held at once", () => {
  it("have one budget for the whole server: connections that never send their last byte cannot each pin a body", async () => {
    const MiB = 1024 * 1024;
    let handled = 0;
    const server = createServer((_req, res) => {
      handled += 1;
      res.end("ok");
    });
    limitRequestBodies(server, "/hook", MiB, { maxInFlightBytes: 3 * MiB });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const sockets: Socket[] = [];
    /** Sends all of a body but its last byte, and gives back the socket and what the server answers on it. */
    const hold = (size: number) =>
      new Promise<{ socket: Socket; answer: Promise<string> }>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.write(`POST /hook HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\n\r\n`);
          socket.write(Buffer.alloc(size - 1, "x"), () => {
            resolve({ socket, answer });
          });
        });
        let text = "";
        const answer = new Promise<string>((done) => {
          socket.on("data", (chunk: Buffer) => {
            text += chunk.toString();
          });
          socket.on("close", () => {
            done(text);
          });
          socket.on("error", () => {
            done(text);
          });
        });
        sockets.push(socket);
      });
    try {
      const held = [];
      for (let i = 0; i < 3; i += 1) held.push(await hold(MiB - 1024));
      // A fourth body would take the held bytes past 3 MiB: it is refused, and GitHub would retry it.
      const fourth = await hold(MiB - 1024);
      expect(await fourth.answer).toMatch(/^HTTP\/1\.1 503 Service Unavailable/);
      // The held ones still complete: their last byte arrives, and they are handled.
      for (const { socket } of held) socket.write("x");
      await expect.poll(() => handled, { timeout: 30_000 }).toBe(3);
      tried(
        "four connections each holding a webhook body one byte short of complete, over a 3 MiB budget",
        "the fourth got 503; the others were handled",
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
