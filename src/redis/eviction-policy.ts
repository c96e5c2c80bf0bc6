import type { EvictionPolicy } from "../core/probes.ts";
import { errorMessage } from "../core/errors.ts";

/**
 * Each server's `maxmemory-policy` (`CONFIG GET`): BullMQ's queues and the app's records need
 * `noeviction`. A server that refuses CONFIG (renamed away, or not in the user's ACL, as on many
 * managed services) gives the reason instead.
 */
export async function readEvictionPolicies(
  servers: readonly { config: (op: "GET", name: string) => Promise<unknown> }[],
): Promise<EvictionPolicy[]> {
  return Promise.all(
    servers.map(async (server): Promise<EvictionPolicy> => {
      try {
        const reply = await server.config("GET", "maxmemory-policy");
        const policy: unknown = Array.isArray(reply) ? (reply as unknown[])[1] : undefined;
        return typeof policy === "string" ? { policy } : { unreadable: `CONFIG GET maxmemory-policy answered ${JSON.stringify(reply)}` };
      } catch (error) {
        return { unreadable: errorMessage(error) };
      }
    }),
  );
}
