import type { Probot, ProbotOctokit } from "probot";
import type { GitHubPacing } from "./pacing.ts";

/**
 * Whose turn a write waits for. GitHub asks for a second between one installation's writes, and
 * the app paces them so; webhook handlers (someone just commented or pushed) and background work
 * (previews, deploy reports) each keep their own pace, so a reaction or a check run a person is
 * waiting for never queues behind a burst of report updates.
 */
export type WriteLane = "webhook" | "background";

interface FactoryOptions {
  octokit: { constructor: unknown };
  octokitOptions: { throttle?: { enabled?: boolean }; auth?: Record<string, unknown> } & Record<string, unknown>;
  [other: string]: unknown;
}

/**
 * An octokit authenticated as an installation, as `probot.auth(installationId)` makes one, with its
 * write pacing and retries ({@link GitHubPacing}) keyed by the installation and the lane. (Probot's
 * per-event octokit is not used: its throttling shares one pacing across every installation.)
 */
export async function installationOctokit(
  probot: Probot,
  pacing: GitHubPacing,
  installationId: number,
  lane: WriteLane,
): Promise<ProbotOctokit> {
  const app = await probot.auth();
  const factory = ({ octokit, octokitOptions, ...otherOptions }: FactoryOptions): ProbotOctokit => {
    const Octokit = octokit.constructor as new (options: Record<string, unknown>) => ProbotOctokit;
    return new Octokit({
      ...octokitOptions,
      log: probot.log.child({ name: "github" }),
      // GitHubPacing does what these plugins did, without their schedulers' delay on every request.
      throttle: { enabled: false },
      retry: { enabled: false },
      auth: { ...octokitOptions.auth, otherOptions, installationId },
    });
  };
  const octokit = (await app.auth({ type: "installation", installationId, factory })) as ProbotOctokit;
  pacing.apply(octokit, `${String(installationId)}:${lane}`);
  return octokit;
}
