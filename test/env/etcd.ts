import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { ManagedProcess, waitUntil } from "./managed-process.ts";
import { choosePort } from "./ports.ts";

/** Fails when `dataDir` holds anything: data left by an earlier run would be served as if fresh. */
export async function checkDataDir(dataDir: string): Promise<void> {
  const leftovers = await readdir(dataDir).catch(() => []);
  if (leftovers.length > 0) {
    throw new Error(
      `etcd data directory ${dataDir} is not empty (${leftovers.join(", ")}), left by an earlier run; remove it before starting again`,
    );
  }
}

/** A running etcd. */
export interface Etcd {
  url: string;
  process: ManagedProcess;
}

/**
 * Starts a single-member etcd on loopback with its data in `dataDir`, which must be empty: data
 * left by an earlier run would be served to the new apiserver as if it were fresh.
 */
export async function startEtcd(
  binary: string,
  dataDir: string,
  logDir: string,
  ports: { client?: number; peer?: number } = {},
): Promise<Etcd> {
  await checkDataDir(dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const client = await choosePort("etcd clients", ports.client);
  const peer = await choosePort("etcd peers", ports.peer);
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const process = await ManagedProcess.start(
    "etcd",
    binary,
    [
      "--name=sluice-test",
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=sluice-test=${peerUrl}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ],
    join(logDir, "etcd.log"),
  );
  try {
    await waitUntil(process, "healthy", 30_000, async () => {
      const response = await fetch(`${url}/health`);
      return response.ok && ((await response.json()) as { health?: string }).health === "true";
    });
  } catch (error) {
    await process.stop();
    throw error;
  }
  return { url, process };
}
