import { escapeCode, escapeInline } from "./markdown.ts";

/** A command addressed to Sluice in a pull-request comment. */
export type Command =
  | { kind: "diff" }
  | { kind: "help" }
  | { kind: "sync"; environments: string[] }
  | { kind: "rollback"; environments: string[] }
  | { kind: "invalid"; reason: string };

const NAMES = ["diff", "help", "sync", "rollback"] as const;

/**
 * Reads the command on the first line of a comment. Only lines that start with `/diff`, `/help`,
 * `/sync`, `/rollback` or `/sluice` are addressed to Sluice (other slash commands belong to other
 * bots); anything else about them is invalid. Environment names must exist; none means all.
 */
export function parseCommand(body: string, environments: readonly string[]): Command | undefined {
  const firstLine = (body.split(/\r?\n/, 1)[0] ?? "").trim();
  if (!firstLine.startsWith("/")) return undefined;
  const words = firstLine.slice(1).split(/\s+/).filter(Boolean);
  let [name, ...args] = words;
  if (name === "sluice") [name, ...args] = args;
  else if (!NAMES.includes(name as (typeof NAMES)[number])) return undefined;
  switch (name) {
    case "diff":
    case "help":
      return args.length === 0 ? { kind: name } : { kind: "invalid", reason: `/${name} takes no arguments` };
    case "sync":
    case "rollback": {
      const unknown = args.filter((arg) => !environments.includes(arg));
      if (unknown.length > 0) {
        return { kind: "invalid", reason: `unknown environment ${unknown.map((u) => `\`${u}\``).join(", ")}` };
      }
      return { kind: name, environments: args.length > 0 ? [...new Set(args)] : [...environments] };
    }
    case undefined:
      return { kind: "invalid", reason: "no command given" };
    default:
      return { kind: "invalid", reason: `unknown command \`/${name}\`` };
  }
}

/** The reply to `/help` and to anything Sluice did not understand. */
export function helpText(environments: readonly string[], permission: string, reason?: string): string {
  const intro = reason ? `I did not understand that: ${reason}.\n\n` : "";
  return `${intro}**Sluice commands** (on the first line of a comment):

| command | what it does |
|---|---|
| \`/diff\` | render and diff this pull request again |
| \`/sync [env…]\` | deploy the tracked branch of the environments now |
| \`/rollback [env…]\` | deploy the previous successful revision of the environments |
| \`/help\` | show this message |

Environments: ${environments.map((e) => `\`${e}\``).join(", ") || "none"}. Without names, \`/sync\` and \`/rollback\` act on all of them.
\`/sync\` and \`/rollback\` need **${permission}** permission on this repository.`;
}

/** Replies to commands: one function per situation, the commenter mentioned first. */
export const replies = {
  invalidConfig: (author: string, first: { file: string; line: number; message: string } | undefined): string =>
    `@${author} the configuration on the default branch is invalid, so no command can run: \`${escapeCode(first?.file ?? "")}:${first?.line ?? 0}\` ${escapeInline(first?.message ?? "")}`,
  diffTooSoon: (author: string): string =>
    `@${author} a preview was requested less than a minute ago; it updates the preview comment when done.`,
  diffQueued: (author: string, headSha: string): string =>
    `@${author} queued a new preview of \`${headSha.slice(0, 7)}\`; the preview comment updates when it is done.`,
  /** The polite refusal: what was asked, what it needs, what the commenter has; nothing happened. */
  refused: (author: string, command: string, required: string, actual: string): string =>
    `Sorry @${author}, \`/${command}\` needs **${required}** permission on this repository and you have **${actual}**. Nothing was done.`,
  deploysDisabled: (author: string, command: string): string =>
    `@${author} deploys are not enabled on this Sluice (it has no job signing key), so \`/${command}\` cannot run. Nothing was done.`,
  deployed: (author: string, command: string, lines: readonly string[]): string => `@${author} \`/${command}\`:\n\n${lines.join("\n")}`,
  nothingToRollBack: (environment: string): string =>
    `- \`${environment}\`: no earlier successful deployment to roll back to; nothing queued.`,
  queuedLine: (environment: string, added: boolean, what: string): string =>
    `- \`${environment}\`: ${added ? "queued" : "already queued"}: ${what}.`,
};
