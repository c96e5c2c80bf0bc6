import { generateKeyPairSync } from "node:crypto";
import { WEBHOOK_SECRET } from "../test/helpers/app-harness.ts";
import { tempDir } from "../test/helpers/checkouts.ts";
import { FakeGitHub } from "../test/helpers/fake-github.ts";
import { startSluice, type SluiceProcess } from "../test/helpers/processes.ts";

/** What a benchmark's `sluice app` talks to. */
export interface BuiltAppOptions {
  redisUrl: string;
  /** The fake GitHub's address. */
  githubUrl: string;
  port: number;
  /** The app's job-signing private key and the agents' public keys, as `generateSigningKeys` makes them. */
  jobSigningKey: string;
  agentPublicKeys: string;
  /** The prefix of the app's temporary checkout cache directory. */
  cachePrefix: string;
}

/** Starts the built `sluice app` (as the image runs it) against the fake GitHub, logging at info level; resolves once it listens. */
export async function startBuiltApp(options: BuiltAppOptions): Promise<SluiceProcess> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return startSluice(
    "app",
    {
      APP_ID: String(FakeGitHub.APP_ID),
      PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
      WEBHOOK_SECRET,
      REDIS_URL: options.redisUrl,
      SLUICE_PUBLIC_URL: `http://127.0.0.1:${options.port}`,
      GITHUB_API_URL: options.githubUrl,
      PORT: String(options.port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      SLUICE_CACHE_DIR: await tempDir(options.cachePrefix),
      SLUICE_JOB_SIGNING_KEY: options.jobSigningKey,
      SLUICE_AGENT_PUBLIC_KEYS: options.agentPublicKeys,
    },
    /sluice app: listening/,
    { built: true },
  );
}
