import { describe, expect, it } from "vitest";
import { helpText, parseCommand, replies } from "../../../src/core/commands.ts";
import { liveParts } from "../../helpers/live-markdown.ts";

const envs = ["staging", "production"];

describe("parseCommand", () => {
  it("reads commands on the first line only", () => {
    expect(parseCommand("/diff", envs)).toEqual({ kind: "diff" });
    expect(parseCommand("  /help  \nplease", envs)).toEqual({ kind: "help" });
    expect(parseCommand("please\n/sync", envs)).toBeUndefined();
  });

  it("takes environment names, all when none are given", () => {
    expect(parseCommand("/sync production", envs)).toEqual({ kind: "sync", environments: ["production"], named: true });
    expect(parseCommand("/rollback", envs)).toEqual({ kind: "rollback", environments: envs, named: false });
    expect(parseCommand("/sync staging staging", envs)).toEqual({ kind: "sync", environments: ["staging"], named: true });
    expect(parseCommand("/sluice sync staging", envs)).toEqual({ kind: "sync", environments: ["staging"], named: true });
  });

  it("takes `/rollback [env…] to <sha>`", () => {
    expect(parseCommand("/rollback production to abc1234", envs)).toEqual({
      kind: "rollback",
      environments: ["production"],
      named: true,
      to: "abc1234",
    });
    expect(parseCommand("/rollback to 0123456789abcdef0123456789abcdef01234567", envs)).toEqual({
      kind: "rollback",
      environments: envs,
      named: false,
      to: "0123456789abcdef0123456789abcdef01234567",
    });
    const invalid = { kind: "invalid", reason: "`/rollback [env…] to <sha>` takes one commit SHA (7 to 40 hex digits) after `to`" };
    expect(parseCommand("/rollback to", envs)).toEqual(invalid);
    expect(parseCommand("/rollback to abc", envs)).toEqual(invalid);
    expect(parseCommand("/rollback to main", envs)).toEqual(invalid);
    expect(parseCommand("/rollback to abc1234 staging", envs)).toEqual(invalid);
    expect(parseCommand("/rollback qa to abc1234", envs)).toEqual({ kind: "invalid", reason: "unknown environment `qa`" });
  });

  it("rejects unknown environments, arguments and commands addressed to Sluice", () => {
    expect(parseCommand("/sync qa", envs)).toEqual({ kind: "invalid", reason: "unknown environment `qa`" });
    expect(parseCommand("/diff now", envs)).toEqual({ kind: "invalid", reason: "/diff takes no arguments" });
    expect(parseCommand("/sluice deploy", envs)).toEqual({ kind: "invalid", reason: "unknown command `/deploy`" });
    expect(parseCommand("/sluice", envs)).toEqual({ kind: "invalid", reason: "no command given" });
  });

  it("leaves other bots' commands and exact-word mismatches alone", () => {
    expect(parseCommand("/lgtm", envs)).toBeUndefined();
    expect(parseCommand("/synchronize", envs)).toBeUndefined();
    expect(parseCommand("hello", envs)).toBeUndefined();
  });
});

describe("helpText", () => {
  it("lists commands, environments and the permission, with the reason first", () => {
    const text = helpText(envs, "write", "unknown environment `qa`");
    expect(text.startsWith("I did not understand that: unknown environment `qa`.")).toBe(true);
    expect(text).toContain("Environments: `staging`, `production`.");
    expect(text).toContain("need **write** permission");
  });
});

describe("replies show what the commenter wrote as text", () => {
  /** What a commenter can put in a command word or an environment name. */
  const attacks = [
    "/sluice deploy`[x](https://evil.example)`",
    "/sluice `@octo-org/admins`",
    "/sluice x`![i](https://evil.example/p.png)`",
    "/sluice x`<img src=https://evil.example/p.png>`",
    "/sluice x`#1`y`GH-2`",
    "/sync a`[x](https://evil.example)` b`@octo-org/admins` c`![i](https://evil.example/p.png)`",
    "/rollback staging`@octo-org/admins`",
  ];

  it("echoes no link, image, HTML, mention or reference of an invalid command", () => {
    for (const body of attacks) {
      const command = parseCommand(body, envs);
      expect(command?.kind, body).toBe("invalid");
      const reason = command?.kind === "invalid" ? command.reason : "";
      expect(liveParts(helpText(envs, "write", reason)), body).toEqual([]);
    }
  });

  it("echoes an unknown word whole but short, and at most a few of them", () => {
    const long = parseCommand(`/sluice ${"a".repeat(20_000)}`, envs);
    expect(long?.kind === "invalid" && long.reason.length).toBeLessThan(200);
    const many = parseCommand(`/sync ${Array.from({ length: 500 }, (_, i) => `qa${i}`).join(" ")}`, envs);
    expect(many).toEqual({ kind: "invalid", reason: "unknown environment `qa0`, `qa1`, `qa2`, `qa3`, `qa4` and 495 more" });
  });

  it("shows branch and environment names from the configuration as text in every reply", () => {
    const branch = "main`[x](https://evil.example)`@octo-org/admins";
    const environment = "prod`@octo-org/admins`";
    const texts = [
      helpText([environment], "write"),
      replies.queuedLine(environment, true, "deploy"),
      replies.cannotRollBack(environment, "no revisions"),
      replies.revertOpened([environment], { number: 7, url: "https://github.example/o/r/pull/7" }, branch),
      replies.revertNotNeeded([environment], branch, "a".repeat(40)),
      replies.revertTouchesWorkflows([environment], branch, "a".repeat(40), [
        ".github/workflows/`[x](https://evil.example)`@octo-org/admins.yml",
      ]),
      replies.syncLine(environment, true, { branch, sha: "b".repeat(40), link: "[check run](https://github.example/c)" }),
      replies.revertBody({ author: "octocat", environments: [environment], from: "c".repeat(40), target: "d".repeat(40), branch }),
    ];
    // The one mention meant: the person who rolled back.
    const own = ["https://github.example/o/r/pull/7", "https://github.example/c"];
    for (const text of texts)
      expect(
        liveParts(text, own).filter((part) => part !== "mention @octocat"),
        text,
      ).toEqual([]);
  });
});

describe("replies.revertTouchesWorkflows", () => {
  const target = "a".repeat(40);
  const files = (n: number) => Array.from({ length: n }, (_, i) => `.github/workflows/w${String(i)}.yml`);

  it("names up to five workflow files and counts the rest, or names the directory when GitHub named none", () => {
    expect(replies.revertTouchesWorkflows(["production"], "main", target, files(1))).toContain(
      "would change `.github/workflows/w0.yml`; Sluice does not write workflow files",
    );
    expect(replies.revertTouchesWorkflows(["production"], "main", target, files(3))).toContain(
      "would change `.github/workflows/w0.yml`, `.github/workflows/w1.yml` and `.github/workflows/w2.yml`;",
    );
    expect(replies.revertTouchesWorkflows(["production"], "main", target, files(8))).toContain(
      "`.github/workflows/w3.yml`, `.github/workflows/w4.yml` and 3 more;",
    );
    expect(replies.revertTouchesWorkflows(["production"], "main", target, [])).toContain("would change files under `.github/workflows/`;");
  });

  it("says how to revert by hand from the tracked branch, and what releases the hold", () => {
    const text = replies.revertTouchesWorkflows(["production", "staging"], "release", target, files(1));
    expect(text).toContain(
      `on a branch from \`release\`, at the repository's root, run \`git restore --source=${target} --staged --worktree .\`, commit, and open a pull request`,
    );
    expect(text).toContain("once it is merged, `/sync` releases `production`, `staging`.");
  });
});

describe("replies to deploys and rollbacks", () => {
  const a = "a".repeat(40);
  const b = "b".repeat(40);

  it("says what a rollback of one environment queued, and what its revert pull request became", () => {
    expect(replies.rollbackLine("production", true, { target: a, from: b, link: "[check run](https://github.example/c/1)" })).toBe(
      "- `production`: queued: roll back to `aaaaaaa` from `bbbbbbb` ([check run](https://github.example/c/1)); the environment is held.",
    );
    expect(replies.rollbackLine("production", false, { target: a, from: b, link: "L" })).toContain("- `production`: already queued: ");
    const pull = { number: 7, url: "https://github.example/o/r/pull/7" };
    expect(replies.revertLine(["production"], "main", a, { kind: "opened", pull })).toBe(
      replies.revertOpened(["production"], pull, "main"),
    );
    expect(replies.revertLine(["production"], "main", a, { kind: "unchanged" })).toBe(replies.revertNotNeeded(["production"], "main", a));
    expect(replies.revertLine(["production"], "main", a, { kind: "workflows", files: [".github/workflows/ci.yml"] })).toBe(
      replies.revertTouchesWorkflows(["production"], "main", a, [".github/workflows/ci.yml"]),
    );
  });

  it("writes the revert pull request's commit message and title", () => {
    const revert = { author: "octocat", environments: ["production", "staging"], from: b, target: a, branch: "main" };
    expect(replies.revertCommitMessage(revert)).toBe(
      "Revert main to aaaaaaa\n\nRolled back from bbbbbbb by @octocat with Sluice (production, staging).",
    );
    expect(replies.revertTitle("main", a)).toBe("Revert main to aaaaaaa (Sluice rollback)");
  });

  it("writes the outputs of a command's deploy check run, and the link to it", () => {
    expect(replies.deployQueuedOutput("rollback", "octo_cat", a)).toEqual({
      title: "Rendering",
      summary: "`/rollback` by octo\\_cat: rendering `aaaaaaa`.",
    });
    expect(replies.alreadyQueuedOutput()).toEqual({ title: "Already queued", summary: "The same request was already queued." });
    expect(replies.checkRunLink("https://github.example/c/1")).toBe("[check run](https://github.example/c/1)");
  });

  it("writes the audit texts of a button press: no such environment, refused, and done", () => {
    expect(replies.auditNoEnvironment("prod`x`")).toBe(
      "refused: the default branch's configuration has no valid environment `prod'x'`; nothing was done.",
    );
    expect(replies.auditRefused("Sorry @octocat, no.")).toBe("refused: Sorry @octocat, no.");
    expect(replies.auditDone(["- one", "- two"])).toBe("\n- one\n- two");
  });
});
