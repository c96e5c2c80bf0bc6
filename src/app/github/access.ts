import type { Probot } from "probot";
import type { AppMetrics } from "../metrics.ts";
import { GitHubClient } from "./client.ts";
import { installationOctokit, type WriteLane } from "./installation-octokit.ts";
import { GitHubPacing, type PacingClock } from "./pacing.ts";
import { contextual, type Logger } from "../log-context.ts";

/** What reaching GitHub through the loaded Probot app needs. */
export interface GitHubAccessOptions {
  appId: number;
  metrics: AppMetrics;
  /** The clock of GitHub's write pacing; the system's when absent. */
  pacingClock?: PacingClock | undefined;
}

/**
 * GitHub as the app reaches it once Probot has loaded it: a client per installation (paced, its
 * rate limit measured), the app's own client, the credentials check, and the log that writes
 * through Probot's logger. Services are built before Probot hands the app over, so each of these
 * refuses until `attach` was called.
 */
export class GitHubAccess {
  /** Every line carries what it is about: the delivery, job, repository and environment at hand. */
  readonly log: Logger;
  readonly #options: GitHubAccessOptions;
  readonly #pacing: GitHubPacing;
  #probot: Probot | undefined;

  constructor(options: GitHubAccessOptions) {
    this.#options = options;
    this.log = contextual({
      info: (details, message) => {
        this.#probot?.log.info(details, message);
      },
      warn: (details, message) => {
        this.#probot?.log.warn(details, message);
      },
      error: (details, message) => {
        this.#probot?.log.error(details, message);
      },
    });
    this.#pacing = new GitHubPacing(
      (retry) => {
        options.metrics.githubRetries.inc({ reason: retry.reason });
        this.log.warn({ ...retry }, "GitHub request will be tried again");
      },
      { clock: options.pacingClock },
    );
  }

  /** Takes the Probot app once it is loaded. */
  attach(probot: Probot): void {
    this.#probot = probot;
  }

  /** An installation's client; handlers use it too (in the webhook lane), not the event's own octokit: see installationOctokit. */
  readonly installation = async (installationId: number, lane: WriteLane = "background"): Promise<GitHubClient> => {
    const octokit = await installationOctokit(this.#loaded(), this.#pacing, installationId, lane);
    octokit.hook.after("request", (response) => {
      const remaining = Number(response.headers["x-ratelimit-remaining"]);
      if (Number.isFinite(remaining)) this.#options.metrics.rateLimit.set({ installation: String(installationId) }, remaining);
    });
    return new GitHubClient(octokit, this.#options.appId);
  };

  /** Authenticated as the app itself: its webhook deliveries, and which installation holds a repository. */
  readonly app = async (): Promise<GitHubClient> => new GitHubClient(await this.#loaded().auth(), this.#options.appId);

  /** Asks GitHub whether it takes the app's credentials (`GET /app`). */
  readonly checkCredentials = async (signal: AbortSignal): Promise<void> => {
    await (await this.#loaded().auth()).request("GET /app", { request: { signal } });
  };

  #loaded(): Probot {
    if (!this.#probot) throw new Error("the app is not loaded yet");
    return this.#probot;
  }
}
