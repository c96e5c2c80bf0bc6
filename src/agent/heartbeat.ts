import type { Queue } from "bullmq";
import { agentHeartbeatKey } from "../core/agent-protocol.ts";
import { errorMessage } from "../core/errors.ts";
import type { RedisClient } from "../redis/connection.ts";
import type { AgentLog } from "./agent-log.ts";

/** How long an agent's heartbeat lasts; it is renewed three times as often. */
const HEARTBEAT_TTL_SECONDS = 30;

/** What the heartbeat writes to. */
export interface HeartbeatDeps {
  redis: RedisClient;
  /** The environments it serves, each by its target (`core/fleet.ts`'s `targetName`: the environment, or its cluster of a fleet). */
  targets: readonly string[];
  /** The deploy queues, whose one-job-at-a-time limit each beat sets again. */
  queues: () => readonly Queue[];
  now: () => number;
  log: AgentLog;
}

/**
 * Tells the app an agent is here to answer live previews (a hint; it decides nothing), and sets
 * again each deploy queue's one-job-at-a-time limit, which BullMQ keeps in Redis: a Redis emptied
 * or restored under running agents would otherwise let two replicas run two deploys at once.
 */
export class Heartbeat {
  readonly #deps: HeartbeatDeps;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: HeartbeatDeps) {
    this.#deps = deps;
  }

  /** Beats once, then every third of the heartbeat's lifetime until `stop`. */
  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(
      () => {
        this.#beat().catch((error: unknown) => {
          this.#deps.log("warn", "heartbeat failed", { error: errorMessage(error) });
        });
      },
      (HEARTBEAT_TTL_SECONDS * 1000) / 3,
    );
  }

  /** Stops beating; the heartbeat keys lapse by themselves unless `clear` removes them. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** Removes the heartbeat keys: this agent answers nothing any more. */
  async clear(): Promise<void> {
    await Promise.all(this.#deps.targets.map((target) => this.#deps.redis.del(agentHeartbeatKey(target))));
  }

  async #beat(): Promise<void> {
    const { redis, targets, now } = this.#deps;
    await Promise.all([
      ...targets.map((target) => redis.set(agentHeartbeatKey(target), String(now()), "EX", HEARTBEAT_TTL_SECONDS)),
      ...this.#deps.queues().map((queue) => queue.setGlobalConcurrency(1)),
    ]);
  }
}
