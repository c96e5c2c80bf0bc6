import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { EXIT, type CommandIo } from "./io.ts";
import { errorMessage } from "../core/errors.ts";

// An ES module import of node:util builds a facade that loads every lazy part of util (worker
// threads among them), a few milliseconds of every start; the built-in module itself does not.
const { parseArgs } = process.getBuiltinModule("node:util");

// Only what every command needs is imported here; each command loads its own modules when it
// runs, so `sluice --help` does not pay for the app's, the agent's or the renderers' code.

const DIFF_USAGE = `Usage: sluice diff BASE HEAD [options]

Render and diff two checkouts with the engine the app uses.

Options:
  --env NAME        Only this environment (repeatable).
  --config FILE     Configuration file (default: BASE/.github/sluice.yml).
  --format FORMAT   markdown (default), json or html.
  --out FILE        Write the report to FILE instead of standard output.
  -h, --help        Show this help.

Exit code: 0 no changes, 1 changes, 2 errors.
`;

const APP_USAGE = `Usage: sluice app

Run the GitHub App. Settings come from the environment or ./.env (see README.md).
`;

const AGENT_USAGE = `Usage: sluice agent

Run the in-cluster agent. Settings come from the environment (see README.md).
`;

const KEYS_USAGE = `Usage: sluice keys generate [--out NAME]

Make a new Ed25519 key pair (PEM) for signing jobs or reports. With --out, write the private key
to NAME.key (mode 600) and the public key to NAME.pub, refusing to overwrite either; without it,
print both, private key first.
`;

const USAGE = `Usage: sluice <command>

Commands:
  diff BASE HEAD    Render and diff two checkouts with the engine the app uses.
  app               Run the GitHub App (settings from the environment or ./.env).
  agent             Run the in-cluster agent (settings from the environment).
  keys generate     Print a new Ed25519 key pair (PEM) for signing jobs or reports.

Run "sluice <command> --help" for a command's options.
`;

/** Output formats of `sluice diff`. */
const FORMATS = ["markdown", "json", "html"] as const;

const wantsHelp = (args: readonly string[]): boolean => args.includes("--help") || args.includes("-h");

/** `sluice keys generate [--out NAME]`: prints a key pair, or writes NAME.key (mode 600) and NAME.pub. */
async function generateKeys(args: readonly string[], io: CommandIo): Promise<number> {
  const out = args[0] === "--out" && args.length === 2 ? args[1] : undefined;
  if (args.length > 0 && !out) {
    io.stderr(`sluice keys generate: unexpected arguments "${args.join(" ")}"\n\n${KEYS_USAGE}`);
    return EXIT.error;
  }
  const { generateSigningKeys } = await import("../core/signing.ts");
  const keys = generateSigningKeys();
  if (!out) {
    io.stdout(`${keys.privateKey}${keys.publicKey}`);
    return 0;
  }
  const privatePath = resolve(io.cwd, `${out}.key`);
  const publicPath = resolve(io.cwd, `${out}.pub`);
  // "wx": an existing key is never replaced (a rotation keeps the old pair until agents have the new one).
  await writeFile(privatePath, keys.privateKey, { mode: 0o600, flag: "wx" });
  await writeFile(publicPath, keys.publicKey, { mode: 0o644, flag: "wx" });
  io.stdout(`wrote ${privatePath} (private, mode 600) and ${publicPath} (public)\n`);
  return 0;
}

/** Runs the `sluice` command line and returns the exit code. */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    io.stdout(USAGE);
    return command === undefined ? EXIT.error : 0;
  }
  try {
    switch (command) {
      case "diff":
        if (wantsHelp(rest)) return help(io, DIFF_USAGE);
        return await diffCommand(rest, io);
      case "app":
        if (wantsHelp(rest)) return help(io, APP_USAGE);
        return await (await import("./app-command.ts")).runApp(io);
      case "agent":
        if (wantsHelp(rest)) return help(io, AGENT_USAGE);
        return await (await import("./agent-command.ts")).runAgent(io);
      case "keys":
        if (wantsHelp(rest)) return help(io, KEYS_USAGE);
        if (rest[0] !== "generate") {
          io.stderr(`sluice keys: the only subcommand is "generate"\n\n${KEYS_USAGE}`);
          return EXIT.error;
        }
        return await generateKeys(rest.slice(1), io);
      default:
        io.stderr(`sluice: unknown command "${command}"\n\n${USAGE}`);
        return EXIT.error;
    }
  } catch (error) {
    io.stderr(`sluice ${command}: ${errorMessage(error)}\n`);
    return EXIT.error;
  }
}

function help(io: CommandIo, usage: string): number {
  io.stdout(usage);
  return 0;
}

async function diffCommand(argv: string[], io: CommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        env: { type: "string", multiple: true },
        config: { type: "string" },
        format: { type: "string", default: "markdown" },
        out: { type: "string" },
      },
    });
  } catch (error) {
    io.stderr(`sluice diff: ${errorMessage(error)}\n\n${DIFF_USAGE}`);
    return EXIT.error;
  }
  const { values, positionals } = parsed;
  const [base, head, ...extra] = positionals;
  if (base === undefined || head === undefined || extra.length > 0) {
    io.stderr(`sluice diff: expected two directories, BASE and HEAD, got ${positionals.length}\n\n${DIFF_USAGE}`);
    return EXIT.error;
  }
  const format = FORMATS.find((f) => f === values.format);
  if (!format) {
    io.stderr(`sluice diff: --format must be one of ${FORMATS.join(", ")}, got "${values.format}"\n`);
    return EXIT.error;
  }
  const { runDiff } = await import("./diff-command.ts");
  return runDiff(
    {
      base,
      head,
      environments: values.env ?? [],
      format,
      ...(values.config ? { configFile: values.config } : {}),
      ...(values.out ? { out: values.out } : {}),
    },
    io,
  );
}
