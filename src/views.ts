import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { PageViews } from "./core/html.ts";

/** The project's views/ directory, next to src/ and dist/. */
export const VIEWS_DIR = fileURLToPath(new URL("../views/", import.meta.url));

/** Loads the diff page template and its stylesheets (diff2html's and the project's). */
export async function loadPageViews(): Promise<PageViews> {
  const require = createRequire(import.meta.url);
  const diff2htmlCss = require.resolve("diff2html/bundles/css/diff2html.min.css");
  const [template, own, base] = await Promise.all([
    readFile(`${VIEWS_DIR}diff-page.html`, "utf8"),
    readFile(`${VIEWS_DIR}diff-page.css`, "utf8"),
    readFile(diff2htmlCss, "utf8"),
  ]);
  return { template, styles: [base, own] };
}
