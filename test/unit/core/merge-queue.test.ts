import { describe, expect, it } from "vitest";
import { branchName, queuedPullRequest } from "../../../src/core/merge-queue.ts";

const sha = "929f8209d40f77f4abc622a499c93a83babdbe64";

describe("queuedPullRequest", () => {
  it("reads the pull request from the branch GitHub's merge queue names, with or without refs/heads/", () => {
    expect(queuedPullRequest(`refs/heads/gh-readonly-queue/main/pr-104-${sha}`)).toBe(104);
    expect(queuedPullRequest(`gh-readonly-queue/release/2.x/pr-7-${sha}`)).toBe(7);
  });

  it("finds none in a branch that is not the queue's", () => {
    for (const ref of [
      "refs/heads/main",
      `refs/heads/feature/pr-104-${sha}`,
      `refs/heads/gh-readonly-queue/main/pr-0-${sha}`,
      `refs/heads/gh-readonly-queue/main/pr-104-${sha.slice(0, 7)}`,
      `refs/heads/gh-readonly-queue/main/pr-104-${sha}-extra`,
    ])
      expect(queuedPullRequest(ref), ref).toBeUndefined();
  });
});

describe("branchName", () => {
  it("drops refs/heads/ and keeps a name without it", () => {
    expect(branchName("refs/heads/release/2.x")).toBe("release/2.x");
    expect(branchName("main")).toBe("main");
  });
});
