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
    expect(parseCommand("/sync production", envs)).toEqual({ kind: "sync", environments: ["production"] });
    expect(parseCommand("/rollback", envs)).toEqual({ kind: "rollback", environments: envs });
    expect(parseCommand("/sync staging staging", envs)).toEqual({ kind: "sync", environments: ["staging"] });
    expect(parseCommand("/sluice sync staging", envs)).toEqual({ kind: "sync", environments: ["staging"] });
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
