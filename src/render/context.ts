import type { RunOptions } from "./process.ts";
import type { RenderTools } from "./tools.ts";

/** Everything a renderer needs besides the directory: where the checkout is, the tools, and how to run them. */
export interface RendererContext {
  checkoutRoot: string;
  tools: RenderTools;
  run: RunOptions;
  /** Parsed documents by their text, shared by renders that see mostly the same documents. */
  parseCache?: Map<string, unknown>;
}
