import { execFile } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { choosePort } from "./ports.ts";

/** A running redis-server. */
export interface RedisServer {
  url: string;
  process: ManagedProcess;
}

/** Sends PING over a raw connection; true on +PONG. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => socket.write("PING\r\n"));
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("data", (data) => {
      socket.destroy();
      resolve(data.toString().startsWith("+PONG"));
    });
    socket.once("error", () => {
      resolve(false);
    });
  });
}

/** Finds redis-server, or fails with how to get one. */
export async function findRedisServer(binary = "redis-server"): Promise<string> {
  try {
    await promisify(execFile)(binary, ["--version"]);
    return binary;
  } catch {
    throw new Error(
      "redis-server is not installed: run `apt-get install redis-server` (or your system's equivalent), or set REDIS_URL to an existing Redis",
    );
  }
}

/**
 * Starts redis-server on a free loopback port with its files in `dir`, AOF on and no eviction,
 * the settings Sluice expects in production.
 */
export async function startRedis(dir: string, port?: number): Promise<RedisServer> {
  const binary = await findRedisServer();
  const chosen = await choosePort("redis-server", port);
  const process = await ManagedProcess.start(
    "redis-server",
    binary,
    [
      "--port",
      String(chosen),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--save",
      "",
      "--maxmemory-policy",
      "noeviction",
      "--protected-mode",
      "yes",
      "--daemonize",
      "no",
    ],
    join(dir, "redis.log"),
  );
  try {
    await waitUntil(process, "answering PING", 20_000, () => ping(chosen));
  } catch (error) {
    await process.stop();
    throw error;
  }
  return { url: `redis://127.0.0.1:${chosen}`, process };
}
