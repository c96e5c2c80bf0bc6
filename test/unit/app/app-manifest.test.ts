import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const text = readFileSync(new URL("../../../app.yml", import.meta.url), "utf8");

/** The comment lines right above `key:` under `default_permissions:`. */
function commentAbove(key: string): string {
  const lines = text.split("\n");
  const at = lines.findIndex(
    (line) => line === `  ${key}: ${String((parse(text) as { default_permissions: Record<string, string> }).default_permissions[key])}`,
  );
  expect(at, `app.yml has no line for the ${key} permission`).toBeGreaterThan(0);
  const comments: string[] = [];
  for (let i = at - 1; i >= 0 && /^\s*#/.test(lines[i] ?? ""); i--) comments.unshift((lines[i] ?? "").replace(/^\s*#\s?/, ""));
  return comments.join(" ");
}

describe("app.yml", () => {
  it("says why each permission is asked for", () => {
    const permissions = Object.keys((parse(text) as { default_permissions: Record<string, string> }).default_permissions);
    expect(permissions.length).toBeGreaterThan(0);
    for (const permission of permissions) expect(commentAbove(permission), `the comment above ${permission}`).not.toBe("");
  });

  it("says contents: write serves only /rollback's revert pull request, and that a revert of workflows needs a permission Sluice does not ask for", () => {
    const manifest = parse(text) as { default_permissions: Record<string, string> };
    expect(manifest.default_permissions.contents).toBe("write");
    expect(manifest.default_permissions).not.toHaveProperty("workflows");
    const comment = commentAbove("contents");
    expect(comment).toContain("Write serves only /rollback's revert pull request");
    expect(comment).toContain("`workflows` permission, which Sluice does not ask for");
  });
});
