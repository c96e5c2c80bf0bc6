import { createHash } from "node:crypto";
import type { RedisClient } from "../../redis/connection.ts";
import type { DriftReport } from "../../core/agent-protocol.ts";
import { driftCheckName } from "../../core/check-names.ts";
import { fleetDriftOutput, fleetDriftRow, type FleetDriftRow } from "../../core/fleet-drift.ts";
import type { GitHubClient } from "../github/client.ts";
import type { Logger } from "../log-context.ts";
import { withRedisLock } from "../state/redis-lock.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";
import { fleetDriftKey } from "../state/redis-keys.ts";
import type { MeasuredDeploy } from "./drift-summaries.ts";

/** How long a deploy's fleet drift is kept after its last report. */
const TTL_SECONDS = 30 * 24 * 3600;
/** Reports that come within this long of each other are written to GitHub together. */
export const FLEET_DRIFT_WRITE_MS = 2_000;

/** What writing a fleet's drift needs. */
export interface FleetDriftDeps {
  redis: RedisClient;
  mac: RedisMac;
  github: (installationId: number) => Promise<GitHubClient>;
  /** Asks for `write(commit)` at `at`; asks for the same moment are one. */
  schedule: (commit: FleetCommit, at: number) => Promise<void>;
  now: () => number;
  log: Logger;
}

/** The commit of an environment whose drift check run a fleet's clusters share, whichever deploys took them there. */
export interface FleetCommit {
  repositoryId: number;
  environment: string;
  sha: string;
}

/** A commit's drift check run, and a hash of what it says now. */
interface FleetDriftCheck {
  checkRunId: number;
  written: string;
}

/** One cluster's field: its row, and the deploy (from the app's record) it is measured against, of the commit. */
interface StoredRow {
  deploy: MeasuredDeploy;
  row: FleetDriftRow;
}

/**
 * The drift of a fleet's clusters at one commit, as one `sluice/drift (<env>)` check run on it with
 * a row per cluster, not a check run per cluster (nor per deploy: a cluster deployed alone, by
 * `/sync --cluster` or as it joined, stays a row of its commit's check run). Each cluster's newest
 * drift is a MAC'd field of one hash (clusters reporting at once never overwrite each other), and
 * the check run is written from the whole hash a moment after a report: a hundred clusters
 * reporting after a deploy cost a few writes, not a hundred.
 */
export class FleetDrift {
  readonly #deps: FleetDriftDeps;
  readonly #checks: SealedJson;

  constructor(deps: FleetDriftDeps) {
    this.#deps = deps;
    this.#checks = new SealedJson(deps.redis, deps.mac);
  }

  /** Keeps one cluster's drift report (checked against `deploy`, the app's record) and asks for the check run to be written. */
  async record(deploy: MeasuredDeploy, cluster: string, report: DriftReport): Promise<void> {
    const { redis, mac, now } = this.#deps;
    const commit = commitOf(deploy);
    const key = fleetDriftKey(commit);
    const json = JSON.stringify({ deploy, row: fleetDriftRow(report) } satisfies StoredRow);
    await redis.hset(key, cluster, mac.seal(rowPurpose(key, cluster), Buffer.from(json)));
    await redis.expire(key, TTL_SECONDS);
    const at = Math.ceil((now() + 1) / FLEET_DRIFT_WRITE_MS) * FLEET_DRIFT_WRITE_MS;
    await this.#deps.schedule(commit, at);
  }

  /** Keeps the fleet drift of a deploy's commit for another `TTL_SECONDS`: its clusters still report, the same as before. */
  async keep(deploy: MeasuredDeploy): Promise<void> {
    const key = fleetDriftKey(commitOf(deploy));
    await Promise.all([this.#deps.redis.expire(key, TTL_SECONDS), this.#deps.redis.expire(`${key}:check`, TTL_SECONDS)]);
  }

  /** Writes the commit's drift check run from every cluster's newest row, once per commit at a time; nothing when it says the same. */
  async write(commit: FleetCommit): Promise<void> {
    const key = fleetDriftKey(commit);
    await withRedisLock(this.#deps.redis, `${key}:lock`, { ttlMs: 30_000, waitMs: 60_000, pollMs: 50 }, async () => {
      const stored = await this.#rows(key);
      const deploy = Object.values(stored)[0]?.deploy;
      if (!deploy) return;
      const rows = Object.fromEntries(Object.entries(stored).map(([cluster, { row }]) => [cluster, row]));
      const { conclusion, output } = fleetDriftOutput(deploy.sha, rows);
      const written = createHash("sha256")
        .update(JSON.stringify([conclusion, output]))
        .digest("hex");
      // Sealed by this app, so its shape is the one it wrote.
      const check = (await this.#checks.get(`${key}:check`)) as FleetDriftCheck | undefined;
      if (check?.written === written) return;
      const gh = await this.#deps.github(deploy.installationId);
      const fields = { status: "completed", conclusion, output } as const;
      // The check run is named by its external id too: when the record of it is gone from Redis
      // (expired, or deleted by someone else), GitHub's own list finds it, so it is never made twice.
      const name = driftCheckName(deploy.environment);
      const externalId = `fleet-drift-${deploy.environment}`;
      let checkRunId = check?.checkRunId ?? (await gh.findCheckRun(deploy.repository, deploy.sha, name, externalId));
      if (checkRunId === undefined) checkRunId = await gh.createCheckRun(deploy.repository, name, deploy.sha, { ...fields, externalId });
      else await gh.updateCheckRun(deploy.repository, checkRunId, fields);
      await this.#checks.set(`${key}:check`, { checkRunId, written } satisfies FleetDriftCheck, TTL_SECONDS);
    });
  }

  /** Every cluster's row whose MAC verifies: a field written by anyone else to Redis is not a cluster's drift. */
  async #rows(key: string): Promise<Record<string, StoredRow>> {
    const rows: Record<string, StoredRow> = {};
    for (const [cluster, sealed] of Object.entries(await this.#deps.redis.hgetallBuffer(key))) {
      const json = this.#deps.mac.open(rowPurpose(key, cluster), sealed);
      if (!json) {
        this.#deps.log.warn({ key, cluster }, "fleet drift row that does not verify ignored");
        continue;
      }
      // MAC'd by this app, so its shape is the one it wrote.
      rows[cluster] = JSON.parse(json.toString("utf8")) as StoredRow;
    }
    return rows;
  }
}

/** The commit whose drift check run a deploy's clusters are rows of. */
function commitOf(deploy: MeasuredDeploy): FleetCommit {
  return { repositoryId: deploy.repository.id, environment: deploy.environment, sha: deploy.sha };
}

/** What a row's MAC is for: its own prefix, so no other sealed value of the hash's family (`:check`) passes for a row. */
function rowPurpose(key: string, cluster: string): string {
  return `fleet-drift-row\n${key}\n${cluster}`;
}
