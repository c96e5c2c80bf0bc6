import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { envSchema as agentSchema } from "../../../src/agent/settings.ts";
import { envSchema as appSchema } from "../../../src/app/settings.ts";

/** Variables `sluice app` reads outside its settings schema: the first start's setup page. */
const SETUP_VARIABLES = ["GH_ORG", "SLUICE_SETUP_HOST"];

/** The variables .env.example sets, commented out or not. */
function exampleVariables(): string[] {
  const text = readFileSync(new URL("../../../.env.example", import.meta.url), "utf8");
  return [...text.matchAll(/^#?[ \t]*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] ?? "");
}

describe(".env.example", () => {
  it("lists every setting of the app and of the agent, and nothing else", () => {
    const example = new Set(exampleVariables());
    const settings = new Set([...Object.keys(appSchema.shape), ...Object.keys(agentSchema.shape)]);
    const missing = [...settings].filter((name) => !example.has(name)).sort();
    const unknown = [...example].filter((name) => !settings.has(name) && !SETUP_VARIABLES.includes(name)).sort();
    expect({ missing, unknown }).toEqual({ missing: [], unknown: [] });
  });

  it("sets each variable once", () => {
    const names = exampleVariables();
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });
});
