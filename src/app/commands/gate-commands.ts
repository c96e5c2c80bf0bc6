import { replies, type Command } from "../../core/commands.ts";
import type { Config, Environment } from "../../core/config.ts";
import type { RepositoryRef } from "../../core/git-ref.ts";
import type { GitHubClient, Permission } from "../github/client.ts";
import type { Logger } from "../log-context.ts";
import type { GatedDeploys } from "../promotion/gated-deploys.ts";
import type { Promotions } from "../promotion/promotions.ts";

/** What the gate commands need: the deploy flow's gates (absent when the app does not deploy). */
export interface GateCommandDeps {
  gated: GatedDeploys | undefined;
  promotions: Promotions | undefined;
  log: Logger;
}

/** Who asked, where. */
export interface GateAsker {
  repository: RepositoryRef;
  installationId: number;
  author: string;
}

/**
 * `/approve`, `/reject` and `/promote`, and the Approve button: who may approve is the
 * environment's approval policy (checked when the approval is judged), who may reject or promote
 * is the commands permission, checked by the caller before this runs. Returns the reply.
 */
export class GateCommands {
  readonly #deps: GateCommandDeps;

  constructor(deps: GateCommandDeps) {
    this.#deps = deps;
  }

  /** `sha`: the commit of the check run whose Approve button was pressed (the approval counts only for its deploy). */
  async approve(gh: GitHubClient, asker: GateAsker, env: Environment, sha?: string): Promise<string> {
    const gated = this.#deps.gated;
    if (!env.approval || !gated)
      return replies.nothingAwaitingApproval(asker.author, { environment: env.name, command: "approve", noPolicy: true });
    const outcome = await gated.approve(gh, env, asker, asker.author, sha);
    switch (outcome.kind) {
      case "none":
        return replies.nothingAwaitingApproval(asker.author, { environment: env.name, command: "approve" });
      case "refused":
        this.#deps.log.info({ repository: asker.repository.id, environment: env.name, author: asker.author }, "approval refused");
        return replies.approvalRefused(asker.author, { environment: env.name, reason: outcome.reason });
      case "counted":
        return replies.approvalRecorded(asker.author, { environment: env.name, ...outcome });
    }
  }

  async reject(gh: GitHubClient, asker: GateAsker, env: Environment, reason: string): Promise<string> {
    const gated = this.#deps.gated;
    if (!env.approval || !gated)
      return replies.nothingAwaitingApproval(asker.author, { environment: env.name, command: "reject", noPolicy: true });
    const rejected = await gated.reject(gh, env, asker.repository.id, asker.author, reason);
    if (!rejected) return replies.nothingAwaitingApproval(asker.author, { environment: env.name, command: "reject" });
    return replies.rejectionRecorded(asker.author, { environment: env.name, sha: rejected.request.sha, reason });
  }

  async promote(asker: GateAsker, env: Environment, reason: string): Promise<string> {
    const promotions = this.#deps.promotions;
    const upstream = env.promotion?.after;
    if (!upstream || !promotions) return replies.nothingToPromote(asker.author, { environment: env.name, why: { kind: "not-gated" } });
    const promoted = await promotions.promote(asker, env, asker.author, reason);
    if (!promoted.ok) return replies.nothingToPromote(asker.author, { environment: env.name, why: promoted.why });
    this.#deps.log.info(
      { repository: asker.repository.id, environment: env.name, sha: promoted.sha, by: asker.author, reason },
      "commit promoted by hand",
    );
    return replies.promotionRecorded(asker.author, {
      environment: env.name,
      upstream,
      sha: promoted.sha,
      reason,
      waitsForApproval: env.approval !== undefined,
    });
  }
}

/** The permission a command needs: an override of a freeze is an admin's; everything else the configured commands permission. */
export function requiredPermission(command: Command, config: Config): Permission {
  return command.kind === "sync" && command.overrideFreeze !== undefined ? "admin" : config.commands.permission;
}
