import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { onPath } from "../../src/cli/local-redis.ts";
import { freePort } from "../env/ports.ts";
import { WEBHOOK_SECRET } from "../helpers/app-harness.ts";
import { tempDir } from "../helpers/checkouts.ts";
import { FakeGitHub } from "../helpers/fake-github.ts";
import { CLI, startSluice } from "../helpers/processes.ts";

// `sluice app` as a new user first runs it: no REDIS_URL, no SLUICE_PUBLIC_URL.

let github: FakeGitHub;
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const credentials = () => ({
  APP_ID: String(FakeGitHub.APP_ID),
  PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
  WEBHOOK_SECRET,
  GITHUB_API_URL: github.url,
  HOST: "127.0.0.1",
  LOG_LEVEL: "warn" as const,
});

beforeAll(async () => {
  github = await new FakeGitHub().start();
});
afterAll(async () => {
  await github.stop();
});

describe("the first start", { timeout: 60_000 }, () => {
  it("runs a private redis-server when REDIS_URL is not set, with AOF and noeviction, and stops it on exit", async () => {
    const cwd = await tempDir("sluice-first-start-");
    const port = await freePort();
    const app = await startSluice("app", { ...credentials(), PORT: String(port) }, /sluice app: listening/, { cwd });
    let redisUrl = "";
    try {
      redisUrl =
        /a private redis-server runs at (redis:\/\/127\.0\.0\.1:\d+) \(data in ([^,]+), AOF on, noeviction\)/.exec(app.output())?.[1] ?? "";
      expect(redisUrl).not.toBe("");
      expect(app.output()).toContain(`(data in ${join(cwd, ".data", "redis")}, AOF on, noeviction)`);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect([ready.status, await ready.text()]).toEqual([200, "[+]redis ok\n[+]queues ok\n[+]github ok\nready\n"]);
      const redis = new Redis(redisUrl);
      try {
        expect(await redis.config("GET", "maxmemory-policy")).toEqual(["maxmemory-policy", "noeviction"]);
        expect(await redis.config("GET", "appendonly")).toEqual(["appendonly", "yes"]);
      } finally {
        redis.disconnect();
      }
    } finally {
      await app.stop();
    }
    expect(readdirSync(join(cwd, ".data", "redis")).some((name) => name.startsWith("appendonly"))).toBe(true);
    // Gone with the app.
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(redisUrl).port), "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve("connected");
      });
      socket.once("error", (error: NodeJS.ErrnoException) => {
        resolve(error.code ?? error.message);
      });
    });
    expect(refused).toBe("ECONNREFUSED");
  });

  it("says how to install Redis or set REDIS_URL when redis-server is not on PATH", async () => {
    const cwd = await tempDir("sluice-first-start-");
    const node = dirname(process.execPath);
    expect(onPath("redis-server", node)).toBeUndefined();
    const run = spawnSync(process.execPath, [CLI, "app"], { cwd, env: { ...credentials(), PATH: node }, encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      "sluice app: REDIS_URL is not set and redis-server is not on PATH. Install Redis (Debian or Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL",
    );
    expect(existsSync(join(cwd, ".data"))).toBe(false);
  });

  it("never starts its own Redis in production", async () => {
    const cwd = await tempDir("sluice-first-start-");
    const run = spawnSync(process.execPath, [CLI, "app"], {
      cwd,
      env: { ...credentials(), PATH: process.env.PATH ?? "", NODE_ENV: "production" },
      encoding: "utf8",
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("REDIS_URL: REDIS_URL is required");
    expect(run.stderr).toContain("SLUICE_PUBLIC_URL: SLUICE_PUBLIC_URL is required in production");
    expect(existsSync(join(cwd, ".data"))).toBe(false);
  });

  it("registers the GitHub App through the manifest flow when there are no credentials, writes .env, then runs", async () => {
    const cwd = await tempDir("sluice-first-start-");
    const port = await freePort();
    const env = {
      REDIS_URL: `${inject("redisUrl")}/12`,
      GITHUB_API_URL: github.url,
      GITHUB_WEB_URL: "https://github.example",
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
    };
    const app = await startSluice("app", env, /open http:\/\/localhost:\d+\/\?token=\S+ to register the app/, { cwd });
    try {
      // The console's link opens the page once, and leaves a cookie that the callback needs as well.
      const link = /open (\S+) to register the app/.exec(app.output())?.[1] ?? "";
      const opened = await fetch(link.replace("localhost", "127.0.0.1"), { redirect: "manual" });
      expect([opened.status, opened.headers.get("location")]).toEqual([303, "/"]);
      const cookie = (opened.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
      expect(cookie).toMatch(/^sluice_setup=[A-Za-z0-9_-]{32}$/);
      const setup = await (await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie } })).text();
      const unescape = (text: string) => text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
      const action = unescape(/<form action="([^"]+)" method="post">/.exec(setup)?.[1] ?? "");
      expect(action).toMatch(/^https:\/\/github\.example\/settings\/apps\/new\?state=[A-Za-z0-9_-]{32}$/);
      const manifest = JSON.parse(unescape(/name="manifest" value="([^"]+)"/.exec(setup)?.[1] ?? "")) as Record<string, unknown>;
      expect(manifest).toMatchObject({
        name: "Sluice",
        hook_attributes: { url: `http://localhost:${port}/api/github/webhooks` },
        redirect_url: `http://localhost:${port}/setup/callback`,
        default_events: expect.arrayContaining(["pull_request", "push", "issue_comment", "check_run"]) as unknown,
        default_permissions: expect.objectContaining({ checks: "write", deployments: "write" }) as unknown,
      });
      // GitHub sends the browser back with a code and the state; a forged state is refused.
      github.manifestCode = "code123";
      const state = new URL(action).searchParams.get("state") ?? "";
      const forged = await fetch(`http://127.0.0.1:${port}/setup/callback?code=code123&state=${"x".repeat(state.length)}`, {
        redirect: "manual",
        headers: { cookie },
      });
      expect(forged.status).toBe(400);
      const callback = await fetch(`http://127.0.0.1:${port}/setup/callback?code=code123&state=${state}`, {
        redirect: "manual",
        headers: { cookie },
      });
      expect([callback.status, callback.headers.get("location")]).toEqual([
        302,
        "https://github.example/apps/sluice-test/installations/new",
      ]);
      expect(github.calls("apps/create-from-manifest")).toHaveLength(1);
      // The app starts on the same port with the new credentials, which are in .env, for its owner only.
      await expect.poll(() => app.output(), { timeout: 30_000 }).toMatch(/sluice app: listening/);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect([ready.status, await ready.text()]).toEqual([200, "[+]redis ok\n[+]queues ok\n[+]github ok\nready\n"]);
      const dotenv = readFileSync(join(cwd, ".env"), "utf8");
      expect(dotenv).toContain(`APP_ID=${FakeGitHub.APP_ID}\n`);
      expect(dotenv).toMatch(/^PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\\n[^\n]+-----END RSA PRIVATE KEY-----\\n"$/m);
      expect(dotenv).toContain("WEBHOOK_SECRET=fake-webhook-secret-from-the-manifest-flow\n");
      expect(statSync(join(cwd, ".env")).mode & 0o777).toBe(0o600);
    } finally {
      await app.stop();
    }
  });

  it("refuses a cache directory another app process uses, since each evicts the other's checkouts", async () => {
    const cwd = await tempDir("sluice-first-start-");
    const cacheDir = await tempDir("sluice-shared-cache-");
    const env = { ...credentials(), REDIS_URL: `${inject("redisUrl")}/12`, SLUICE_CACHE_DIR: cacheDir };
    const first = await startSluice("app", { ...env, PORT: String(await freePort()) }, /sluice app: listening/, { cwd });
    try {
      const second = spawnSync(process.execPath, [CLI, "app"], {
        cwd,
        env: { ...env, PATH: process.env.PATH ?? "", PORT: String(await freePort()) },
        encoding: "utf8",
      });
      expect(second.status).toBe(2);
      expect(second.stderr).toContain(
        `SLUICE_CACHE_DIR ${cacheDir} is in use by another sluice app (pid ${first.child.pid ?? 0}); give each app process a cache directory of its own`,
      );
    } finally {
      await first.stop();
    }
    // Given up on exit: the next process takes it.
    const next = await startSluice("app", { ...env, PORT: String(await freePort()) }, /sluice app: listening/, { cwd });
    await next.stop();
  });
});
