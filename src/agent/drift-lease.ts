import { agentQueue } from "../core/agent-protocol.ts";
import { targetName } from "../core/fleet.ts";
import type { RedisClient } from "../redis/connection.ts";

/**
 * How long a drift lease lasts without a renewal. Its holder renews it every
 * `DRIFT_LEASE_RENEW_MS`, so another replica takes over within about `DRIFT_LEASE_MS` plus one
 * renewal period of the holder's death, and replicas' clocks may disagree by up to the difference
 * (10 s) before two of them could both hold it.
 */
export const DRIFT_LEASE_MS = 15_000;
/** How often every replica takes or renews the leases of its environments. */
export const DRIFT_LEASE_RENEW_MS = 5_000;

/** The Redis key of an environment's drift lease (of one cluster of a fleet: its target), in the hash slot of its queue. */
export function driftLeaseKey(target: string): string {
  return `${agentQueue(target).prefix}:drift-lease`;
}

/** When the environment's next drift check is due, kept where whichever replica holds the lease next finds it. */
export function driftDueKey(target: string): string {
  return `${agentQueue(target).prefix}:drift-due`;
}

/**
 * A counter moved each time a deploy of the environment is remembered for drift checks, so the
 * lease holder's watches follow the new inventory whichever replica deployed it.
 */
export function appliedGenerationKey(target: string): string {
  return `${agentQueue(target).prefix}:applied-generation`;
}

// The lease is "<held until, ms since the epoch> <holder>". Expiry is decided against the caller's
// clock (injected in tests), not Redis's key expiry, which only removes a lease long abandoned.
const HOLD = `
local current = redis.call('GET', KEYS[1])
if current then
  local space = string.find(current, ' ', 1, true)
  if space then
    local heldUntil = tonumber(string.sub(current, 1, space - 1))
    local holder = string.sub(current, space + 1)
    if holder ~= ARGV[1] and heldUntil and heldUntil > tonumber(ARGV[2]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[3] .. ' ' .. ARGV[1], 'PX', ARGV[4])
return 1
`;

const RELEASE = `
local current = redis.call('GET', KEYS[1])
if current then
  local space = string.find(current, ' ', 1, true)
  if space and string.sub(current, space + 1) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
end
return 0
`;

/** What a drift lease needs. */
export interface DriftLeaseOptions {
  /** Who holds it: one id per running agent. */
  holder: string;
  now: () => number;
  /** How long a lease lasts without a renewal; `DRIFT_LEASE_MS` unless a test says otherwise. */
  leaseMs?: number;
  /** The cluster of a fleet the agent serves: its replicas share a lease apart from other clusters'. */
  cluster?: string | undefined;
}

/**
 * One agent's claim on an environment's drift checks and self-heal: of the replicas serving an
 * environment, only the one holding its lease checks, so a drift is reported (and healed) once
 * (issue 24). A lease is taken when it is free or has lapsed by the caller's clock, and renewed
 * by each `hold` of its holder; a stopping agent releases it, so another replica takes over at its
 * next turn rather than when it lapses.
 */
export class DriftLease {
  readonly #redis: RedisClient;
  readonly #holder: string;
  readonly #now: () => number;
  readonly #leaseMs: number;
  readonly #cluster: string | undefined;

  constructor(redis: RedisClient, options: DriftLeaseOptions) {
    if (/\s/.test(options.holder)) throw new Error(`a drift lease holder has no spaces, got ${JSON.stringify(options.holder)}`);
    this.#redis = redis;
    this.#holder = options.holder;
    this.#now = options.now;
    this.#leaseMs = options.leaseMs ?? DRIFT_LEASE_MS;
    this.#cluster = options.cluster;
  }

  #target(environment: string): string {
    return targetName(environment, this.#cluster);
  }

  /** Takes or renews the lease of `environment`; true when this agent holds it for the next `leaseMs`. */
  async hold(environment: string): Promise<boolean> {
    const now = this.#now();
    // Redis drops a lease nobody renewed for a long while; until then the clock above decides.
    const keepMs = Math.max(4 * this.#leaseMs, 60_000);
    const taken = await this.#redis.eval(HOLD, 1, driftLeaseKey(this.#target(environment)), this.#holder, now, now + this.#leaseMs, keepMs);
    return taken === 1;
  }

  /** Gives the lease of `environment` up when this agent holds it. */
  async release(environment: string): Promise<void> {
    await this.#redis.eval(RELEASE, 1, driftLeaseKey(this.#target(environment)), this.#holder);
  }

  /** When the next drift check of `environment` is due (ms since the epoch), or undefined when none is set or it does not read as a time. */
  async dueAt(environment: string): Promise<number | undefined> {
    const text = await this.#redis.get(driftDueKey(this.#target(environment)));
    const due = Number(text ?? "");
    return text !== null && Number.isSafeInteger(due) ? due : undefined;
  }

  /** Sets when the next drift check of `environment` is due. */
  async setDueAt(environment: string, at: number): Promise<void> {
    await this.#redis.set(driftDueKey(this.#target(environment)), String(Math.round(at)));
  }
}
