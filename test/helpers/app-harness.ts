import { createHmac, generateKeyPairSync, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { loadSettings } from "../../src/app/settings.ts";
import type { PacingClock } from "../../src/app/github/pacing.ts";
import { startApp, type RunningApp } from "../../src/app/start.ts";
import { freePort } from "../env/ports.ts";
import { tempDir } from "./checkouts.ts";
import { FakeGitHub } from "./fake-github.ts";

/** The webhook secret the app under test is configured with. */
export const WEBHOOK_SECRET = "sluice-test-webhook-secret";

interface Example {
  name: string;
  examples: Record<string, unknown>[];
}

/** A real webhook payload from @octokit/webhooks-examples: the first of `event` whose action matches. */
export function examplePayload(event: string, action?: string): Record<string, unknown> {
  const require = createRequire(import.meta.url);
  const all = JSON.parse(readFileSync(require.resolve("@octokit/webhooks-examples/api.github.com/index.json"), "utf8")) as Example[];
  const payload = all.find((e) => e.name === event)?.examples.find((p) => action === undefined || p.action === action);
  if (!payload) throw new Error(`@octokit/webhooks-examples has no ${event}${action ? `.${action}` : ""} example`);
  return structuredClone(payload);
}

/**
 * A clock that starts at a fixed date and runs at real speed, so deadlines pass as they would;
 * tests move it by setting `now` (jumping days ahead to expire things, say).
 */
export class TestClock {
  #offset = Date.UTC(2026, 10, 27, 12, 0, 0) - performance.now();

  get now(): number {
    return Math.floor(performance.now() + this.#offset);
  }

  set now(value: number) {
    this.#offset = value - performance.now();
  }

  readonly read = (): number => this.now;
}

/** The app under test, started against a fake GitHub and the real Redis, in its own Redis database. */
export interface AppHarness {
  app: RunningApp;
  redisUrl: string;
  github: FakeGitHub;
  redis: Redis;
  clock: TestClock;
  url: string;
  deliver: (event: string, payload: unknown, deliveryId?: string) => Promise<{ status: number; ms: number }>;
  stop: () => Promise<void>;
}

/** Where the harness finds Redis and the renderers. */
export interface HarnessOptions {
  redisUrl: string;
  kustomize: string;
  helm: string;
  /** The Redis database the app uses, so several harnesses do not share queues. */
  database: number;
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Enables deploys: the app's job signing key and the agents' public keys (PEM). */
  deployKeys?: { jobSigningKey: string; agentPublicKeys: string };
  /** More settings, as environment variables. */
  env?: Record<string, string>;
  /** The clock of the app's GitHub write pacing, for tests that decide when its waits end. */
  pacingClock?: PacingClock;
  /** Keeps the database's data at start and stop, for an app started again (or a second replica) on it. */
  keepData?: boolean;
  /** The fake GitHub and clock of another harness, for a second replica or a restarted app; that harness stops the fake GitHub. */
  shared?: Pick<AppHarness, "github" | "clock">;
}

/** Delivers a webhook to the app at `url` as GitHub does: signed with the test secret, over HTTP. */
export async function deliverWebhook(
  url: string,
  event: string,
  payload: unknown,
  deliveryId: string = randomUUID(),
): Promise<{ status: number; ms: number }> {
  const body = JSON.stringify(payload);
  const started = performance.now();
  const response = await fetch(`${url}/api/github/webhooks`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": deliveryId,
      "x-hub-signature-256": `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`,
      "user-agent": "GitHub-Hookshot/test",
    },
    body,
  });
  await response.text();
  return { status: response.status, ms: performance.now() - started };
}

/** Starts the app the way `sluice app` does, with settings from an environment. */
export async function startHarness(options: HarnessOptions): Promise<AppHarness> {
  const { database } = options;
  const github = options.shared?.github ?? (await new FakeGitHub().start());
  const base = new URL(options.redisUrl);
  base.pathname = `/${database}`;
  const redisUrl = base.toString();
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  if (!options.keepData) await redis.flushdb();
  const port = await freePort();
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const clock = options.shared?.clock ?? new TestClock();
  const settings = await loadSettings({
    PATH: process.env.PATH,
    APP_ID: String(FakeGitHub.APP_ID),
    PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    WEBHOOK_SECRET,
    REDIS_URL: redisUrl,
    SLUICE_PUBLIC_URL: `http://127.0.0.1:${port}`,
    GITHUB_API_URL: github.url,
    GITHUB_WEB_URL: "https://github.example",
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: options.logLevel ?? "warn",
    SLUICE_CACHE_DIR: await tempDir("sluice-app-cache-"),
    SLUICE_KUSTOMIZE: options.kustomize,
    SLUICE_HELM: options.helm,
    ...(options.deployKeys
      ? { SLUICE_JOB_SIGNING_KEY: options.deployKeys.jobSigningKey, SLUICE_AGENT_PUBLIC_KEYS: options.deployKeys.agentPublicKeys }
      : {}),
    ...options.env,
  });
  const app = await startApp(settings, clock.read, { pacingClock: options.pacingClock });
  const url = `http://127.0.0.1:${port}`;
  return {
    app,
    redisUrl,
    github,
    redis,
    clock,
    url,
    deliver: (event, payload, deliveryId) => deliverWebhook(url, event, payload, deliveryId),
    stop: async () => {
      await app.stop();
      if (!options.shared) await github.stop();
      if (!options.keepData) await redis.flushdb();
      await redis.quit();
    },
  };
}
