import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { loadSettings } from "../../src/app/settings.ts";
import { startApp, type RunningApp } from "../../src/app/start.ts";
import { startRedis, type RedisServer } from "../env/redis.ts";
import { freePort } from "../env/ports.ts";
import { WEBHOOK_SECRET } from "../helpers/app-harness.ts";
import { removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { FakeGitHub } from "../helpers/fake-github.ts";
import { ManualClock } from "../helpers/manual-clock.ts";

// Readiness while GitHub hangs, Redis's eviction policy, a preview-only start and a stop with
// Redis down (issue 24), each against the app as `sluice app` starts it, on a clock the test moves.

/** The app under test, its fake GitHub, and every line it logged (parsed). */
interface TestApp {
  app: RunningApp;
  github: FakeGitHub;
  url: string;
  lines: () => Record<string, unknown>[];
}

const started: { app: TestApp; stopped: boolean }[] = [];
const servers: RedisServer[] = [];
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });

async function startTestApp(redisUrl: string, clock: ManualClock, env: Record<string, string> = {}): Promise<TestApp> {
  const github = await new FakeGitHub().start();
  const port = await freePort();
  const output: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output.push(chunk.toString("utf8"));
      done();
    },
  });
  const settings = await loadSettings({
    PATH: process.env.PATH,
    APP_ID: String(FakeGitHub.APP_ID),
    PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    WEBHOOK_SECRET,
    REDIS_URL: redisUrl,
    GITHUB_API_URL: github.url,
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    SLUICE_CACHE_DIR: await tempDir("sluice-lifecycle-cache-"),
    SLUICE_KUSTOMIZE: inject("kustomize"),
    SLUICE_HELM: inject("helm"),
    ...env,
  });
  const app = await startApp(settings, Date.now, { clock, logger: pino({ level: "info" }, sink) });
  const testApp: TestApp = {
    app,
    github,
    url: `http://127.0.0.1:${port}`,
    lines: () =>
      output
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
  started.push({ app: testApp, stopped: false });
  return testApp;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** A redis-server of this file's own, for tests that change its configuration or stop it. */
async function privateRedis(extraArgs: readonly string[] = []): Promise<RedisServer> {
  const server = await startRedis(await tempDir("sluice-lifecycle-redis-"), undefined, extraArgs);
  servers.push(server);
  return server;
}

afterEach(() => {
  for (const { app } of started) expect(app.github.violations).toEqual([]);
});

afterAll(async () => {
  for (const entry of started) {
    if (!entry.stopped) await entry.app.app.stop();
    await entry.app.github.stop();
  }
  for (const server of servers) await server.process.stop();
  await removeCheckouts();
});

describe("the app's readiness and lifecycle", { timeout: 60_000 }, () => {
  it("stays ready while GitHub accepts connections and never answers, sharing one request among the probes", async () => {
    const clock = new ManualClock();
    const base = new URL(inject("redisUrl"));
    base.pathname = "/17";
    const t = await startTestApp(base.toString(), clock);
    const release = t.github.pause("apps/get-authenticated");

    const probes = Promise.all([get(`${t.url}/readyz`), get(`${t.url}/readyz`), get(`${t.url}/readyz`)]);
    await clock.asleep();
    // GitHub has the request and holds it.
    await expect.poll(() => t.github.calls("apps/get-authenticated").length).toBe(1);
    expect(clock.wakeUps).toEqual([5_000]);
    clock.advance(5_000);
    const answers = await probes;

    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers[0].body).toBe(
      "[+]redis ok\n[+]queues ok\n[+]github ok (GitHub unreachable, not counted: no answer within 5000 ms)\nready\n",
    );
    expect(t.github.calls("apps/get-authenticated")).toHaveLength(1);
    release();

    // A refusal of the credentials, asked again 10 s later, is what makes the app unready.
    t.github.refuseAppCredentials = true;
    clock.advance(10_000);
    const refused = await get(`${t.url}/readyz`);
    expect([refused.status, refused.body]).toEqual([
      503,
      "[+]redis ok\n[+]queues ok\n[-]github failed: GitHub refused the app's credentials (401): check APP_ID and PRIVATE_KEY\nnot ready\n",
    ]);
    t.github.refuseAppCredentials = false;
    clock.advance(10_000);
    expect(await get(`${t.url}/readyz`)).toEqual({ status: 200, body: "[+]redis ok\n[+]queues ok\n[+]github ok\nready\n" });
  });

  it("starts preview-only when the deploy keys' files are absent, and says so once", async () => {
    const base = new URL(inject("redisUrl"));
    base.pathname = "/18";
    const secrets = await tempDir("sluice-lifecycle-secrets-");
    const t = await startTestApp(base.toString(), new ManualClock(), {
      SLUICE_JOB_SIGNING_KEY_PATH: join(secrets, "job-signing-key.pem"),
      SLUICE_AGENT_PUBLIC_KEYS_PATH: join(secrets, "agent-public-keys.pem"),
    });
    const said = t.lines().filter((line) => typeof line.msg === "string" && line.msg.startsWith("deploys are off"));
    expect(said).toEqual([
      expect.objectContaining({
        level: 40,
        msg: "deploys are off: the app previews pull requests and deploys nothing",
        reason: `SLUICE_JOB_SIGNING_KEY_PATH ${join(secrets, "job-signing-key.pem")} is absent or empty`,
      }),
    ]);
  });

  it("is unready while Redis may evict, says so at start, and is ready again once the policy is noeviction", async () => {
    const server = await privateRedis();
    const admin = new Redis(server.url);
    try {
      await admin.config("SET", "maxmemory-policy", "allkeys-lru");
      const t = await startTestApp(server.url, new ManualClock());
      const problem =
        "maxmemory-policy is allkeys-lru, not noeviction: Redis may evict queued jobs and records; set maxmemory-policy noeviction";

      const unready = await get(`${t.url}/readyz`);
      expect([unready.status, unready.body]).toEqual([503, `[-]redis failed: ${problem}\n[+]queues ok\n[+]github ok\nnot ready\n`]);
      await expect
        .poll(() => t.lines().filter((line) => line.msg === "Redis may evict the app's data: the app stays unready"))
        .toEqual([expect.objectContaining({ level: 50, problem })]);

      await admin.config("SET", "maxmemory-policy", "noeviction");
      expect((await get(`${t.url}/readyz`)).status).toBe(200);
    } finally {
      admin.disconnect();
    }
  });

  it("stays ready when CONFIG is disabled, saying the policy could not be checked", async () => {
    const server = await privateRedis(["--rename-command", "CONFIG", '""']);
    const t = await startTestApp(server.url, new ManualClock());
    const ready = await get(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatch(
      /^\[\+\]redis ok \(maxmemory-policy could not be checked: ERR unknown command 'CONFIG'.*\)\n\[\+\]queues ok\n/i,
    );
  });

  it("stops within the grace period with Redis down, cutting short what waits on it", async () => {
    const server = await privateRedis();
    const clock = new ManualClock();
    const t = await startTestApp(server.url, clock, { SLUICE_SHUTDOWN_GRACE_SECONDS: "30" });
    const entry = started.find((s) => s.app === t);
    await server.process.stop();
    await expect.poll(async () => (await get(`${t.url}/readyz`)).status).toBe(503);

    const stopping = t.app.stop();
    if (entry) entry.stopped = true;
    await clock.asleep();
    // The decision: stop waits at most 25 s, inside the pod's 30 s grace period.
    expect(clock.wakeUps.at(-1)).toBe(25_000);
    clock.advance(25_000);
    await stopping;
    expect(t.lines().filter((line) => typeof line.msg === "string" && line.msg.startsWith("stop deadline passed"))).toHaveLength(1);
  });
});
