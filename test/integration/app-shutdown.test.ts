import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startRedis, type RedisServer } from "../env/redis.ts";
import { freePort } from "../env/ports.ts";
import { WEBHOOK_SECRET } from "../helpers/app-harness.ts";
import { removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { FakeGitHub } from "../helpers/fake-github.ts";
import { startSluice, type SluiceProcess } from "../helpers/processes.ts";

// Issue 24: with Redis down, `sluice app` printed `stopping`, ignored SIGTERM for ten minutes and
// wrote 1,522 multi-line non-JSON traces. Here it runs as the image runs it, Redis goes away, and
// SIGTERM must end it (the helper sends SIGKILL 15 s later, which would show as a signal, not a code).

let github: FakeGitHub;
let redis: RedisServer;
let app: SluiceProcess | undefined;

beforeAll(async () => {
  github = await new FakeGitHub().start();
  redis = await startRedis(await tempDir("sluice-shutdown-redis-"));
});

afterAll(async () => {
  await app?.stop();
  await redis.process.stop();
  await github.stop();
  await removeCheckouts();
});

describe("sluice app's shutdown", { timeout: 90_000 }, () => {
  it("exits on SIGTERM within its deadline with Redis down, and every line it wrote is JSON", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    app = await startSluice(
      "app",
      {
        APP_ID: String(FakeGitHub.APP_ID),
        PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
        WEBHOOK_SECRET,
        REDIS_URL: redis.url,
        GITHUB_API_URL: github.url,
        PORT: String(await freePort()),
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        SLUICE_CACHE_DIR: await tempDir("sluice-shutdown-cache-"),
        SLUICE_KUSTOMIZE: inject("kustomize"),
        SLUICE_HELM: inject("helm"),
        // A grace period of 6 s: the app must be gone 5 s before it ends.
        SLUICE_SHUTDOWN_GRACE_SECONDS: "6",
      },
      /sluice app: listening/,
    );
    await redis.process.stop();
    // Redis's absence shows in the log, as JSON, before the app is asked to stop.
    await expect.poll(() => app?.output() ?? "", { timeout: 30_000 }).toContain('"msg":"connection error"');

    await app.stop();

    expect([app.child.exitCode, app.child.signalCode]).toEqual([0, null]);
    const lines = app.output().split("\n").filter(Boolean);
    const notJson = lines.filter((line) => {
      try {
        return typeof JSON.parse(line) !== "object";
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    const messages = lines.map((line) => (JSON.parse(line) as { msg?: string }).msg);
    expect(messages).toEqual(expect.arrayContaining(["sluice app: listening", "sluice app: stopping", "sluice app: stopped"]));
  });
});
