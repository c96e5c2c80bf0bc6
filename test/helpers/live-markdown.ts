import { marked, type Tokens } from "marked";

/** Elements that GitHub-flavoured markdown itself makes, and those Sluice's own templates write. */
const HARMLESS_TAGS = new Set([
  "p",
  "br",
  "hr",
  "strong",
  "em",
  "del",
  "code",
  "pre",
  "blockquote",
  "ul",
  "ol",
  "li",
  "table",
  "thead",
  "tbody",
  "tr",
  "th",
  "td",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "details",
  "summary",
  "sub",
]);

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(html: string): string {
  return html.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith("#x") || name.startsWith("#X")) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number(name.slice(1)));
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/**
 * What of a comment, check-run summary or pull-request body would be live once GitHub renders it:
 * links and images (markdown, HTML or autolinked), other HTML elements, and the @mentions,
 * `#123` and `GH-123` references that GitHub's filters turn into notifications and backlinks
 * outside code. Rendered with marked (GitHub-flavoured), which splits table rows and pairs code
 * spans as GitHub's cmark-gfm does. `ownLinks` are the links the template itself writes.
 */
export function liveParts(markdown: string, ownLinks: readonly string[] = []): string[] {
  const html = marked.parse(markdown, { async: false, gfm: true });
  const found: string[] = [];
  for (const match of html.matchAll(/<a\s[^>]*href="([^"]*)"/g)) {
    const href = decode(match[1] ?? "");
    if (!ownLinks.includes(href)) found.push(`link to ${href}`);
  }
  for (const match of html.matchAll(/<img\s[^>]*src="([^"]*)"/g)) found.push(`image from ${decode(match[1] ?? "")}`);
  for (const match of html.matchAll(/<([a-z][a-z0-9]*)\b/gi)) {
    const tag = (match[1] ?? "").toLowerCase();
    if (!HARMLESS_TAGS.has(tag) && tag !== "a" && tag !== "img") found.push(`HTML <${tag}>`);
  }
  // GitHub's mention and reference filters skip code, pre and links; everything else is text to them.
  const text = decode(
    html
      .replace(/<code>[\s\S]*?<\/code>/g, " ")
      .replace(/<pre>[\s\S]*?<\/pre>/g, " ")
      .replace(/<a\s[\s\S]*?<\/a>/g, " ")
      .replace(/<[^>]*>/g, " "),
  );
  for (const match of text.matchAll(/(?:^|[^\w/])(@[a-z0-9][\w-]*(?:\/[\w-]+)?)/gi)) found.push(`mention ${match[1] ?? ""}`);
  for (const match of text.matchAll(/(?:^|[^\w/])((?:[\w.-]+\/[\w.-]+)?#\d+)/g)) found.push(`reference ${match[1] ?? ""}`);
  for (const match of text.matchAll(/\b(GH-\d+)/gi)) found.push(`reference ${match[1] ?? ""}`);
  return found;
}

/** The cells of every row of every table in `markdown`, as a GitHub-flavoured parser splits them. */
export function tableRows(markdown: string): string[][] {
  return marked
    .lexer(markdown, { gfm: true })
    .filter((token): token is Tokens.Table => token.type === "table")
    .flatMap((table) => [table.header, ...table.rows].map((row) => row.map((cell) => cell.text)));
}
