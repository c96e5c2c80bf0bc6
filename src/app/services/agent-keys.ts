import type { KeyObject } from "node:crypto";
import type { z } from "zod";
import { errorMessage } from "../../core/errors.ts";
import { open, SignatureError, type SignedKind } from "../../core/signing.ts";
import type { Logger } from "./logger.ts";

/** An agent's public key, with the environments it may report on (all when undefined). */
export interface AgentKey {
  key: KeyObject;
  environments?: readonly string[];
}

/** Why an agent's message was dropped. */
export type Rejection = "signature" | "malformed" | "environment";

/** Told about every agent message opened: accepted ones, and why others were dropped. */
export interface AgentMessageObserver {
  accepted: (kind: SignedKind, message: unknown) => void;
  rejected: (kind: SignedKind, reason: Rejection) => void;
}

/** The agents' public keys: the only way the app reads what an agent sent. */
export class AgentKeys {
  readonly #keys: readonly AgentKey[];
  readonly #observer: AgentMessageObserver | undefined;

  constructor(keys: readonly AgentKey[], observer?: AgentMessageObserver) {
    this.#keys = keys;
    this.#observer = observer;
  }

  /**
   * Opens a message an agent signed: the signature of one of the agents' keys, the schema, and the
   * key's binding to the message's environment. Anything else is dropped (logged, never thrown):
   * an agent's message that cannot be trusted changes nothing.
   */
  open<T extends { environment: string }>(kind: SignedKind, schema: z.ZodType<T>, envelope: unknown, log: Logger): T | undefined {
    const drop = (reason: Rejection, details: Record<string, unknown>, message: string): void => {
      this.#observer?.rejected(kind, reason);
      log.warn({ kind, ...details }, message);
    };
    for (const { key, environments } of this.#keys) {
      let message: T;
      try {
        message = schema.parse(open(kind, envelope, key));
      } catch (error) {
        if (error instanceof SignatureError) continue;
        drop("malformed", { error: errorMessage(error) }, "malformed agent message dropped");
        return undefined;
      }
      if (environments && !environments.includes(message.environment)) {
        drop("environment", { environment: message.environment }, "agent message signed by a key not bound to its environment dropped");
        return undefined;
      }
      this.#observer?.accepted(kind, message);
      return message;
    }
    drop("signature", {}, "agent message with an unknown signature dropped");
    return undefined;
  }
}
