import { describe, expect, it } from "vitest";
import { z } from "zod";
import { approvalSchema } from "../../../src/core/approval.ts";
import { decideGate, hasDeployGates, type GatedDeploy } from "../../../src/core/deploy-gate.ts";
import { freezeWindowSchema, type FreezeWindow } from "../../../src/core/freeze.ts";

const HOUR = 3_600_000;
const CHRISTMAS = { from: "2026-12-24T18:00", until: "2026-12-28T09:00", timezone: "Europe/Berlin", reason: "Holidays `on call`" };
/** Inside the Christmas freeze: 2026-12-25T12:00Z. */
const IN_FREEZE = Date.parse("2026-12-25T12:00:00Z");
/** The freeze's end: Monday 2026-12-28 09:00 in Berlin. */
const FREEZE_END = Date.parse("2026-12-28T08:00:00Z");

function approval(input: z.input<typeof approvalSchema>) {
  return approvalSchema.parse(input);
}
function freeze(...inputs: z.input<typeof freezeWindowSchema>[]): FreezeWindow[] {
  return inputs.map((input) => freezeWindowSchema.parse(input));
}
function deploy(fields: Partial<GatedDeploy> = {}): GatedDeploy {
  return { reason: "merge", since: IN_FREEZE - HOUR, approvals: [], ...fields };
}

describe("decideGate", () => {
  it("goes at once for an environment without gates", () => {
    const env = { approval: undefined, freeze: [] };
    expect(hasDeployGates(env)).toBe(false);
    expect(decideGate(env, deploy(), IN_FREEZE)).toEqual({ kind: "go" });
  });

  it("counts each login once, whatever its case, and goes once enough people approved", () => {
    const env = { approval: approval({ required: 2 }), freeze: [] };
    expect(hasDeployGates(env)).toBe(true);
    const twice = deploy({ approvals: [{ login: "Alice" }, { login: "alice" }] });
    expect(decideGate(env, twice, IN_FREEZE)).toEqual({ kind: "wait", state: "approval", facts: { approvals: 1, required: 2 } });
    const two = deploy({ approvals: [{ login: "Alice" }, { login: "bob" }] });
    expect(decideGate(env, two, IN_FREEZE)).toEqual({ kind: "go" });
  });

  it("ends the wait at the approval timeout, not a millisecond before, and wakes then", () => {
    const env = { approval: approval({ required: 1, timeout: "2h" }), freeze: [] };
    const waiting = deploy({ since: 0 });
    expect(decideGate(env, waiting, 2 * HOUR - 1)).toEqual({
      kind: "wait",
      state: "approval",
      facts: { approvals: 0, required: 1 },
      wakeAt: 2 * HOUR,
    });
    expect(decideGate(env, waiting, 2 * HOUR)).toEqual({ kind: "end", state: "timedOut", facts: { approvals: 0, required: 1 } });
    // Approved in time: the timeout no longer matters.
    expect(decideGate(env, deploy({ since: 0, approvals: [{ login: "bob" }] }), 3 * HOUR)).toEqual({ kind: "go" });
  });

  it("holds a deploy in a freeze until the freeze ends, and says until when and why", () => {
    const env = { approval: undefined, freeze: freeze(CHRISTMAS) };
    expect(hasDeployGates(env)).toBe(true);
    expect(decideGate(env, deploy(), IN_FREEZE)).toEqual({
      kind: "wait",
      state: "frozen",
      facts: { until: "Monday 09:00 Europe/Berlin", reason: "Holidays \\`on call\\`" },
      wakeAt: FREEZE_END,
    });
    expect(decideGate(env, deploy(), FREEZE_END - 1)).toMatchObject({ kind: "wait", state: "frozen" });
    expect(decideGate(env, deploy(), FREEZE_END)).toEqual({ kind: "go" });
  });

  it("asks for approval before looking at the freeze", () => {
    const env = { approval: approval({ required: 1 }), freeze: freeze(CHRISTMAS) };
    expect(decideGate(env, deploy(), IN_FREEZE)).toMatchObject({ kind: "wait", state: "approval" });
    expect(decideGate(env, deploy({ approvals: [{ login: "bob" }] }), IN_FREEZE)).toMatchObject({ kind: "wait", state: "frozen" });
  });

  it("an override passes the freeze but not the approval", () => {
    const env = { approval: approval({ required: 1 }), freeze: freeze(CHRISTMAS) };
    const override = { by: "admin", reason: "security fix" };
    expect(decideGate(env, deploy({ override }), IN_FREEZE)).toMatchObject({ kind: "wait", state: "approval" });
    expect(decideGate(env, deploy({ override, approvals: [{ login: "bob" }] }), IN_FREEZE)).toEqual({ kind: "go" });
  });

  it("always lets a rollback go: unapproved, timed out or frozen", () => {
    const env = { approval: approval({ required: 2, timeout: "1h" }), freeze: freeze(CHRISTMAS) };
    expect(decideGate(env, deploy({ reason: "rollback", since: 0 }), IN_FREEZE)).toEqual({ kind: "go" });
    expect(decideGate(env, deploy({ reason: "sync", since: 0 }), IN_FREEZE)).toMatchObject({ kind: "end", state: "timedOut" });
  });
});
