import { describe, expect, it } from "vitest";
import { helpText, parseCommand } from "../../../src/core/commands.ts";

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
