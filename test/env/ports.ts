import { createServer } from "node:net";

/** An error that says a port on loopback is already taken. */
export class PortTakenError extends Error {
  constructor(port: number, what: string) {
    super(`port ${port} on 127.0.0.1 is already taken (wanted for ${what}); stop whatever listens there or choose another port`);
    this.name = "PortTakenError";
  }
}

/** Listens on `port` (0 for any) on loopback, then closes; resolves with the port that was bound. */
function probe(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      server.close(() => {
        resolve(bound);
      });
    });
  });
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return probe(0);
}

/**
 * The port to use for `what`: `wanted` when given (checked to be free), else a free one.
 * @throws PortTakenError when `wanted` is in use
 */
export async function choosePort(what: string, wanted: number | undefined): Promise<number> {
  if (wanted === undefined) return freePort();
  try {
    return await probe(wanted);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") throw new PortTakenError(wanted, what);
    throw error;
  }
}
