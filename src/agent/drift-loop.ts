import type { DriftReport } from "../core/agent-protocol.ts";
import { errorMessage } from "../core/errors.ts";
import { CoalescedRuns } from "../core/coalesced-runs.ts";
import type { RedisClient } from "../redis/connection.ts";
import type { AgentLog } from "./agent-log.ts";
import type { DriftChecker } from "./drift.ts";
import { appliedGenerationKey, DRIFT_LEASE_RENEW_MS, type DriftLease } from "./drift-lease.ts";
import { DriftWatcher } from "./drift-watch.ts";
import type { Cluster } from "./kube/cluster.ts";
import type { AgentMetrics } from "./metrics.ts";

/** What the drift loop needs. */
export interface DriftLoopDeps {
  redis: RedisClient;
  cluster: Cluster;
  drift: DriftChecker;
  lease: DriftLease;
  metrics: AgentMetrics;
  environments: readonly string[];
  /** Between checks of an environment; 0 turns drift checks (and watches) off. */
  intervalMs: number;
  /** Whether watches see hand edits between the polls. */
  watch: boolean;
  /** Whether a watch checks on a write of an object's status too (an agent of a fleet's cluster: a wave bakes healthy). */
  watchStatus?: boolean;
  send: (report: DriftReport) => Promise<void>;
  log: AgentLog;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** A number in [0, 1), for the jitter of drift checks. */
  random: () => number;
}

/**
 * The drift checks of the environments whose lease this agent holds: a poll at the interval
 * (jittered, its due time kept in Redis so a replica that takes over keeps the pace) and, when
 * asked for, watches that check an environment as soon as a hand edits one of its objects.
 */
export class DriftLoop {
  readonly #deps: DriftLoopDeps;
  readonly #watcher: DriftWatcher | undefined;
  /** One drift check of an environment at a time, whether the poll or a watch asked for it. */
  /** The checks of each environment: a stream of writes (a controller writing an object's status again and again) costs a check at a time. */
  readonly #checking = new CoalescedRuns();
  /** The applied generation each followed environment's watches were set up for. */
  readonly #followed = new Map<string, string>();
  #stopped = false;
  #wake: () => void = () => undefined;
  readonly #stopping = new Promise<void>((resolve) => {
    this.#wake = resolve;
  });
  #run: Promise<void> = Promise.resolve();

  constructor(deps: DriftLoopDeps) {
    this.#deps = deps;
    // Watches see a hand edit within seconds; the poll stays as the safety net (issue 28).
    this.#watcher =
      deps.intervalMs > 0 && deps.watch
        ? new DriftWatcher({
            cluster: deps.cluster,
            statusWrites: deps.watchStatus === true,
            sleep: deps.sleep,
            log: deps.log,
            onChange: (environment, reason) => {
              this.#changed(environment, reason);
            },
          })
        : undefined;
  }

  /** Starts the poll, when drift checks are on. */
  start(): void {
    if (this.#deps.intervalMs > 0) this.#run = this.#loop();
  }

  /** Ends the loop and the watches now, so no check starts while the rest of the agent stops; `finished` waits for them. */
  stop(): void {
    this.#stopped = true;
    this.#wake();
    void this.#watcher?.stop();
  }

  /** Resolves once the watches, the loop and every check under way ended. */
  async finished(): Promise<void> {
    await this.#watcher?.stop();
    await this.#run;
    await this.#checking.settled();
  }

  /** Gives up the leases, so another replica takes the checks over at once. */
  async release(): Promise<void> {
    await Promise.all(this.#deps.environments.map((environment) => this.#deps.lease.release(environment)));
  }

  #changed(environment: string, reason: Record<string, unknown>): void {
    const { lease, log } = this.#deps;
    void (async () => {
      if (this.#stopped || !(await lease.hold(environment))) return;
      log("info", "drift watch saw a change: checking", { environment, ...reason });
      await this.#checkInTurn(environment);
    })().catch((error: unknown) => {
      log("error", "drift check failed", { environment, error: errorMessage(error) });
    });
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      let wait = DRIFT_LEASE_RENEW_MS;
      try {
        wait = await this.#turn();
      } catch (error) {
        this.#deps.log("error", "drift check failed", { error: errorMessage(error) });
      }
      await Promise.race([this.#deps.sleep(Math.max(wait, 0)), this.#stopping]);
    }
  }

  /**
   * One turn: takes or renews each environment's lease, and checks those it holds whose check is
   * due. Returns how long to wait before the next turn.
   */
  async #turn(): Promise<number> {
    const { lease, now, intervalMs, log } = this.#deps;
    let wait = DRIFT_LEASE_RENEW_MS;
    for (const environment of this.#deps.environments) {
      const held = !this.#stopped && (await lease.hold(environment));
      await this.#follow(environment, held).catch((error: unknown) => {
        log("error", "drift watch failed to follow the inventory", { environment, error: errorMessage(error) });
      });
      if (!held) continue;
      let due = await lease.dueAt(environment);
      // Redis is not trusted: a due time further off than one interval is not believed.
      if (due === undefined || due > now() + intervalMs * 1.1) {
        due = this.#nextDue();
        await lease.setDueAt(environment, due);
      } else if (due <= now()) {
        await this.#checkInTurn(environment);
        due = this.#nextDue();
        await lease.setDueAt(environment, due);
      }
      wait = Math.min(wait, due - now());
    }
    return wait;
  }

  /** Jittered by up to a tenth either way, so agents of other clusters do not check in step. */
  #nextDue(): number {
    return this.#deps.now() + this.#deps.intervalMs * (0.9 + this.#deps.random() * 0.2);
  }

  /** Checks an environment after the check under way, if any: one check runs and one more waits at most (see `CoalescedRuns`). */
  #checkInTurn(environment: string): Promise<void> {
    return this.#checking.run(environment, () => this.#check(environment));
  }

  /** Checks one environment whose lease this agent holds, renewing the lease as it goes, and sends a report per repository. */
  async #check(environment: string): Promise<void> {
    const { drift, lease, metrics, now, log } = this.#deps;
    let found: Awaited<ReturnType<DriftChecker["checkEnvironment"]>>;
    try {
      found = await drift.checkEnvironment(environment, { stillHeld: () => lease.hold(environment) });
    } catch (error) {
      log("error", "drift check failed", { environment, error: errorMessage(error) });
      return;
    }
    metrics.driftCheckTime.set({ environment }, now() / 1000);
    for (const body of found) {
      const report: DriftReport = { ...body, at: new Date(now()).toISOString() };
      await this.#deps.send(report);
      if (report.drifted.length > 0)
        log("info", "drift found", {
          environment,
          repository: report.repository.id,
          drifted: report.drifted.length,
          healed: report.healed.length,
        });
    }
  }

  /**
   * Points the watches of `environment` at what its inventories record now, when this agent holds
   * its lease and a deploy was remembered since; stops them when another replica holds it.
   */
  async #follow(environment: string, held: boolean): Promise<void> {
    const watcher = this.#watcher;
    if (!watcher) return;
    if (!held) {
      if (this.#followed.delete(environment)) watcher.follow(environment, []);
      return;
    }
    const generation = (await this.#deps.redis.get(appliedGenerationKey(this.#deps.drift.target(environment)))) ?? "";
    if (this.#followed.get(environment) === generation) return;
    watcher.follow(environment, await this.#deps.drift.inventoried(environment));
    this.#followed.set(environment, generation);
    this.#deps.log("info", "drift watches follow the inventory", {
      environment,
      watches: watcher.watches.filter((key) => key.startsWith(`${environment}|`)).length,
    });
  }
}
