import type { RedisClient } from "../../redis/connection.ts";
import type { RepositoryRef } from "../../core/git-ref.ts";
import type { DriftSummary } from "../../core/live-preview.ts";
import { driftKey } from "../state/redis-keys.ts";
import { SealedJson, type RedisMac } from "../state/redis-mac.ts";

/** How long an environment's drift is kept after its last report. */
const STATE_TTL_SECONDS = 30 * 24 * 3600;

/**
 * The deploy an environment's drift is measured against, as the app sealed it in the deploy's
 * record: drift reports are checked against it, and their check runs written with its repository
 * and installation. Kept here too, because the record expires and drift is reported for as long
 * as the deploy stays the newest.
 */
export interface MeasuredDeploy {
  jobId: string;
  environment: string;
  repository: RepositoryRef;
  installationId: number;
  sha: string;
}

/** What the app keeps of an environment's drift: the deploy it is measured against, the summary for comments, and its check run. */
export interface DriftState {
  /** Absent in states written before drift reports were checked against the deploy. */
  deploy?: MeasuredDeploy;
  sha: string;
  /** The environment's drift check run; absent for one cluster of a fleet, a row of its deploy's check run. */
  checkRunId?: number;
  fingerprint: string;
  summary: DriftSummary;
}

/** An environment's drift that changed: the open pull requests' comments that preview it show the new summary. */
export interface DriftChange {
  repositoryId: number;
  environment: string;
  /** The cluster of a fleet whose drift changed: its rollout and its entry on the comments read it, promotion does not. */
  cluster?: string;
  summary: DriftSummary;
  /** The deploy the drift is measured against: its repository and installation. */
  deploy: Pick<MeasuredDeploy, "repository" | "installationId">;
}

/**
 * The one home of each environment's drift, sealed in Redis: drift reports write it, and the
 * preview comments read its summary.
 */
export class DriftSummaries {
  readonly #store: SealedJson;

  constructor(redis: RedisClient, mac: RedisMac) {
    this.#store = new SealedJson(redis, mac);
  }

  /** What the app last heard of an environment's drift, or undefined (none yet, or it does not verify). */
  async state(repositoryId: number, environment: string): Promise<DriftState | undefined> {
    // Sealed by this app, so its shape is the one it wrote.
    return (await this.#store.get(driftKey(repositoryId, environment))) as DriftState | undefined;
  }

  /** What the environment's agent last found drifted, for the preview comments; undefined when it never reported. */
  async summary(repositoryId: number, environment: string): Promise<DriftSummary | undefined> {
    return (await this.state(repositoryId, environment))?.summary;
  }

  /** Keeps an environment's drift for another `STATE_TTL_SECONDS`. */
  async save(repositoryId: number, environment: string, state: DriftState): Promise<void> {
    await this.#store.set(driftKey(repositoryId, environment), state, STATE_TTL_SECONDS);
  }
}
