import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { loadAgentSettings } from "../../src/agent/settings.ts";
import { startAgent } from "../../src/agent/start.ts";
import { generateSigningKeys } from "../../src/core/signing.ts";
import { freePort } from "../env/ports.ts";
import { startRedis, type RedisServer } from "../env/redis.ts";
import { removeCheckouts, tempDir } from "../helpers/checkouts.ts";
import { ManualClock } from "../helpers/manual-clock.ts";
import { CLI } from "../helpers/processes.ts";

// How `sluice agent` starts and stops as a kubelet sees it (issue 24): what is wrong with its
// settings ends it at once, naming the variable; with Redis unreachable it still serves its probes
// and says why it is not ready; a stop ends within its deadline even with Redis gone; and every
// line it writes is JSON. Redis is a private redis-server where a test stops it.

const appKeys = generateSigningKeys();
const agentKeys = generateSigningKeys();
const running: ChildProcess[] = [];
const servers: RedisServer[] = [];

afterEach(async () => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all(servers.splice(0).map((s) => s.process.stop()));
});
afterAll(async () => {
  await removeCheckouts();
});

/** An agent's environment as its ConfigMap and Secret give it; `undefined` leaves a variable out. */
function agentEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    KUBECONFIG: inject("kubeconfigPath"),
    SLUICE_APP_PUBLIC_KEY: appKeys.publicKey,
    SLUICE_AGENT_SIGNING_KEY: agentKeys.privateKey,
    SLUICE_AGENT_ENVIRONMENTS: `start-${randomUUID().slice(0, 8)}`,
    SLUICE_AGENT_REPOSITORIES: "acme/*=team-*",
    SLUICE_AGENT_PROBE_HOST: "127.0.0.1",
    SLUICE_AGENT_PROBE_PORT: "0",
    SLUICE_DRIFT_INTERVAL_SECONDS: "0",
    ...extra,
  };
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** `sluice agent` as a process of its own; `exited` resolves with its exit code. */
function agentProcess(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, "agent"], { env, stdio: ["ignore", "pipe", "pipe"] });
  running.push(child);
  let output = "";
  const keep = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      resolve(code);
    });
  });
  return { child, output: () => output, exited };
}

/** Every line the process wrote, each of which must be a JSON object. */
function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
      expect(parsed).toBeTypeOf("object");
      return parsed as Record<string, unknown>;
    });
}

async function get(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const response = await fetch(url);
    return { status: response.status, body: await response.text() };
  } catch {
    return undefined;
  }
}

describe("sluice agent at start-up", () => {
  it("exits with code 1 and a JSON line naming the variable when a setting, a key or the kubeconfig is wrong", async () => {
    const dir = await tempDir("sluice-agent-start-");
    const missing = join(dir, "missing.pem");
    await writeFile(join(dir, "kubeconfig"), "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n");
    const cases: [string, Record<string, string | undefined>, string][] = [
      ["no REDIS_URL", {}, "REDIS_URL is required"],
      [
        "a bad public key",
        { SLUICE_APP_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n" },
        "SLUICE_APP_PUBLIC_KEY:",
      ],
      [
        "a missing public key file",
        { SLUICE_APP_PUBLIC_KEY: undefined, SLUICE_APP_PUBLIC_KEY_PATH: missing },
        "SLUICE_APP_PUBLIC_KEY_PATH:",
      ],
      [
        "a missing signing key file",
        { SLUICE_AGENT_SIGNING_KEY: undefined, SLUICE_AGENT_SIGNING_KEY_PATH: missing },
        "SLUICE_AGENT_SIGNING_KEY_PATH:",
      ],
      ["a missing kubeconfig", { KUBECONFIG: join(dir, "nowhere") }, `KUBECONFIG ${join(dir, "nowhere")}: cannot be read`],
      [
        "a kubeconfig without its context",
        { KUBECONFIG: join(dir, "kubeconfig") },
        `KUBECONFIG ${join(dir, "kubeconfig")}: no context named nowhere`,
      ],
    ];
    // A Redis that would answer, so that only the setting under test can stop the start.
    const redis = await startRedis(await tempDir("sluice-agent-redis-"));
    servers.push(redis);
    const results = await Promise.all(
      cases.map(async ([name, extra, expected]) => {
        const agent = agentProcess(agentEnv({ REDIS_URL: name === "no REDIS_URL" ? undefined : redis.url, ...extra }));
        // A start that does not end by itself is the defect under test; the test's timeout is not a measurement.
        const code = await Promise.race([
          agent.exited,
          new Promise<"running">((resolve) => {
            setTimeout(() => {
              resolve("running");
            }, 60_000);
          }),
        ]);
        return { name, code, expected, output: agent.output() };
      }),
    );
    for (const { name, code, expected, output } of results) {
      expect({ name, code }).toEqual({ name, code: 1 });
      const lines = jsonLines(output);
      const failure = lines.find((line) => line.message === "sluice agent: cannot start");
      expect({ name, error: String(failure?.error) }).toEqual({ name, error: expect.stringContaining(expected) as string });
    }
  }, 120_000);

  it("serves /healthz with Redis unreachable, says so on /readyz while it retries, and exits at SIGTERM", async () => {
    const redisPort = await freePort();
    const probePort = await freePort();
    const agent = agentProcess(agentEnv({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, SLUICE_AGENT_PROBE_PORT: String(probePort) }));
    const probes = `http://127.0.0.1:${probePort}`;
    await expect.poll(async () => (await get(`${probes}/healthz`))?.status, { timeout: 20_000, interval: 100 }).toBe(200);
    await expect
      .poll(async () => (await get(`${probes}/readyz`))?.body ?? "", { timeout: 20_000, interval: 200 })
      .toContain(`[-]redis failed: Redis unreachable at 127.0.0.1:${redisPort}`);
    const ready = await get(`${probes}/readyz`);
    expect(ready?.status).toBe(503);
    expect(ready?.body).toContain("[-]queues failed: starting: waiting for Redis");
    agent.child.kill("SIGTERM");
    expect(await agent.exited).toBe(0);
    const lines = jsonLines(agent.output());
    expect(lines.map((line) => line.message)).toContain("redis connection error");
    expect(lines.map((line) => line.message)).not.toContain("sluice agent: serving");
  });

  it("ends within its stop deadline at SIGTERM when Redis has gone, every line JSON", async () => {
    const redis = await startRedis(await tempDir("sluice-agent-redis-"));
    servers.push(redis);
    const probePort = await freePort();
    const agent = agentProcess(
      agentEnv({ REDIS_URL: redis.url, SLUICE_AGENT_PROBE_PORT: String(probePort), SLUICE_AGENT_STOP_TIMEOUT_SECONDS: "2" }),
    );
    await expect.poll(() => agent.output(), { timeout: 30_000, interval: 100 }).toContain('"message":"sluice agent: serving"');
    await redis.process.stop();
    await expect
      .poll(async () => (await get(`http://127.0.0.1:${probePort}/readyz`))?.body ?? "", { timeout: 20_000, interval: 200 })
      .toContain("Redis unreachable at");
    agent.child.kill("SIGTERM");
    // Exit code 1: the stop dropped its connections at the deadline rather than finishing cleanly.
    expect(await agent.exited).toBe(1);
    const messages = jsonLines(agent.output()).map((line) => line.message);
    expect(messages).toContain("stop deadline passed: dropping the connections");
  });
});

describe("an agent's stop", () => {
  it("ends at its deadline, by the injected clock, when Redis is gone", async () => {
    const redis = await startRedis(await tempDir("sluice-agent-redis-"));
    servers.push(redis);
    const clock = new ManualClock();
    const logged: string[] = [];
    const settings = await loadAgentSettings(agentEnv({ REDIS_URL: redis.url, SLUICE_AGENT_STOP_TIMEOUT_SECONDS: "30" }));
    const agent = await startAgent(settings, {
      now: clock.now,
      sleep: clock.sleep,
      log: (_level, message) => {
        logged.push(message);
      },
    });
    await redis.process.stop();
    // Moves the clock to each wait the stop starts, as if it took that long: the only one is the deadline.
    const outcome = await clock.run(agent.stop());
    expect(outcome).toBe("deadline");
    expect(clock.elapsed).toBe(30_000);
    expect(logged).toContain("stop deadline passed: dropping the connections");
  });
});
