import type { DeployRequest } from "../../core/deploy-requests.ts";
import { fullName } from "../../core/git-ref.ts";
import type { Convergence } from "./convergence.ts";
import type { DeployJobs } from "./deploy-jobs.ts";
import { withLogContext } from "../log-context.ts";

/**
 * The deploy-request queue's job: remembers which repositories deploy to the request's
 * environment (for convergence), then renders the commit and hands a signed job to the agents,
 * logged with the repository, environment, commit and trigger.
 */
export function deployRequestJob(deps: { convergence: Convergence; jobs: DeployJobs }): (request: DeployRequest) => Promise<void> {
  return (request) =>
    withLogContext(
      { repository: fullName(request.repository), environment: request.environment, sha: request.sha, trigger: request.trigger },
      async () => {
        // Every verified request tells which repositories deploy to an environment, for convergence.
        await deps.convergence.remember(request);
        await deps.jobs.prepare(request);
      },
    );
}
