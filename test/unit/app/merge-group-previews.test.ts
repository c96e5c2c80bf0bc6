import { describe, expect, it } from "vitest";
import { CHECK_RUN_TEXT_LIMIT, utf8Length } from "../../../src/core/markdown.ts";
import {
  mergeGroupExternalId,
  mergeGroupLink,
  mergeGroupPreviewNumber,
  mergeGroupPullRequest,
  mergeGroupText,
} from "../../../src/app/preview/merge-group-previews.ts";
import { previewPullRequest } from "../../../src/app/preview/preview-service.ts";

describe("a merge group's preview number", () => {
  it("never is a pull request's, and gives back the queued pull request", () => {
    // GitHub's largest pull request number (a 32-bit signed integer) and the smallest.
    for (const pullRequest of [1, 104, 2 ** 31 - 1]) {
      const number = mergeGroupPreviewNumber(pullRequest);
      expect(number).toBeGreaterThan(2 ** 31 - 1);
      expect(Number.isSafeInteger(number)).toBe(true);
      expect(mergeGroupPullRequest(number)).toBe(pullRequest);
    }
    expect(mergeGroupPullRequest(104)).toBeUndefined();
    expect(mergeGroupPullRequest(2 ** 31 - 1)).toBeUndefined();
  });

  it("has an external id the Re-run button does not take for a pull request's", () => {
    expect(previewPullRequest(mergeGroupExternalId(104))).toBeUndefined();
  });
});

describe("mergeGroupText", () => {
  const link = mergeGroupLink({ owner: "o", name: "r", id: 1 }, 104, "https://github.example");

  it("links the queued pull request before the preview", () => {
    expect(mergeGroupText(link, "### Sluice preview")).toBe(
      "Merge queue: this commit tests [pull request #104](https://github.example/o/r/pull/104) merged onto its base.\n\n### Sluice preview",
    );
  });

  it("stays within GitHub's limit for a check run's text", () => {
    expect(utf8Length(mergeGroupText(link, "é".repeat(CHECK_RUN_TEXT_LIMIT)))).toBeLessThanOrEqual(CHECK_RUN_TEXT_LIMIT);
  });
});
