import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "./command.ts";
import { ManagedProcess, waitUntil } from "./managed-process.ts";

/** A containerd of the test node, with its own root, state and socket under the work directory. */
export interface Containerd {
  /** The gRPC socket, for the kubelet (`unix://` + this) and `ctr -a`. */
  socket: string;
  process: ManagedProcess;
  /** Runs `ctr` against this containerd in the CRI namespace (`k8s.io`). */
  ctr: (args: readonly string[]) => Promise<string>;
  /** Kills every container left in the CRI namespace, stops containerd and its shims, and unmounts what they left under `dir`. */
  stop: () => Promise<void>;
}

/** Where containerd keeps its files and which images and networks it uses. */
export interface ContainerdOptions {
  /** The directory for root, state, socket, config and log. */
  dir: string;
  /** The sandbox ("pause") image reference; it must be imported before the first pod starts. */
  sandboxImage: string;
  /** The directory of CNI network configurations. */
  cniConfDir: string;
  /** The directory of CNI plugin binaries (Debian's containernetworking-plugins: /usr/lib/cni). */
  cniBinDir: string;
  /** The runc binary (default `runc` on PATH). */
  runcBinary?: string;
}

/** The CRI namespace the kubelet's containers and images live in. */
export const CRI_NAMESPACE = "k8s.io";

/** containerd 1.6's configuration (version 2) for one test node: nothing under /var/lib, /opt or /run/containerd/runc. */
export function containerdConfig(options: ContainerdOptions, paths: { root: string; state: string; socket: string }): string {
  const q = (s: string): string => JSON.stringify(s);
  return `version = 2
root = ${q(paths.root)}
state = ${q(paths.state)}
# Snapshotters this machine cannot use; skipping them keeps the log to what matters.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(paths.socket)}

[ttrpc]
  address = ${q(`${paths.socket}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${q(join(paths.root, "opt"))}
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = ${q(options.sandboxImage)}
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    disable_apparmor = true
    # These machines drop CAP_SYS_RESOURCE from every process's bounding set, so nothing may lower
    # an oom_score_adj; the CRI's -998 for sandboxes (and the kubelet's -997 for Guaranteed pods)
    # would fail in runc ("failed to update /proc/self/oom_score_adj: Permission denied"). Capped
    # at containerd's own score instead, as for rootless containerd.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = ${q(options.runcBinary ?? "runc")}
          Root = ${q(join(paths.state, "runc"))}
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = ${q(options.cniBinDir)}
      conf_dir = ${q(options.cniConfDir)}
      max_conf_num = 1
`;
}

/** Mount points at or under `dir`, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .map((point) => point.replace(/\\040/g, " "))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or under `dir` (overlay root file systems, sandbox /dev/shm) that a stopped containerd left behind. */
export async function unmountUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    await runCommand("umount", [point]).catch(() => runCommand("umount", ["-l", point]).catch(() => undefined));
  }
}

/** Process ids of containerd shims serving the containerd at `socket` (they outlive containerd by design). */
async function shimsOf(socket: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const args = cmdline.split("\0");
    if (!(args[0] ?? "").includes("containerd-shim")) continue;
    const at = args.indexOf("-address");
    if (at >= 0 && args[at + 1] === socket) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Starts containerd (from Debian's package, on PATH) with its own root, state and socket under
 * `options.dir`, its CRI plugin set up for one test node (cgroupfs, overlayfs, the given sandbox
 * image and CNI), and waits until it answers. Registry traffic is sent to a closed loopback port
 * (HTTP(S)_PROXY), so an image that was not imported fails to pull instead of leaving the machine.
 */
export async function startContainerd(binary: string, options: ContainerdOptions): Promise<Containerd> {
  const root = join(options.dir, "root");
  const state = join(options.dir, "state");
  const socket = join(options.dir, "containerd.sock");
  await mkdir(root, { recursive: true, mode: 0o700 });
  await mkdir(state, { recursive: true, mode: 0o700 });
  const configPath = join(options.dir, "config.toml");
  await writeFile(configPath, containerdConfig(options, { root, state, socket }));
  const process = await ManagedProcess.start(
    "containerd",
    "env",
    ["HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=", binary, "--config", configPath, "--log-level", "info"],
    join(options.dir, "containerd.log"),
  );
  const ctr = (args: readonly string[]): Promise<string> => runCommand("ctr", ["--address", socket, "--namespace", CRI_NAMESPACE, ...args]);
  try {
    await waitUntil(process, "serving (ctr version)", 30_000, async () => {
      await ctr(["version"]);
      return true;
    });
  } catch (error) {
    await process.stop();
    await unmountUnder(options.dir);
    throw error;
  }

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!process.exited) {
      const tasks = (await ctr(["tasks", "ls", "-q"]).catch(() => "")).split("\n").filter(Boolean);
      for (const id of tasks) await ctr(["tasks", "kill", "--all", "--signal", "SIGKILL", id]).catch(() => undefined);
      for (const id of tasks) {
        for (let attempt = 0; attempt < 20; attempt++) {
          if (
            await ctr(["tasks", "delete", id]).then(
              () => true,
              () => false,
            )
          )
            break;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    }
    await process.stop();
    for (const pid of await shimsOf(socket)) {
      try {
        globalThis.process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await unmountUnder(options.dir);
  };
  return { socket, process, ctr, stop };
}
