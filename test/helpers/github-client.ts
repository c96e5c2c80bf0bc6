import { generateKeyPairSync } from "node:crypto";
import { pino } from "pino";
import { Probot } from "probot";
import { GitHubClient } from "../../src/app/github/client.ts";
import { installationOctokit } from "../../src/app/github/installation-octokit.ts";
import type { GitHubPacing } from "../../src/app/github/pacing.ts";
import { FakeGitHub } from "./fake-github.ts";

/** A Probot app (a key of its own, silent) whose GitHub is `github`. */
export function fakeProbot(github: FakeGitHub): Probot {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return new Probot({
    appId: FakeGitHub.APP_ID,
    privateKey: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    baseUrl: github.url,
    log: pino({ level: "silent" }),
  });
}

/** A `GitHubClient` that talks to `github` as the app's installation `installationId` (as the app itself without one). */
export async function fakeGitHubClient(github: FakeGitHub, installationId?: number): Promise<GitHubClient> {
  return new GitHubClient(await fakeProbot(github).auth(installationId), FakeGitHub.APP_ID);
}

/** A `GitHubClient` as the app's background work has one for `installationId`: its writes paced by `pacing`. */
export async function pacedGitHubClient(probot: Probot, pacing: GitHubPacing, installationId: number): Promise<GitHubClient> {
  return new GitHubClient(await installationOctokit(probot, pacing, installationId, "background"), FakeGitHub.APP_ID);
}
