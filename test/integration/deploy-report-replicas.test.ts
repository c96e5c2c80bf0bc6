import type { Probot } from "probot";
import { beforeAll, describe, expect, it } from "vitest";
import { AgentKeys } from "../../src/app/agents/agent-keys.ts";
import { DeployRecords, type DeployRecord } from "../../src/app/deploy/deploy-records.ts";
import { DeployReports } from "../../src/app/deploy/deploy-reports.ts";
import { EnvironmentStates } from "../../src/app/deploy/environment-states.ts";
import type { GitHubClient } from "../../src/app/github/client.ts";
import { GitHubPacing } from "../../src/app/github/pacing.ts";
import { RedisMac } from "../../src/app/state/redis-mac.ts";
import type { AgentReport } from "../../src/core/agent-protocol.ts";
import { deployCheckName } from "../../src/core/check-names.ts";
import { generateSigningKeys, privateKeyFromPem, publicKeyFromPem, seal } from "../../src/core/signing.ts";
import { fakeProbot, pacedGitHubClient } from "../helpers/github-client.ts";
import { handWired } from "../helpers/hand-wired.ts";
import { ManualClock } from "../helpers/manual-clock.ts";

// Two app replicas apply the reports of one deploy, each through its own GitHub write pacing: the
// queue hands a deploy's reports to whichever replica is free. A state one replica keeps waiting
// for its turn must never land after a newer state another replica wrote: a deploy's check run
// once completed stays completed, and its Deployment's last status is its outcome. Replica A's
// pacing runs on a clock that moves only when the test moves it; replica B's on the system's.
// Redis is real; GitHub is faked at the HTTP layer.

const OWNER = "sluice-replicas";
const REPO = "svc";
const REPO_ID = 31_000;
const agentKeys = generateSigningKeys();
const agentKey = privateKeyFromPem(agentKeys.privateKey);
const wired = handWired(12);
let probot: Probot;
let installation = 31_100;
let job = 1;
const SHA = "c".repeat(40);

beforeAll(() => {
  wired.github.addRepo(OWNER, REPO, REPO_ID);
  probot = fakeProbot(wired.github);
});

const mac = new RedisMac("replicas-test-secret");
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** One replica's report consumer: its own pacing (on `clock`, the system's when absent), the shared Redis. */
function replica(clock?: ManualClock): { reports: DeployReports; client: (id: number) => Promise<GitHubClient> } {
  const pacing = new GitHubPacing(undefined, clock ? { clock } : {});
  const client = (id: number) => pacedGitHubClient(probot, pacing, id);
  const reports = new DeployReports({
    github: client,
    records: new DeployRecords(wired.redis, mac, silent),
    environments: new EnvironmentStates(wired.redis, mac),
    agentKeys: new AgentKeys([{ key: publicKeyFromPem(agentKeys.publicKey) }]),
    webUrl: "https://github.example",
    log: silent,
    now: Date.now,
  });
  return { reports, client };
}

/** A deploy queued by the app: its check run and Deployment made through `gh`, its record saved. */
async function queuedDeploy(gh: GitHubClient, installationId: number): Promise<DeployRecord & { jobId: string }> {
  const repository = { owner: OWNER, name: REPO, id: REPO_ID };
  const jobId = `merge-${REPO_ID}-production-${String(job++)}`;
  const checkRunId = await gh.createCheckRun(repository, deployCheckName("production"), SHA, { externalId: jobId, status: "in_progress" });
  const deploymentId = await gh.createDeployment(repository, {
    sha: SHA,
    environment: "production",
    description: "merge",
    payload: { jobId },
    production: true,
    transient: false,
  });
  const record: DeployRecord = {
    checkRunId,
    deploymentId,
    repository,
    installationId,
    environment: "production",
    sha: SHA,
    reason: "merge",
    hold: "keep",
    completed: false,
    deploymentState: "queued",
  };
  await new DeployRecords(wired.redis, mac, silent).save(jobId, record);
  return { ...record, jobId };
}

/** The agent's signed report of `phase` about `deploy`, made at `at`. */
function report(deploy: DeployRecord & { jobId: string }, phase: AgentReport["phase"], at: Date): unknown {
  const body: AgentReport = {
    version: 1,
    jobId: deploy.jobId,
    repository: deploy.repository,
    installationId: deploy.installationId,
    environment: deploy.environment,
    sha: deploy.sha,
    phase,
    message: phase,
    ...(phase === "succeeded" ? { objects: [], durationMs: 40 } : {}),
    at: at.toISOString(),
  };
  return seal("report", body, agentKey);
}

describe("a deploy's reports applied by two replicas", () => {
  it("never lets a state replica A kept waiting land after the final state replica B wrote", async () => {
    const clock = new ManualClock();
    const a = replica(clock);
    const b = replica();
    const installationId = installation++;
    const deploy = await queuedDeploy(await b.client(installationId), installationId);
    // Replica A wrote something just now, so its lane's next write waits a second (of its clock).
    await (await a.client(installationId)).createCheckRun(deploy.repository, "other", SHA, { externalId: "other", status: "in_progress" });
    const at = Date.now();
    // The deploy starts: replica A applies the report; its writes wait for their turn.
    await a.reports.consume(report(deploy, "started", new Date(at)));
    await clock.asleep();
    // The deploy ends: replica B applies the final report, whose writes go out at once.
    await b.reports.consume(report(deploy, "succeeded", new Date(at + 50)));
    const run = () => wired.github.checkRuns.get(deploy.checkRunId);
    expect(run()).toMatchObject({ status: "completed", conclusion: "success" });
    // Replica A's turn comes.
    const before = wired.github.requests.length;
    while (clock.wakeUps.length > 0) {
      clock.advance((clock.wakeUps[0] ?? clock.elapsed) - clock.elapsed);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await expect.poll(() => wired.github.requests.length > before || clock.wakeUps.length === 0, { timeout: 10_000 }).toBe(true);
    // Whatever A sent, the check run is still completed and the Deployment's newest status is its outcome.
    expect(run()).toMatchObject({ status: "completed", conclusion: "success" });
    const statuses = wired.github
      .calls("repos/create-deployment-status")
      .filter((c) => c.params.deployment_id === String(deploy.deploymentId));
    expect(statuses.at(-1)?.body).toMatchObject({ state: "success" });
  });
});
