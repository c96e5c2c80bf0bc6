import type { CommandIo } from "./io.ts";
import { untilStopSignal } from "./signals.ts";

/** Runs `sluice agent` until SIGTERM or SIGINT; the job in progress finishes before it exits. */
export async function runAgent(io: CommandIo): Promise<number> {
  const { loadAgentSettings } = await import("../agent/settings.ts");
  const { startAgent } = await import("../agent/start.ts");
  const settings = await loadAgentSettings(io.env);
  const agent = await startAgent(settings);
  io.stderr(`sluice agent: serving ${settings.environments.join(", ")}; probes and metrics on ${settings.probeHost}:${agent.probePort}\n`);
  await untilStopSignal();
  io.stderr("sluice agent: stopping after the current job\n");
  await agent.stop();
  return 0;
}
