import { describe, expect, it } from "vitest";
import { helpText, parseCommand, replies, type Command } from "../../../src/core/commands.ts";
import { liveParts } from "../../helpers/live-markdown.ts";

const envs = ["staging", "production"];

/** Each body parses exactly to its command (no field more, none less). */
function expectParses(cases: readonly [string, Command][]): void {
  for (const [body, command] of cases) expect(parseCommand(body, envs), body).toStrictEqual(command);
}

/** Why `body` is an invalid command (undefined when it is not one). */
function invalidReason(body: string): string | undefined {
  const command = parseCommand(body, envs);
  return command?.kind === "invalid" ? command.reason : undefined;
}

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
    "/approve prod`@octo-org/admins`",
    "/approve staging x`[x](https://evil.example)`",
    "/reject qa`![i](https://evil.example/p.png)` reason",
    "/promote x`<img src=https://evil.example/p.png>` now",
    "/sync --x`#1`y`GH-2`",
    `/reject production ${"@octo-org/admins ".repeat(20)}`,
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

describe("parseCommand: /approve", () => {
  it("takes exactly one environment that exists", () => {
    expect(parseCommand("/approve production", envs)).toStrictEqual({ kind: "approve", environment: "production" });
    expect(parseCommand("/sluice approve staging\nthanks", envs)).toStrictEqual({ kind: "approve", environment: "staging" });
  });

  it("says what it expected when the environment is missing, extra or unknown", () => {
    expect(invalidReason("/approve")).toBe("`/approve <env>` needs the name of an environment");
    expect(invalidReason("/approve staging production")).toBe(
      "`/approve <env>` takes one environment and nothing after it, not `production`",
    );
    expect(invalidReason("/approve qa")).toBe("unknown environment `qa`");
    expect(invalidReason("/sluice approve")).toBe("`/approve <env>` needs the name of an environment");
  });
});

describe("parseCommand: /reject and /promote", () => {
  it("take an environment and the rest of the first line as the reason, trimmed, its spacing kept", () => {
    expectParses([
      [
        "/reject production   breaks the  login page \nmore text",
        { kind: "reject", environment: "production", reason: "breaks the  login page" },
      ],
      ["/promote production fix verified on staging", { kind: "promote", environment: "production", reason: "fix verified on staging" }],
      ["/sluice promote production\tincident 42", { kind: "promote", environment: "production", reason: "incident 42" }],
    ]);
  });

  it("need a reason", () => {
    expect(invalidReason("/reject production")).toBe("`/reject <env> <reason>` needs a reason after the environment");
    expect(invalidReason("/promote production   \nbecause")).toBe("`/promote <env> <reason>` needs a reason after the environment");
    expect(invalidReason("/reject")).toBe("`/reject <env> <reason>` needs the name of an environment");
    expect(invalidReason("/promote")).toBe("`/promote <env> <reason>` needs the name of an environment");
  });

  it("take a reason of at most 200 characters as people count them (not UTF-16 units or code points)", () => {
    expectParses([
      [`/reject production ${"r".repeat(200)}`, { kind: "reject", environment: "production", reason: "r".repeat(200) }],
      [`/promote production ${"🚀".repeat(200)}`, { kind: "promote", environment: "production", reason: "🚀".repeat(200) }],
    ]);
    expect(parseCommand(`/promote production ${"👩‍👩‍👧".repeat(200)}`, envs)).toMatchObject({ kind: "promote" });
    expect(invalidReason(`/reject production ${"r".repeat(201)}`)).toBe(
      "the reason of `/reject <env> <reason>` is 201 characters long; it takes at most 200",
    );
  });

  it("name an environment that exists", () => {
    expect(invalidReason("/reject qa too risky")).toBe("unknown environment `qa`");
    expect(invalidReason("/promote prod`@octo-org/admins` now")).toBe("unknown environment `prod'@octo-org/admins'`");
  });
});

describe("parseCommand: /sync --cluster", () => {
  it("names one cluster of one environment, before or after it, and with an override after both", () => {
    const one = { kind: "sync", environments: ["production"], named: true, cluster: "eu-1" };
    expect(parseCommand("/sync production --cluster eu-1", envs)).toStrictEqual(one);
    expect(parseCommand("/sync --cluster eu-1 production", envs)).toStrictEqual(one);
    expect(parseCommand("/sync production --cluster eu-1 --override-freeze incident 7", envs)).toStrictEqual({
      ...one,
      overrideFreeze: "incident 7",
    });
  });

  it("refuses a cluster that is not a name, none, and a cluster of no or several environments", () => {
    const usage = "`/sync <env> --cluster <name>`";
    expect(invalidReason("/sync production --cluster")).toBe(
      `${usage} takes one cluster's name, as its agent's SLUICE_AGENT_CLUSTER gives it (such as eu-1)`,
    );
    expect(invalidReason("/sync production --cluster EU_1")).toBe(
      `${usage} takes one cluster's name, as its agent's SLUICE_AGENT_CLUSTER gives it (such as eu-1)`,
    );
    expect(invalidReason("/sync --cluster eu-1")).toBe(`${usage} names one environment`);
    expect(invalidReason("/sync production staging --cluster eu-1")).toBe(`${usage} names one environment`);
  });
});

describe("parseCommand: /rollback --cluster", () => {
  it("names one cluster of one environment, with or without a revision", () => {
    const one = { kind: "rollback", environments: ["production"], named: true, cluster: "eu-1" };
    expect(parseCommand("/rollback production --cluster eu-1", envs)).toStrictEqual(one);
    expect(parseCommand("/rollback --cluster eu-1 production to abc1234", envs)).toStrictEqual({ ...one, to: "abc1234" });
    expect(parseCommand("/rollback production to abc1234 --cluster eu-1", envs)).toStrictEqual({ ...one, to: "abc1234" });
  });

  it("refuses a cluster that is not a name, a cluster of no or several environments, and other options", () => {
    const usage = "`/rollback <env> --cluster <name>`";
    expect(invalidReason("/rollback production --cluster")).toBe(
      `${usage} takes one cluster's name, as its agent's SLUICE_AGENT_CLUSTER gives it (such as eu-1)`,
    );
    expect(invalidReason("/rollback --cluster eu-1")).toBe(`${usage} names one environment`);
    expect(invalidReason("/rollback production staging --cluster eu-1 to abc1234")).toBe(`${usage} names one environment`);
    expect(invalidReason("/rollback production --force")).toBe("`/rollback` takes one option, `--cluster <name>`, not `--force`");
  });
});

describe("parseCommand: /sync --override-freeze", () => {
  it("takes everything after the flag as the reason", () => {
    const override = (environments: string[], overrideFreeze: string): Command => ({
      kind: "sync",
      environments,
      named: environments !== envs,
      overrideFreeze,
    });
    expectParses([
      ["/sync production --override-freeze  incident 42: hotfix --now", override(["production"], "incident 42: hotfix --now")],
      ["/sync --override-freeze release train", override(envs, "release train")],
      ["/sluice sync staging --override-freeze x --override-freeze y", override(["staging"], "x --override-freeze y")],
    ]);
  });

  it("leaves a plain /sync without the field", () => {
    expect(parseCommand("/sync production", envs)).toStrictEqual({ kind: "sync", environments: ["production"], named: true });
  });

  it("needs a reason of at most 200 characters", () => {
    const usage = "`/sync [env…] --override-freeze <reason>`";
    expect(invalidReason("/sync production --override-freeze")).toBe(`${usage} needs a reason after \`--override-freeze\``);
    expect(invalidReason(`/sync --override-freeze ${"r".repeat(201)}`)).toBe(
      `the reason of ${usage} is 201 characters long; it takes at most 200`,
    );
    expect(invalidReason("/sync qa --override-freeze hotfix")).toBe("unknown environment `qa`");
  });

  it("refuses other options, and the flag on any other command", () => {
    expect(invalidReason("/sync production --force")).toBe(
      "`/sync` takes two options, `--cluster <name>` and `--override-freeze <reason>` after the environments, not `--force`",
    );
    expect(invalidReason("/sync --override-freeze=hotfix")).toBe(
      "`/sync` takes two options, `--cluster <name>` and `--override-freeze <reason>` after the environments, not `--override-freeze=hotfix`",
    );
    const elsewhere = "`--override-freeze` goes only with `/sync`: `/sync [env…] --override-freeze <reason>`";
    const bodies = [
      "/rollback production --override-freeze hotfix",
      "/approve production --override-freeze",
      "/promote production --override-freeze hotfix",
      "/reject production too risky --override-freeze",
    ];
    for (const body of bodies) expect(invalidReason(body), body).toBe(elsewhere);
    expect(invalidReason("/diff --override-freeze x")).toBe("/diff takes no arguments");
  });
});

describe("helpText: promotion commands", () => {
  it("lists the new commands", () => {
    const text = helpText(envs, "write");
    for (const usage of [
      "| `/approve <env>` |",
      "| `/reject <env> <reason>` |",
      "| `/promote <env> <reason>` |",
      "| `/sync [env…] --override-freeze <reason>` |",
    ])
      expect(text).toContain(usage);
  });

  it("says who may use them: the commands permission, admin, and each environment's approval policy", () => {
    const text = helpText(envs, "maintain", undefined, {
      approvals: [
        { environment: "production", from: "@octo-org/release-managers", required: 2, notAuthor: true },
        { environment: "staging", from: "write", required: 1, notAuthor: false },
      ],
    });
    expect(text).toContain(
      "`/sync`, `/rollback`, `/promote` and `/reject` need **maintain** permission on this repository; `/sync … --override-freeze` needs **admin**.",
    );
    expect(text).toContain(
      "`/approve <env>` is for whoever the environment's `approval.from` allows: `production`: members of team `@octo-org/release-managers`, 2 approvals, not the pull request's author or the person who merged it; `staging`: **write** permission or more, 1 approval.",
    );
    expect(liveParts(text)).toEqual([]);
  });

  it("says when no environment waits for approval, and keeps to the general rule when it is not told", () => {
    expect(helpText(envs, "write", undefined, { approvals: [] })).toContain(
      "`/approve <env>` is for whoever the environment's `approval.from` allows: no environment here waits for approval.",
    );
    expect(helpText(envs, "write")).toContain("`/approve <env>` is for whoever the environment's `approval.from` allows.");
  });
});

describe("replies to approvals, rejections, promotions and freeze overrides", () => {
  const sha = "a".repeat(40);
  const upstreamSha = "b".repeat(40);
  const nasty = "see @someone <b>bold</b> `rm -rf /` https://evil.example/x [x](https://evil.example) #12";
  const lines = ["- `production`: queued: deploy `main` at `aaaaaaa` ([check run](https://github.example/c/1))."];

  it("records an approval: how many of how many, and deploying now once enough", () => {
    expect(replies.approvalRecorded("octocat", { environment: "production", sha, approvals: 1, required: 2 })).toBe(
      "@octocat approved the deploy of `aaaaaaa` to `production`: 1 of 2 approvals; waiting for 1 more.",
    );
    expect(replies.approvalRecorded("octocat", { environment: "production", sha, approvals: 2, required: 2 })).toBe(
      "@octocat approved the deploy of `aaaaaaa` to `production`: 2 of 2 approvals; deploying now.",
    );
    expect(replies.approvalRecorded("octocat", { environment: "production", sha, approvals: 1, required: 1 })).toBe(
      "@octocat approved the deploy of `aaaaaaa` to `production`: 1 of 1 approval; deploying now.",
    );
  });

  it("refuses an approval with the reason given", () => {
    expect(replies.approvalRefused("octocat", { environment: "production", reason: "you opened this pull request" })).toBe(
      "Sorry @octocat, your approval of `production` is not counted; nothing was done. Why: you opened this pull request",
    );
  });

  it("records a rejection with its reason", () => {
    expect(replies.rejectionRecorded("octocat", { environment: "production", sha, reason: "breaks login" })).toBe(
      "@octocat rejected the deploy of `aaaaaaa` to `production`: it will not be applied. Reason: breaks login",
    );
  });

  it("says when nothing waits for approval, and when the environment has no approval policy", () => {
    expect(replies.nothingAwaitingApproval("octocat", { environment: "staging", command: "approve" })).toBe(
      "@octocat nothing is waiting for approval in `staging`, so `/approve` did nothing.",
    );
    expect(replies.nothingAwaitingApproval("octocat", { environment: "staging", command: "reject", noPolicy: true })).toBe(
      "@octocat `staging` has no approval policy (`approval` in its configuration), so nothing there waits for approval and `/reject` did nothing.",
    );
  });

  it("records a promotion: the soak it skips, and what comes next", () => {
    expect(replies.promotionRecorded("octocat", { environment: "production", upstream: "staging", sha, reason: "incident 42" })).toBe(
      "@octocat promoted `aaaaaaa` to `production`, skipping the rest of its soak in `staging`; deploying now. Reason: incident 42",
    );
    expect(
      replies.promotionRecorded("octocat", {
        environment: "production",
        upstream: "staging",
        sha,
        reason: "incident 42",
        waitsForApproval: true,
      }),
    ).toBe(
      "@octocat promoted `aaaaaaa` to `production`, skipping the rest of its soak in `staging`; it now waits for approval. Reason: incident 42",
    );
  });

  it("says why there is nothing to promote", () => {
    expect(replies.nothingToPromote("octocat", { environment: "production", why: { kind: "nothing-soaking", upstream: "staging" } })).toBe(
      "@octocat no commit of `staging` is soaking on its way to `production`, so there is nothing to promote. Nothing was done.",
    );
    expect(
      replies.nothingToPromote("octocat", {
        environment: "production",
        why: { kind: "upstream-failed", upstream: "staging", sha: upstreamSha },
      }),
    ).toBe(
      "@octocat `staging` failed with `bbbbbbb`, which stops the line to `production` until a fix is merged or someone comments `/sync` for `staging`; there is nothing to promote. Nothing was done.",
    );
    expect(replies.nothingToPromote("octocat", { environment: "staging", why: { kind: "not-gated" } })).toBe(
      "@octocat `staging` has no promotion gate (`promotion.after` in its configuration): it takes each merge as it comes, so there is nothing to promote. Nothing was done.",
    );
  });

  it("records a freeze override (who, why), names environments that were not frozen, and refuses one without admin", () => {
    expect(replies.freezeOverridden("octocat", { frozen: ["production"], reason: "incident 42", lines })).toBe(
      `@octocat overrode the freeze of \`production\` with \`/sync --override-freeze\`. Reason: incident 42\n\n${lines[0]}`,
    );
    expect(replies.freezeOverridden("octocat", { frozen: ["production"], notFrozen: ["staging"], reason: "incident 42", lines })).toBe(
      `@octocat overrode the freeze of \`production\` with \`/sync --override-freeze\`; \`staging\` is not frozen and deploys as a normal \`/sync\`. Reason: incident 42\n\n${lines[0]}`,
    );
    expect(replies.overrideRefused("octocat", "maintain")).toBe(
      "Sorry @octocat, `/sync --override-freeze` needs **admin** permission on this repository and you have **maintain**. Nothing was done.",
    );
    expect(replies.notFrozen("octocat", { environments: ["staging", "production"], lines })).toBe(
      `@octocat \`staging\`, \`production\` are not frozen, so \`--override-freeze\` is not needed: they deploy as a normal \`/sync\`.\n\n${lines[0]}`,
    );
    expect(replies.notFrozen("octocat", { environments: ["staging"], lines })).toContain(
      "`staging` is not frozen, so `--override-freeze` is not needed: it deploys as a normal `/sync`.",
    );
  });

  it("shows the commenter's reason and the configuration's names as text: only the commenter is mentioned", () => {
    const environment = "prod`@octo-org/admins`";
    const texts = [
      replies.approvalRecorded("octocat", { environment, sha, approvals: 1, required: 2 }),
      replies.approvalRefused("octocat", { environment, reason: nasty }),
      replies.rejectionRecorded("octocat", { environment, sha, reason: nasty }),
      replies.nothingAwaitingApproval("octocat", { environment, command: "approve" }),
      replies.nothingAwaitingApproval("octocat", { environment, command: "reject", noPolicy: true }),
      replies.promotionRecorded("octocat", { environment, upstream: environment, sha, reason: nasty }),
      replies.nothingToPromote("octocat", { environment, why: { kind: "nothing-soaking", upstream: environment } }),
      replies.nothingToPromote("octocat", { environment, why: { kind: "upstream-failed", upstream: environment, sha } }),
      replies.nothingToPromote("octocat", { environment, why: { kind: "not-gated" } }),
      replies.freezeOverridden("octocat", { frozen: [environment], notFrozen: [environment], reason: nasty, lines }),
      replies.overrideRefused("octocat", "write"),
      replies.notFrozen("octocat", { environments: [environment], lines }),
    ];
    for (const text of texts) {
      expect(text.startsWith("@octocat ") || text.startsWith("Sorry @octocat,"), text).toBe(true);
      expect(
        liveParts(text, ["https://github.example/c/1"]).filter((part) => part !== "mention @octocat"),
        text,
      ).toEqual([]);
    }
    // The reason reads as written, with nothing in it live.
    expect(replies.rejectionRecorded("octocat", { environment: "production", sha, reason: nasty })).toContain(
      "Reason: see @\u200bsomeone &lt;b&gt;bold&lt;/b&gt; \\`rm -rf /\\` https:\u200b//evil.example/x \\[x\\]\\(https:\u200b//evil.example\\) \\#\u200b12",
    );
  });
});
