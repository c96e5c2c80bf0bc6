import { describe, expect, it } from "vitest";
import type { LiveReport } from "../../../src/core/agent-protocol.ts";
import type { DiffReport } from "../../../src/core/diff-report.ts";
import type { LiveEnvironment, LiveStatus } from "../../../src/core/live-preview.ts";
import { previewCheck, type PreviewPublication } from "../../../src/core/preview-comment.ts";

// sluice/preview gates merges: it stays in progress while a live answer that could fail it is
// awaited, and a conclusion that passed is never turned into a failure.

const report: DiffReport = {
  environments: [{ name: "production", summary: { added: 1, modified: 0, removed: 0, unchanged: 0 }, changes: [] }],
  errors: [],
};

function answer(refused: boolean): LiveStatus {
  const live: LiveReport = {
    version: 1,
    requestId: "live-1-2-3-production",
    repository: { owner: "o", name: "r", id: 1 },
    installationId: 1,
    environment: "production",
    pullRequest: 2,
    headSha: "b".repeat(40),
    seq: 3,
    changes: refused
      ? [
          {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            namespace: "web",
            name: "web",
            action: "refused",
            refusedBy: "api-server",
            message: "images must be pinned",
          },
        ]
      : [],
    unchanged: 1,
    prune: [],
    at: "2026-11-27T12:00:00.000Z",
  };
  return { state: "answered", report: live };
}

function publication(status: LiveStatus | undefined, extra: Partial<PreviewPublication> = {}): PreviewPublication {
  const live: LiveEnvironment[] | undefined = status ? [{ environment: "production", status }] : undefined;
  return { report, baseSha: "a".repeat(40), headSha: "b".repeat(40), fullDiffUrl: "https://sluice/d", ...(live ? { live } : {}), ...extra };
}

describe("the preview check run", () => {
  it("completes at once without live previews, and when nothing was asked", () => {
    expect(previewCheck(publication(undefined))).toMatchObject({ status: "completed", conclusion: "success" });
    expect(previewCheck(publication({ state: "unavailable", reason: "a fork" }))).toMatchObject({
      status: "completed",
      conclusion: "success",
    });
  });

  it("stays in progress while an agent's answer is pending, and names the environment", () => {
    const check = previewCheck(publication({ state: "pending" }));
    expect(check.status).toBe("in_progress");
    expect(check.output.title).toBe("Waiting for the live cluster");
    expect(check.output.summary).toContain("⏳ Waiting for the dry-run against the live cluster of `production`");
  });

  it("fails at once when the rendered diff already fails, pending or not", () => {
    const failing = { ...report, errors: [{ file: "a.yaml", line: 1, message: "bad" }] };
    expect(previewCheck({ ...publication({ state: "pending" }), report: failing })).toMatchObject({
      status: "completed",
      conclusion: "failure",
    });
  });

  it("fails on a refusal, annotated, and passes on a clean answer", () => {
    const refused = previewCheck(publication(answer(true)));
    expect(refused).toMatchObject({ status: "completed", conclusion: "failure" });
    expect(refused.output.annotations[0]?.message).toContain("images must be pinned");
    expect(previewCheck(publication(answer(false)))).toMatchObject({ status: "completed", conclusion: "success" });
  });

  it("gives a wait that ended the configured conclusion, failure by default", () => {
    const late: LiveStatus = { state: "timed-out", seconds: 20 };
    expect(previewCheck(publication(late))).toMatchObject({
      status: "completed",
      conclusion: "failure",
      output: { title: "No live answer in time" },
    });
    expect(previewCheck(publication(late, { liveTimeout: "neutral" }))).toMatchObject({ status: "completed", conclusion: "neutral" });
  });

  it("keeps a conclusion that passed when a late answer fails the preview, and says so", () => {
    const check = previewCheck(publication(answer(true), { liveTimeout: "neutral", concluded: "neutral" }));
    expect(check).toMatchObject({
      status: "completed",
      conclusion: "neutral",
      output: { title: "Completed as neutral before a live answer" },
    });
    expect(check.output.summary).toContain("A live answer came after this check completed as neutral");
    expect(check.output.annotations[0]?.message).toContain("images must be pinned");
  });

  it("lets a late clean answer turn a failed wait into a pass", () => {
    expect(previewCheck(publication(answer(false), { concluded: "failure" }))).toMatchObject({
      status: "completed",
      conclusion: "success",
    });
  });
});
