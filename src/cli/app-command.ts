import { existsSync } from "node:fs";
import { join } from "node:path";
import type { CommandIo } from "./io.ts";
import { untilStopSignal } from "./signals.ts";

/** Runs `sluice app` until SIGTERM or SIGINT; reads `.env` from the working directory when present. */
export async function runApp(io: CommandIo): Promise<number> {
  const envFile = join(io.cwd, ".env");
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  const { loadSettings } = await import("../app/settings.ts");
  const { startApp } = await import("../app/start.ts");
  const settings = await loadSettings(process.env);
  const app = await startApp(settings);
  io.stderr(`sluice app: listening on ${settings.host}:${app.port}\n`);
  await untilStopSignal();
  io.stderr("sluice app: stopping\n");
  await app.stop();
  return 0;
}
