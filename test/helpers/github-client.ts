import { generateKeyPairSync } from "node:crypto";
import { pino } from "pino";
import { Probot } from "probot";
import { GitHubClient } from "../../src/app/github/client.ts";
import { FakeGitHub } from "./fake-github.ts";

/** A `GitHubClient` that talks to `github` as the app's installation `installationId` (as the app itself without one). */
export async function fakeGitHubClient(github: FakeGitHub, installationId?: number): Promise<GitHubClient> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const probot = new Probot({
    appId: FakeGitHub.APP_ID,
    privateKey: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    baseUrl: github.url,
    log: pino({ level: "silent" }),
  });
  return new GitHubClient(await probot.auth(installationId), FakeGitHub.APP_ID);
}
