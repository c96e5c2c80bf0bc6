import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { marked } from "marked";
import { chromium, type Browser } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { onPath } from "../../src/cli/local-redis.ts";
import { PREVIEW_MARKER } from "../../src/core/preview-comment.ts";
import { startHarness, type AppHarness } from "../helpers/app-harness.ts";
import { checkout, removeCheckouts } from "../helpers/checkouts.ts";
import { pullRequestPayload } from "../helpers/payloads.ts";

// The full diff page in a real browser (Debian's chromium driven by playwright-core), served by
// the app from a real preview.

const OUTPUT = fileURLToPath(new URL("../../.cache/browser/", import.meta.url));
const target = { owner: "browser-test", repo: "shop", repoId: 7300, installation: 73 };
const SECRET = "browser-secret-value-1";
let h: AppHarness;
let browser: Browser;
let link = "";

const config = `version: 1
environments:
  - name: production
    path: envs/production
    namespace: shop
  - name: staging
    path: envs/staging
    namespace: shop-staging
`;
function files(version: string, password: string): Record<string, string> {
  const out: Record<string, string> = { ".github/sluice.yml": config };
  for (const env of ["production", "staging"]) {
    const lines = Array.from({ length: 30 }, (_, i) => `  line${String(i).padStart(2, "0")}: "${i === 15 ? version : "same"}"`);
    out[`envs/${env}/config.yaml`] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n${lines.join("\n")}\n`;
    out[`envs/${env}/secret.yaml`] = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: ${password}\n`;
  }
  out["envs/production/worker.yaml"] = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker-${version}\ndata:\n  a: "1"\n`;
  return out;
}

beforeAll(async () => {
  const executablePath =
    process.env.SLUICE_CHROMIUM ?? onPath("chromium", process.env.PATH) ?? onPath("chromium-browser", process.env.PATH);
  if (!executablePath) throw new Error("the browser test needs chromium (apt-get install chromium) or SLUICE_CHROMIUM");
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
  mkdirSync(OUTPUT, { recursive: true });
  h = await startHarness({ redisUrl: inject("redisUrl"), kustomize: inject("kustomize"), helm: inject("helm"), database: 14 });
  h.github.addRepo(target.owner, target.repo, target.repoId);
  const base = "b".repeat(40);
  const head = "c".repeat(40);
  await h.github.addCommit(target.owner, target.repo, base, await checkout(undefined, files("one", "old-" + SECRET)));
  await h.github.addCommit(target.owner, target.repo, head, await checkout(undefined, files("two", SECRET)));
  await h.deliver("pull_request", pullRequestPayload(target, "opened", 9, base, head));
  const deadline = Date.now() + 60_000;
  while (!link) {
    if (Date.now() > deadline) throw new Error("no preview comment with a full diff link within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const comment = h.github.comments.find((c) => c.body.includes(PREVIEW_MARKER))?.body ?? "";
    link = /\[Open the full diff\]\(([^)]+)\)/.exec(comment)?.[1] ?? "";
  }
});

afterAll(async () => {
  // Either may be missing when beforeAll failed half way.
  await (browser as Browser | undefined)?.close();
  await (h as AppHarness | undefined)?.stop();
  await removeCheckouts();
});

afterEach(() => {
  expect(h.github.violations).toEqual([]);
});

describe("the full diff page in chromium", () => {
  it("renders both environments side by side, navigates by file list and tabs, links back, and keeps Secrets masked", async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const response = await page.goto(link);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toBe(`${target.owner}/${target.repo}#9`);
    await page.screenshot({ path: `${OUTPUT}diff-page.png` });
    // Side by side: two columns per changed object.
    expect(await page.locator(".d2h-file-side-diff").count()).toBeGreaterThanOrEqual(2 * 5);
    // Environment tabs with their counts, and each goes to its environment.
    const tabs = page.locator("nav.sluice-envs a");
    expect(await tabs.allInnerTexts()).toEqual(["production +1 ~2 −1", "staging +0 ~2 −0"]);
    await tabs.nth(1).click();
    expect(new URL(page.url()).hash).toBe("#env-staging");
    expect(await page.locator("#env-staging h2").isVisible()).toBe(true);
    // The file list jumps to a file's diff.
    const entry = page.locator("#env-production .d2h-file-list a").first();
    const anchor = (await entry.getAttribute("href")) ?? "";
    await entry.click();
    expect(new URL(page.url()).hash).toBe(anchor);
    expect(await page.locator(anchor).isVisible()).toBe(true);
    // Unchanged context is collapsed to the lines around a change: 30 lines, a few shown.
    const webDiff = page.locator("#env-production .d2h-file-wrapper", { hasText: "ConfigMap/shop/web" });
    expect(await webDiff.locator("text=line00").count()).toBe(0);
    expect(await webDiff.locator("text=line15").count()).toBeGreaterThan(0);
    // Back to the pull request.
    expect(await page.locator("a.sluice-back").getAttribute("href")).toBe(`https://github.example/${target.owner}/${target.repo}/pull/9`);
    // Secret values stay masked, in the text and anywhere in the document.
    const html = await page.content();
    for (const value of [SECRET, `old-${SECRET}`]) {
      expect(html).not.toContain(value);
      expect(html).not.toContain(Buffer.from(value).toString("base64"));
    }
    await page.close();
  });

  it("follows the reader's dark mode", async () => {
    const page = await browser.newPage({ colorScheme: "dark", viewport: { width: 1400, height: 900 } });
    await page.goto(link);
    // Evaluated in the page, where the DOM is.
    const colours = await page.evaluate("[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]");
    expect(colours).toEqual(["rgb(13, 17, 23)", "rgb(230, 237, 243)"]);
    await page.screenshot({ path: `${OUTPUT}diff-page-dark.png` });
    await page.close();
  });

  it("shows the summary without JavaScript", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(link);
    expect(await page.locator("#env-production h2").innerText()).toBe("production 1 added, 2 modified, 1 removed, 0 unchanged");
    expect(await page.locator("#env-staging h2").innerText()).toBe("staging 0 added, 2 modified, 0 removed, 0 unchanged");
    await context.close();
  });

  it("answers a forged link with 403 and an expired one with 410", async () => {
    const page = await browser.newPage();
    const forged = await page.goto(link.replace(/sig=[^&]+/, "sig=AAAA"));
    expect([forged?.status(), (await page.innerText("body")).trim()]).toEqual([403, "Forbidden"]);
    h.clock.now += 31 * 24 * 3600 * 1000;
    try {
      const expired = await page.goto(link);
      expect([expired?.status(), (await page.innerText("body")).trim()]).toEqual([410, "Gone"]);
    } finally {
      h.clock.now -= 31 * 24 * 3600 * 1000;
    }
    await page.close();
  });

  it("renders the preview comment as GitHub shows Markdown, for README's screenshot", async () => {
    const comment = h.github.comments.find((c) => c.body.includes(PREVIEW_MARKER))?.body ?? "";
    const page = await browser.newPage({ colorScheme: "dark", viewport: { width: 900, height: 900 } });
    // GitHub's own renderer is not here; marked with GitHub's colours is close enough to look at.
    await page.setContent(
      `<!doctype html><html><head><meta charset="utf-8"><style>
        body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; background: #0d1117; color: #e6edf3; margin: 0; padding: 16px; }
        .comment { border: 1px solid #30363d; border-radius: 6px; padding: 16px; max-width: 860px; }
        table { border-collapse: collapse; } th, td { border: 1px solid #30363d; padding: 4px 12px; }
        code { background: #6e76811a; padding: 2px 4px; border-radius: 6px; } pre { background: #161b22; padding: 12px; overflow: auto; }
        a { color: #4493f8; } summary { cursor: pointer; }
      </style></head><body><div class="comment">${await marked.parse(comment)}</div></body></html>`,
    );
    expect(await page.locator("table").count()).toBeGreaterThan(0);
    expect(await page.content()).not.toContain(SECRET);
    await page.locator(".comment").screenshot({ path: `${OUTPUT}preview-comment.png` });
    await page.close();
  });
});
