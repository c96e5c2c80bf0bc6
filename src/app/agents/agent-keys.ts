import type { KeyObject } from "node:crypto";
import type { z } from "zod";
import { errorMessage } from "../../core/errors.ts";
import { open, SignatureError, type SignedKind } from "../../core/signing.ts";
import type { Logger } from "../log-context.ts";

/**
 * An agent's public key and what it may report on: the environments, and the repositories (by
 * numeric id, which a rename does not change), that its agent serves. All when undefined.
 */
export interface AgentKey {
  key: KeyObject;
  environments?: readonly string[];
  repositories?: readonly number[];
  /** The clusters of a fleet it speaks for; a key bound to clusters speaks for no message without one. */
  clusters?: readonly string[];
}

/**
 * What every agent message is about: one environment, and one repository (reports, answers, drift)
 * or the repositories an agent's status lists (none in an empty cluster).
 */
export interface AgentMessage {
  environment: string;
  /** The cluster of a fleet the message is from. */
  cluster?: string | undefined;
  repository?: { id: number };
  repositories?: readonly { repository: { id: number } }[];
}

/** Every repository id a message names: the key that signed it must be bound to each. */
function repositoryIds(message: AgentMessage): number[] {
  return [...(message.repository ? [message.repository.id] : []), ...(message.repositories ?? []).map((r) => r.repository.id)];
}

/**
 * Why an agent's message was dropped: no configured key signed it (`signature`), it is not the
 * message its kind says (`malformed`), the key that signed it is not bound to its environment or
 * repository, it names a deploy or request the app has no record of (`unknown`), or it differs
 * from what the app sealed for it (`mismatch`).
 */
export type Rejection = "signature" | "malformed" | "environment" | "cluster" | "repository" | "unknown" | "mismatch";

/**
 * What a consumer made of a message whose signature and key binding hold: accepted, or dropped
 * because it does not match what the app itself sealed or sent (see `compareWithSealed`).
 */
export type Verdict = { accepted: true } | { accepted: false; reason: "unknown" | "mismatch"; details: Record<string, unknown> };

/** Told about every agent message opened: accepted ones, and why others were dropped. */
export interface AgentMessageObserver {
  accepted: (kind: SignedKind, message: unknown) => void;
  rejected: (kind: SignedKind, reason: Rejection) => void;
}

/** One log message per reason, so a dropped message is found by a fixed string. */
const DROPPED: Record<Rejection, string> = {
  signature: "agent message with an unknown signature dropped",
  malformed: "malformed agent message dropped",
  environment: "agent message signed by a key not bound to its environment dropped",
  cluster: "agent message signed by a key not bound to its cluster dropped",
  repository: "agent message signed by a key not bound to its repository dropped",
  unknown: "agent message about nothing the app sent dropped",
  mismatch: "agent message that differs from what the app sealed dropped",
};

/** How `AgentKeys.consume` reads and uses one kind of message. */
export interface ConsumeOptions<T extends AgentMessage> {
  schema: z.ZodType<T>;
  log: Logger;
  /**
   * Compares the message with what the app sealed or sent for it and, when it matches, acts on
   * it. What it throws is thrown, so the queue tries the message again.
   */
  use: (message: T, binding: KeyBinding) => Promise<Verdict>;
}

/** What the key that signed a message may speak for: its repositories, when it is bound to some. */
export interface KeyBinding {
  repositories?: readonly number[];
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
   * Opens a message an agent signed and hands it to `use`: the signature of one of the agents'
   * keys, the schema, and that key's binding to the message's environment and repository come
   * first, then `use` compares it with what the app sealed. Anything that fails is dropped (logged
   * with a fixed message and counted by reason, never thrown): an agent's message that cannot be
   * trusted changes nothing.
   */
  async consume<T extends AgentMessage>(kind: SignedKind, envelope: unknown, options: ConsumeOptions<T>): Promise<void> {
    const { schema, log, use } = options;
    const drop = (reason: Rejection, details: Record<string, unknown>): void => {
      this.#observer?.rejected(kind, reason);
      log.warn({ kind, ...details }, DROPPED[reason]);
    };
    const opened = this.#open(kind, schema, envelope);
    if ("rejected" in opened) {
      drop(opened.rejected, opened.details);
      return;
    }
    const verdict = await use(opened.message, opened.binding);
    if (!verdict.accepted) {
      drop(verdict.reason, verdict.details);
      return;
    }
    this.#observer?.accepted(kind, opened.message);
  }

  /**
   * The message, when a key signed it whose binding allows its environment and repository. A key
   * may be listed more than once with other bindings: any one of its entries that allows the
   * message will do.
   */
  #open<T extends AgentMessage>(
    kind: SignedKind,
    schema: z.ZodType<T>,
    envelope: unknown,
  ): { message: T; binding: KeyBinding } | { rejected: Rejection; details: Record<string, unknown> } {
    let refused: { rejected: Rejection; details: Record<string, unknown> } | undefined;
    for (const { key, environments, repositories, clusters } of this.#keys) {
      let message: T;
      try {
        message = schema.parse(open(kind, envelope, key));
      } catch (error) {
        if (error instanceof SignatureError) continue;
        return { rejected: "malformed", details: { error: errorMessage(error) } };
      }
      if (environments && !environments.includes(message.environment))
        refused ??= { rejected: "environment", details: { environment: message.environment, bound: environments } };
      else if (clusters && (message.cluster === undefined || !clusters.includes(message.cluster)))
        refused ??= { rejected: "cluster", details: { cluster: message.cluster ?? null, bound: clusters } };
      else if (repositories && repositoryIds(message).some((id) => !repositories.includes(id)))
        refused ??= {
          rejected: "repository",
          details: { repository: repositoryIds(message).find((id) => !repositories.includes(id)), bound: repositories },
        };
      else return { message, binding: repositories ? { repositories } : {} };
    }
    return refused ?? { rejected: "signature", details: {} };
  }
}

/** What an agent's message says it is about, or what the app sealed for it: compared field by field. */
export interface Subject {
  /** The deploy job's id, or the live-preview request's. */
  id: string;
  environment: string;
  repositoryId: number;
  installationId: number;
  /** The commit deployed, previewed, or measured for drift. */
  sha: string;
}

const SUBJECT_FIELDS = ["id", "environment", "repositoryId", "installationId", "sha"] as const;

/**
 * Compares what an agent's message says with what the app sealed for it (a deploy's record, a
 * published preview): accepted only when every field is the same, since the app writes to GitHub
 * from what it sealed and must not apply one deploy's report, answer or drift to another.
 * `about` names the message in the log.
 */
export function compareWithSealed(reported: Subject, sealed: Subject, about: Record<string, unknown>): Verdict {
  const fields = SUBJECT_FIELDS.filter((field) => reported[field] !== sealed[field]);
  if (fields.length === 0) return { accepted: true };
  const pick = (subject: Subject) => Object.fromEntries(fields.map((field) => [field, subject[field]]));
  return { accepted: false, reason: "mismatch", details: { ...about, fields, reported: pick(reported), sealed: pick(sealed) } };
}

/** What names one deploy (a report, a drift report, the deploy's record), as a `Subject`. */
export function deploySubject(
  jobId: string,
  deploy: { environment: string; repository: { id: number }; installationId: number; sha: string },
): Subject {
  return {
    id: jobId,
    environment: deploy.environment,
    repositoryId: deploy.repository.id,
    installationId: deploy.installationId,
    sha: deploy.sha,
  };
}

/** A message that names a deploy or request the app has no record of. */
export function unknownToApp(about: Record<string, unknown>): Verdict {
  return { accepted: false, reason: "unknown", details: about };
}
