import { createConnection, createServer, type Server, type Socket } from "node:net";
import { KUBERNETES_SERVICE_IP } from "./certs.ts";
import { runCommand } from "./command.ts";

/** A TCP listener on the node's bridge that pods connect to, forwarding to a service of this machine. */
export interface PodForward {
  /** The address pods use: the bridge's own address. */
  host: string;
  port: number;
  close: () => Promise<void>;
}

/**
 * Listens on `host` (a free port) and forwards every connection to `target`, byte for byte (TLS
 * passes through untouched). The tests' services listen on loopback only; pods reach them
 * through this, on the bridge, and nothing off the machine can.
 */
export async function forwardTcp(host: string, target: { host: string; port: number }): Promise<PodForward> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: target.host, port: target.port });
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      // A reset on one side ends the other; the error itself is the peer's to report.
      socket.on("error", () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`forwarder on ${host} has no TCP address`);
  return {
    host,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** The nat chain of a node's rules; node-teardown.sh derives the same name from the bridge. */
export function natChain(bridge: string): string {
  return `SLUICE-${bridge}`;
}

/**
 * What kube-proxy would do for the one Service pods of a test node need, the `kubernetes` Service:
 * packets that pods on `bridge` send to its address, port 443, are sent to a forwarder on the
 * bridge's address that connects to the apiserver on loopback. Pods get the route to the Service
 * range from the CNI configuration (node.ts). The rule lives in a chain of its own, jumped to for
 * this bridge only, and is removed by `close` and by node-teardown.sh.
 */
export async function routeKubernetesService(bridge: string, gateway: string, apiserverUrl: string): Promise<PodForward> {
  const url = new URL(apiserverUrl);
  const forward = await forwardTcp(gateway, { host: url.hostname, port: Number(url.port) });
  const chain = natChain(bridge);
  const rules: string[][] = [
    ["-t", "nat", "-N", chain],
    [
      "-t",
      "nat",
      "-A",
      chain,
      "-d",
      `${KUBERNETES_SERVICE_IP}/32`,
      "-p",
      "tcp",
      "--dport",
      "443",
      "-j",
      "DNAT",
      "--to-destination",
      `${gateway}:${forward.port}`,
    ],
    ["-t", "nat", "-A", "PREROUTING", "-i", bridge, "-j", chain],
  ];
  const removeRules = async (): Promise<void> => {
    await runCommand("iptables", ["-t", "nat", "-D", "PREROUTING", "-i", bridge, "-j", chain]).catch(() => undefined);
    await runCommand("iptables", ["-t", "nat", "-F", chain]).catch(() => undefined);
    await runCommand("iptables", ["-t", "nat", "-X", chain]).catch(() => undefined);
  };
  try {
    for (const rule of rules) await runCommand("iptables", rule);
  } catch (error) {
    await removeRules();
    await forward.close();
    throw new Error(`the test node could not route the kubernetes Service to the apiserver (iptables): ${(error as Error).message}`, {
      cause: error,
    });
  }
  return {
    ...forward,
    close: async () => {
      await removeRules();
      await forward.close();
    },
  };
}
