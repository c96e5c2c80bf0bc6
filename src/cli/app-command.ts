import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { appLogger } from "../app/logger.ts";
import { errorMessage } from "../core/errors.ts";
import type { CommandIo } from "./io.ts";
import { routeConsole } from "./json-console.ts";
import type { LocalRedis } from "./local-redis.ts";
import { untilStopSignal } from "./signals.ts";

/**
 * Runs `sluice app` until SIGTERM or SIGINT; reads `.env` from the working directory when present.
 * Outside production, without GitHub App credentials it first serves the setup flow that registers
 * the app (on loopback, or `SLUICE_SETUP_HOST`), and without `REDIS_URL` it runs a private
 * `redis-server` of its own.
 */
export async function runApp(io: CommandIo): Promise<number> {
  const envFile = join(io.cwd, ".env");
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  const { loadSettings } = await import("../app/settings.ts");
  const { startApp } = await import("../app/start.ts");
  const env = process.env;
  const production = env.NODE_ENV === "production";
  const missing = !env.APP_ID || !(env.PRIVATE_KEY || env.PRIVATE_KEY_PATH) || !(env.WEBHOOK_SECRET || env.WEBHOOK_SECRET_PATH);
  if (missing && !production) {
    const { runSetup } = await import("../app/setup.ts");
    const port = Number(env.PORT || 3000);
    const credentials = await runSetup({
      port,
      // Whoever completes the setup chooses the app Sluice trusts: loopback unless the operator says otherwise.
      host: env.SLUICE_SETUP_HOST || "127.0.0.1",
      publicUrl: (env.SLUICE_PUBLIC_URL || `http://localhost:${port}`).replace(/\/+$/, ""),
      githubApiUrl: (env.GITHUB_API_URL || "https://api.github.com").replace(/\/+$/, ""),
      githubWebUrl: (env.GITHUB_WEB_URL || "https://github.com").replace(/\/+$/, ""),
      organization: env.GH_ORG || undefined,
      webhookProxyUrl: env.WEBHOOK_PROXY_URL || undefined,
      manifestFile: existsSync(join(io.cwd, "app.yml"))
        ? join(io.cwd, "app.yml")
        : fileURLToPath(new URL("../../app.yml", import.meta.url)),
      envFile,
      log: (message) => {
        io.stderr(`sluice app: ${message}\n`);
      },
    });
    Object.assign(env, credentials);
  }
  let redis: LocalRedis | undefined;
  if (!env.REDIS_URL && !production) {
    const { startLocalRedis } = await import("./local-redis.ts");
    redis = await startLocalRedis(io.cwd, process.env.PATH);
    env.REDIS_URL = redis.url;
    io.stderr(
      `sluice app: REDIS_URL is not set, so a private redis-server runs at ${redis.url} (data in ${redis.dir}, AOF on, noeviction)\n`,
    );
  }
  try {
    const settings = await loadSettings(env);
    // From here on every line is JSON (log collectors read one object per line): the app's own,
    // what libraries print to the console, and an error nothing caught.
    const logger = appLogger(settings.logLevel);
    routeConsole(logger);
    process.on("uncaughtException", (error, origin) => {
      logger.fatal({ error: errorMessage(error), stack: error.stack, origin }, "sluice app: unexpected error, exiting");
      process.exit(1);
    });
    const app = await startApp(settings, Date.now, { logger });
    // Start and stop are said at any LOG_LEVEL: they are what an operator (and a test) waits for.
    const lifecycle = logger.child({}, { level: "info" });
    lifecycle.info({ host: settings.host, port: app.port }, "sluice app: listening");
    await untilStopSignal();
    lifecycle.info({ deadlineMs: settings.stopTimeoutMs }, "sluice app: stopping");
    await app.stop();
    lifecycle.info({}, "sluice app: stopped");
  } finally {
    await redis?.stop();
  }
  // Past its deadline the stop drops what it waited on; should anything still hold the process
  // (a library's timer), it must not outlive the pod's grace period.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1_000).unref();
  return 0;
}
