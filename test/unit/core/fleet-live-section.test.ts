import { describe, expect, it } from "vitest";
import type { LiveChange, LiveReport } from "../../../src/core/agent-protocol.ts";
import { liveProblems, liveSection, type LiveEnvironment } from "../../../src/core/live-preview.ts";
import { previewCheck, previewComment } from "../../../src/core/preview-comment.ts";
import type { DiffReport } from "../../../src/core/diff-report.ts";

// A fleet's live section: each cluster's agent answers for itself, and the comment shows each
// distinct answer once with the clusters that gave it, so a hundred clusters fit a comment.

const at = "2026-12-04T12:00:00.000Z";
const id = { group: "apps", version: "v1", kind: "Deployment", namespace: "shop", name: "web" };

function answer(cluster: string, changes: LiveChange[]): LiveReport {
  return {
    version: 1,
    requestId: `live-1-2-3-production@${cluster}`,
    repository: { owner: "acme", name: "shop", id: 1 },
    installationId: 9,
    environment: "production",
    cluster,
    pullRequest: 2,
    headSha: "b".repeat(40),
    seq: 3,
    changes,
    unchanged: 19,
    prune: [],
    at,
  };
}

const scaled: LiveChange = { ...id, action: "configure", diff: "@@ -1 +1 @@\n-  replicas: 5\n+  replicas: 3\n" };
const refused: LiveChange = { ...id, action: "refused", refusedBy: "api-server", message: "denied: replicas above 4 need an exception" };

/** 100 clusters, 3 distinct answers: 95 with nothing to change, 3 scaled by hand, 2 whose admission refuses. */
function hundredClusters(): LiveEnvironment[] {
  return Array.from({ length: 100 }, (_, i): LiveEnvironment => {
    const cluster = `${i < 50 ? "eu" : "us"}-${String(i).padStart(2, "0")}`;
    const changes = i % 33 === 1 ? [scaled] : i === 50 || i === 99 ? [refused] : [];
    return { environment: "production", cluster, status: { state: "answered", report: answer(cluster, changes) } };
  });
}

const report: DiffReport = {
  environments: [{ name: "production", summary: { added: 0, modified: 1, removed: 0, unchanged: 19 }, changes: [] }],
  errors: [],
};

describe("a fleet's live section", () => {
  it("shows each distinct answer of 100 clusters once, with the clusters that gave it, in a comment under 10 KB", () => {
    const live = hundredClusters();
    const comment = previewComment({ report, baseSha: "a".repeat(40), headSha: "b".repeat(40), live });
    expect(Buffer.byteLength(comment)).toBeLessThan(10_000);
    const section = liveSection(live);
    expect(section).toContain(
      "**`production`** on 3 of 100 clusters, `eu-01`, `eu-34`, `us-67`: 1 object would change live, 0 would be pruned, 0 would be refused (19 unchanged).",
    );
    expect(section).toContain(
      "**`production`** on 2 of 100 clusters, `us-50`, `us-99`: 0 objects would change live, 0 would be pruned, 1 would be refused",
    );
    expect(section).toMatch(
      /\*\*`production`\*\* on 95 of 100 clusters, `eu-00`, `eu-02`, .*`us-98`: merging changes nothing in the live cluster \(19 objects checked\)\./,
    );
    // The three clusters' one diff is shown once.
    expect(section.match(/live configure <code>Deployment shop\/web<\/code> in `production` on `eu-01` and 2 more/g)).toHaveLength(1);
    expect(section.match(/replicas: 5/g)).toHaveLength(1);
  });

  it("says all of them when every cluster answers alike, and keeps an environment on one cluster as it was", () => {
    const same = ["eu-1", "eu-2"].map((cluster): LiveEnvironment => ({
      environment: "production",
      cluster,
      status: { state: "answered", report: answer(cluster, []) },
    }));
    const staging: LiveEnvironment = { environment: "staging", status: { state: "offline" } };
    const section = liveSection([staging, ...same]);
    expect(section).toContain("**`staging`**: ⚠️ no agent is online for it");
    expect(section).toContain(
      "**`production`** on all 2 clusters, `eu-1`, `eu-2`: merging changes nothing in the live cluster (19 objects checked).",
    );
  });

  it("tells apart clusters that answered alike but drifted differently, and those still waiting", () => {
    const drift = { sha: "c".repeat(40), objects: ["Deployment shop/web"], healing: false };
    const section = liveSection([
      { environment: "production", cluster: "eu-1", status: { state: "answered", report: answer("eu-1", []) } },
      { environment: "production", cluster: "eu-2", status: { state: "answered", report: answer("eu-2", []) }, drift },
      { environment: "production", cluster: "eu-3", status: { state: "pending" } },
    ]);
    expect(section).toContain("**`production`** on 1 of 3 clusters, `eu-1`: merging changes nothing");
    expect(section).toMatch(
      /\*\*`production`\*\* on 1 of 3 clusters, `eu-2`: merging changes nothing.*\n- ⚠️ drifted from the last deploy \(`ccccccc`\)/,
    );
    expect(section).toContain("**`production`** on 1 of 3 clusters, `eu-3`: ⏳ waiting");
  });

  it("names as many clusters as fit, then counts the rest", () => {
    const many = Array.from({ length: 2_000 }, (_, i): LiveEnvironment => ({
      environment: "production",
      cluster: `edge-${String(i).padStart(4, "0")}`,
      status: { state: "answered", report: answer(`edge-${i}`, []) },
    }));
    const section = liveSection(many);
    expect(Buffer.byteLength(section)).toBeLessThan(3_000);
    expect(section).toMatch(/`edge-0000`, .* and \d+ more \(the diff page names each\): merging changes nothing/);
  });

  it("keeps one cluster's long answer from pushing the other clusters' answers out", () => {
    const long: LiveChange = { ...refused, message: `denied: ${"x".repeat(60_000)}` };
    const section = liveSection([
      { environment: "production", cluster: "a-1", status: { state: "answered", report: answer("a-1", [long]) } },
      { environment: "production", cluster: "b-1", status: { state: "answered", report: answer("b-1", []) } },
    ]);
    expect(Buffer.byteLength(section)).toBeLessThan(10_000);
    expect(section).toContain("- … cut here; the full diff page has the rest.");
    expect(section).toContain("**`production`** on 1 of 2 clusters, `b-1`: merging changes nothing");
  });

  it("makes one annotation of a refusal that several clusters give alike, naming them", () => {
    const problems = liveProblems(hundredClusters(), () => ({ file: "envs/production/web.yaml", line: 3 }));
    expect(problems).toEqual([
      {
        file: "envs/production/web.yaml",
        line: 3,
        environment: "production",
        side: "head",
        message:
          "Deployment shop/web would be refused by the API server in the live cluster (clusters us-50, us-99): denied: replicas above 4 need an exception",
      },
    ]);
  });

  it("waits for every cluster's answer before the check completes, and names the clusters it waits for", () => {
    const live: LiveEnvironment[] = [
      { environment: "production", cluster: "eu-1", status: { state: "answered", report: answer("eu-1", []) } },
      { environment: "production", cluster: "eu-2", status: { state: "pending" } },
    ];
    const check = previewCheck({ report, baseSha: "a".repeat(40), headSha: "b".repeat(40), fullDiffUrl: "https://sluice/x", live });
    expect(check.status).toBe("in_progress");
    expect(check.output.summary).toContain("live cluster of `production@eu-2`");
  });
});
