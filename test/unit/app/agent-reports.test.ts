import { describe, expect, it } from "vitest";
import { agentReportKind } from "../../../src/app/agents/agent-reports.ts";

// Agents send every kind of message on one queue; the envelope's kind picks the service that
// verifies and consumes it, and anything else goes to the deploy reports, which drop what does not verify.

describe("agentReportKind", () => {
  it.each([
    ["live", "live"],
    ["drift", "drift"],
    ["status", "status"],
    ["report", "deploy"],
    ["preview", "deploy"],
  ] as const)("sends an envelope of kind %s to the %s consumer", (kind, expected) => {
    expect(agentReportKind({ kind, payload: "x", signature: "y" })).toBe(expected);
  });

  it.each([[undefined], [null], ["drift"], [["drift"]], [{ kind: 3 }], [{}]])(
    "sends %j, which names no kind, to the deploy reports",
    (envelope) => {
      expect(agentReportKind(envelope)).toBe("deploy");
    },
  );
});
