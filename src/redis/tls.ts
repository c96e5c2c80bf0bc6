import { readFile } from "node:fs/promises";
import { errorMessage } from "../core/errors.ts";
import { parseRedisUrl, type RedisTls } from "./connection.ts";

/** The settings that name the files of `RedisTls`, the same for the app and the agent. */
export interface RedisTlsPaths {
  SLUICE_REDIS_CA_PATH?: string | undefined;
  SLUICE_REDIS_CERT_PATH?: string | undefined;
  SLUICE_REDIS_KEY_PATH?: string | undefined;
}

/** Whether a `REDIS_URL` connects with TLS. */
export function redisUsesTls(url: string): boolean {
  const target = parseRedisUrl(url);
  return target.kind === "cluster" ? target.tls : /^rediss:/i.test(target.url);
}

/**
 * Reads the TLS files the settings name, once at start, so a missing or unreadable one stops the
 * start naming its variable. Undefined when none is set.
 * @throws Error naming the variable: a file that cannot be read, a certificate without its key (or
 * the reverse), or files given for a `REDIS_URL` without TLS, which would otherwise be ignored
 */
export async function readRedisTls(
  paths: RedisTlsPaths,
  redisUrl: string,
  read: (path: string) => Promise<string> = (path) => readFile(path, "utf8"),
): Promise<RedisTls | undefined> {
  const field = { SLUICE_REDIS_CA_PATH: "ca", SLUICE_REDIS_CERT_PATH: "cert", SLUICE_REDIS_KEY_PATH: "key" } as const;
  const given = (Object.keys(field) as (keyof RedisTlsPaths)[]).flatMap((name) => (paths[name] ? [[name, paths[name]] as const] : []));
  if (given.length === 0) return undefined;
  if (!redisUsesTls(redisUrl))
    throw new Error(
      `invalid configuration:\n  ${given.map(([name]) => name).join(", ")}: a TLS file is used only with rediss:// (or rediss-cluster://), and REDIS_URL connects without TLS`,
    );
  if ((paths.SLUICE_REDIS_CERT_PATH ? 1 : 0) + (paths.SLUICE_REDIS_KEY_PATH ? 1 : 0) === 1)
    throw new Error(
      `invalid configuration:\n  SLUICE_REDIS_CERT_PATH and SLUICE_REDIS_KEY_PATH go together (a client certificate and its key): only ${
        paths.SLUICE_REDIS_CERT_PATH ? "SLUICE_REDIS_CERT_PATH" : "SLUICE_REDIS_KEY_PATH"
      } is set`,
    );
  const tls: RedisTls = {};
  for (const [name, path] of given) {
    try {
      tls[field[name]] = await read(path);
    } catch (error) {
      throw new Error(`invalid configuration:\n  ${name}: cannot read ${JSON.stringify(path)}: ${errorMessage(error)}`, { cause: error });
    }
  }
  return tls;
}
