import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { choosePort, freePort } from "./ports.ts";

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
export async function startRedis(dir: string, port?: number, extraArgs: readonly string[] = []): Promise<RedisServer> {
  const binary = await findRedisServer();
  const chosen = await choosePort("redis-server", port);
  const process = await ManagedProcess.start(
    "redis-server",
    binary,
    [
      ...extraArgs,
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
      // Each test file that starts the app takes a database of its own.
      "--databases",
      "32",
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

/** A running Redis Cluster: its masters, and the URL Sluice connects with (`redis-cluster://` and the seed nodes). */
export interface RedisCluster {
  url: string;
  ports: number[];
  stop: () => Promise<void>;
}

/**
 * Starts a Redis Cluster of `masters` redis-servers on free loopback ports (cluster bus ports
 * chosen free too), each with its files under `dir`, and joins them with `redis-cli --cluster
 * create`; resolves once every node says the cluster is ok.
 */
export async function startRedisCluster(dir: string, masters = 3): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.process.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      const nodeDir = join(dir, `node-${i}`);
      await mkdir(nodeDir, { recursive: true, mode: 0o700 });
      const bus = await freePort();
      servers.push(
        await startRedis(nodeDir, undefined, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          "nodes.conf",
          "--cluster-port",
          String(bus),
          "--cluster-node-timeout",
          "5000",
        ]),
      );
    }
    const ports = servers.map((s) => Number(new URL(s.url).port));
    await promisify(execFile)("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    const clusterOk = async (port: number): Promise<boolean> => {
      const { stdout } = await promisify(execFile)("redis-cli", ["-p", String(port), "cluster", "info"]);
      return /^cluster_state:ok/m.test(stdout);
    };
    for (const [i, server] of servers.entries())
      await waitUntil(server.process, "cluster_state:ok", 30_000, () => clusterOk(ports[i] ?? 0));
    return { url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`, ports, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
