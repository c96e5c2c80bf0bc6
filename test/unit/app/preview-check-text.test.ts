import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GitHubClient } from "../../../src/app/github/client.ts";
import { writePreview, type PublishedPreview } from "../../../src/app/preview/published-previews.ts";
import type { ResourceChange } from "../../../src/core/diff.ts";
import type { DiffReport, EnvironmentDiff } from "../../../src/core/diff-report.ts";
import { utf8Length } from "../../../src/core/markdown.ts";
import { PREVIEW_MARKER, publicationOf } from "../../../src/core/preview-comment.ts";
import { FakeGitHub } from "../../helpers/fake-github.ts";
import { fakeGitHubClient } from "../../helpers/github-client.ts";

// The check run's text carries what the preview comment had no room for (issue 28): it reaches
// GitHub as a field GitHub's OpenAPI allows, and stays there when the annotations take several requests.

const REPOSITORY = { owner: "o", name: "r", id: 1 };
const INSTALLATION = 7;

let github: FakeGitHub;
let gh: GitHubClient;

beforeAll(async () => {
  github = await new FakeGitHub().start();
  github.addRepo(REPOSITORY.owner, REPOSITORY.name, REPOSITORY.id);
  gh = await fakeGitHubClient(github, INSTALLATION);
});
afterAll(async () => {
  await github.stop();
});
afterEach(() => {
  expect(github.violations).toEqual([]);
});

const ACTIONS: readonly ResourceChange["action"][] = ["added", "modified", "removed"];

function environment(name: string, count: number): EnvironmentDiff {
  const changes: ResourceChange[] = Array.from({ length: count }, (_, i) => ({
    id: { group: "apps", version: "v1", kind: "Deployment", namespace: "prod", name: `web-${i}` },
    action: ACTIONS[i % 3] ?? "modified",
    diff: "--- a\n+++ b\n@@ -1 +1 @@\n+  replicas: 3\n",
  }));
  const summary = { added: 0, modified: 0, removed: 0, unchanged: 0 };
  for (const change of changes) summary[change.action] += 1;
  return { name, summary, changes };
}

async function published(report: DiffReport, pullRequest: number): Promise<PublishedPreview> {
  const headSha = String(pullRequest).repeat(40).slice(0, 40);
  const checkRunId = await gh.createCheckRun(REPOSITORY, "sluice/preview", headSha, { status: "in_progress" });
  return {
    repository: REPOSITORY,
    installationId: INSTALLATION,
    pullRequest,
    seq: 1,
    checkRunId,
    report,
    baseSha: "a".repeat(40),
    headSha,
    fullDiffUrl: "https://sluice.example/sluice/diff/abc",
  };
}

describe("the preview check run's text on GitHub", () => {
  it("carries the next part of what the comment could not hold, at 500 environments × 100 changes", async () => {
    const report: DiffReport = { environments: Array.from({ length: 500 }, (_, i) => environment(`env-${i}`, 100)), errors: [] };
    const preview = await published(report, 1);
    await writePreview(gh, preview);
    const { comment, check } = publicationOf(preview);
    const run = github.checkRuns.get(preview.checkRunId);
    expect(check.output.text).toBeDefined();
    expect(run?.output?.text).toBe(check.output.text);
    expect(utf8Length(run?.output?.text ?? "")).toBeLessThanOrEqual(65_535);
    const written = github.comments.find((c) => c.issue === 1 && c.body.includes(PREVIEW_MARKER));
    expect(written?.body).toBe(comment);
    expect(comment).toContain("The `sluice/preview` check run's details name the next ones.");
  });

  it("keeps the text when more than 50 annotations take further requests", async () => {
    const errors = Array.from({ length: 120 }, (_, i) => ({
      file: `deploy/env-${i}/a.yaml`,
      line: 1,
      message: "bad",
      environment: `env-${i}`,
    }));
    const report: DiffReport = { environments: Array.from({ length: 500 }, (_, i) => environment(`env-${i}`, 100)), errors };
    const preview = await published(report, 2);
    await writePreview(gh, preview);
    const run = github.checkRuns.get(preview.checkRunId);
    expect(run?.annotations).toHaveLength(120);
    expect(run?.conclusion).toBe("failure");
    expect(run?.output?.text).toBe(publicationOf(preview).check.output.text);
    expect(run?.output?.text).toContain("The preview comment had no room");
  });
});
