import { describe, expect, it } from "vitest";
import { newAppUrl } from "../../../src/app/setup.ts";

describe("newAppUrl", () => {
  it("registers the app under the user who clicks, or under the named organization", () => {
    expect(newAppUrl({ githubWebUrl: "https://github.com" }, "s1")).toBe("https://github.com/settings/apps/new?state=s1");
    expect(newAppUrl({ githubWebUrl: "https://ghe.example", organization: "acme tools" }, "s2")).toBe(
      "https://ghe.example/organizations/acme%20tools/settings/apps/new?state=s2",
    );
  });
});
