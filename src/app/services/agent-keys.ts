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

/**
 * Opens a message an agent signed: the signature of one of the agents' keys, the schema, and the
 * key's binding to the message's environment. Anything else is dropped (logged, never thrown):
 * an agent's message that cannot be trusted changes nothing.
 */
export function openAgentMessage<T extends { environment: string }>(
  kind: SignedKind,
  schema: z.ZodType<T>,
  envelope: unknown,
  keys: readonly AgentKey[],
  log: Logger,
): T | undefined {
  for (const { key, environments } of keys) {
    try {
      const message = schema.parse(open(kind, envelope, key));
      if (environments && !environments.includes(message.environment)) {
        log.warn({ kind, environment: message.environment }, "agent message signed by a key not bound to its environment dropped");
        return undefined;
      }
      return message;
    } catch (error) {
      if (!(error instanceof SignatureError)) {
        log.warn({ kind, error: errorMessage(error) }, "malformed agent message dropped");
        return undefined;
      }
    }
  }
  log.warn({ kind }, "agent message with an unknown signature dropped");
  return undefined;
}
