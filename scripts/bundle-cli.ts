// Bundles `sluice diff` into one file, dist/cli/diff-command.js, in place of the compiled module
// graph it replaces: resolving and loading some forty modules is a quarter of a thousand-object
// diff's run time. Run by `npm run build` after tsc.
// Usage: node scripts/bundle-cli.ts [OUTFILE]
import { build, type Plugin } from "esbuild";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Packages bundled in: small, pure, and on every diff's path. The rest load from node_modules, and only when needed. */
const BUNDLED_PACKAGES = new Set(["js-yaml", "diff"]);

/**
 * Modules the diff command imports only for some runs (the HTML page and its views, the config
 * schema): they stay separate files, loaded from dist/ beside the bundle, as the compiled code does.
 */
const LAZY_MODULES = new Set(["../core/html.ts", "../views.ts", "../core/config.ts"]);

const boundaries: Plugin = {
  name: "sluice-boundaries",
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED_PACKAGES.has(args.path) ? undefined : { path: args.path, external: true }));
    builder.onResolve({ filter: /\.ts$/ }, (args) =>
      LAZY_MODULES.has(args.path) ? { path: args.path.replace(/\.ts$/, ".js"), external: true } : undefined,
    );
  },
};

/** Writes the bundled diff command to `outfile`, which must sit one directory below dist/'s root (as dist/cli/ does). */
export async function bundleDiffCommand(outfile: string): Promise<void> {
  await build({
    entryPoints: [resolve(root, "src/cli/diff-command.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node22",
    sourcemap: true,
    plugins: [boundaries],
    logLevel: "warning",
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await bundleDiffCommand(resolve(root, process.argv[2] ?? "dist/cli/diff-command.js"));
}
