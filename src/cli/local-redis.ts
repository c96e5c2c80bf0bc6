import { spawn } from "node:child_process";
import { accessSync, constants, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join, resolve } from "node:path";

/** A `redis-server` the app started for itself, for local runs without `REDIS_URL`. */
export interface LocalRedis {
  url: string;
  /** Where its data (the AOF) lives. */
  dir: string;
  stop: () => Promise<void>;
}

/** The path of `name` on `PATH`, or undefined. */
export function onPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        done(typeof address === "object" && address ? address.port : 0);
      });
    });
  });
}

/**
 * Starts a private `redis-server` on a free loopback port, with its data under `<cwd>/.data/redis`,
 * AOF on (`appendfsync everysec`) and `noeviction`, as README asks of a production Redis. `port`
 * starts it again where it was (its data is in the same place).
 * @throws Error saying how to install Redis or set REDIS_URL when there is no `redis-server`, and
 * with its output when it does not start
 */
export async function startLocalRedis(cwd: string, path: string | undefined, options: { port?: number } = {}): Promise<LocalRedis> {
  const binary = onPath("redis-server", path);
  if (!binary)
    throw new Error(
      "REDIS_URL is not set and redis-server is not on PATH. Install Redis (Debian or Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL to a Redis 6.2 or newer",
    );
  const dir = resolve(cwd, ".data", "redis");
  mkdirSync(dir, { recursive: true });
  const port = options.port ?? (await freeLoopbackPort());
  const child = spawn(
    binary,
    [
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--maxmemory-policy",
      "noeviction",
      "--save",
      "",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const exited = new Promise<number | null>((done) => child.once("exit", done));
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`redis-server did not start within 15 s:\n${output}`));
    }, 15_000);
    const read = (chunk: Buffer): void => {
      // Its log is drained for as long as it runs; only the tail is kept, for errors.
      output = (output + chunk.toString("utf8")).slice(-8_192);
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        ready();
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`redis-server exited with ${code ?? "a signal"} before it was ready:\n${output.slice(-2_000)}`));
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}
