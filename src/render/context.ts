import type { AliasBudget, ParseOptions } from "../core/manifest.ts";
import type { NormalizedMemo } from "../core/resource-set.ts";
import type { PathReads } from "./files.ts";
import type { RunOptions } from "./process.ts";
import type { RenderTools } from "./tools.ts";

/** Everything a renderer needs besides the directory: where the checkout is, the tools, and how to run them. */
export interface RendererContext {
  checkoutRoot: string;
  tools: RenderTools;
  run: RunOptions;
  /** Parsed documents by their text, shared by renders that see mostly the same documents. */
  parseCache?: Map<string, unknown>;
  /** Normalized JSON of those parsed documents, shared the same way. */
  normalized?: NormalizedMemo;
  /** How the render looks at paths of its checkout while resolving them: each asked of the system once in one render. */
  paths?: PathReads;
  /** The alias budget of the render under way; every stream it parses takes from the same one. */
  budget?: AliasBudget;
}

/** The parse options every stream of a render shares: its parse cache and its alias budget. */
export function sharedParseOptions(context: RendererContext): Pick<ParseOptions, "cache" | "budget"> {
  return { ...(context.parseCache ? { cache: context.parseCache } : {}), ...(context.budget ? { budget: context.budget } : {}) };
}
