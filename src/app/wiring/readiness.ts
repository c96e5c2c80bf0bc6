import type { Clock } from "../../core/clock.ts";
import { CredentialCheck, redisReady, workersReady, type EvictionPolicy, type ReadinessCheck } from "../../core/probes.ts";
import { servers, type RedisClient } from "../../redis/connection.ts";
import { readEvictionPolicies } from "../../redis/eviction-policy.ts";
import type { GitHubAccess } from "../github/access.ts";

/**
 * The app's readiness: Redis answers and will not evict the app's data, the queue workers run (and
 * the app is not stopping), and GitHub takes the app's credentials.
 */
export class AppReadiness {
  readonly #redis: RedisClient;
  readonly #credentials: CredentialCheck;
  #workers: readonly { isRunning: () => boolean }[] = [];
  #stopping = false;

  constructor(redis: RedisClient, access: GitHubAccess, clock: Clock) {
    this.#redis = redis;
    // A refusal makes the app unready, an unreachable (or hanging) GitHub does not. Every probe
    // shares one request.
    this.#credentials = new CredentialCheck(access.checkCredentials, {
      clock,
      observe: (answer) => {
        if (answer.kind === "unreachable")
          access.log.warn({ error: answer.reason }, "could not reach GitHub to check the app's credentials");
        if (answer.kind === "refused")
          access.log.error({ status: answer.status }, "GitHub refused the app's credentials: check APP_ID and PRIVATE_KEY");
      },
    });
  }

  /** The queue workers whose running makes the app ready. */
  watch(workers: readonly { isRunning: () => boolean }[]): void {
    this.#workers = workers;
  }

  /** From now on the app is unready: it is shutting down. */
  stopping(): void {
    this.#stopping = true;
  }

  /** Each Redis server's eviction policy. */
  readonly evictionPolicies = (): Promise<EvictionPolicy[]> => readEvictionPolicies(servers(this.#redis));

  /** Every readiness check, for the readiness probe. */
  readonly check = (): Promise<ReadinessCheck[]> =>
    Promise.all([
      redisReady(this.#redis, { evictionPolicies: this.evictionPolicies }),
      workersReady(this.#stopping, this.#workers),
      this.#credentials.check(),
    ]);
}
