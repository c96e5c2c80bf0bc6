import { parseArgs } from "node:util";
import { generateSigningKeys } from "../core/signing.ts";
import { runAgent } from "./agent-command.ts";
import { runApp } from "./app-command.ts";
import { EXIT, runDiff, type CommandIo, type DiffFormat } from "./diff-command.ts";

const USAGE = `Usage: sluice <command>

Commands:
  diff BASE HEAD    Render and diff two checkouts with the engine the app uses.
      --env NAME        Only this environment (repeatable).
      --config FILE     Configuration file (default: BASE/.github/sluice.yml).
      --format FORMAT   markdown (default), json or html.
      --out FILE        Write the report to FILE instead of standard output.
    Exit code: 0 no changes, 1 changes, 2 errors.
  app               Run the GitHub App (settings from the environment or ./.env).
  agent             Run the in-cluster agent (settings from the environment).
  keys generate     Print a new Ed25519 key pair (PEM) for signing jobs or reports.
`;

const FORMATS: readonly DiffFormat[] = ["markdown", "json", "html"];

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
        return await diffCommand(rest, io);
      case "app":
        return await runApp(io);
      case "agent":
        return await runAgent(io);
      case "keys":
        if (rest[0] !== "generate" || rest.length > 1) {
          io.stderr(`sluice keys: the only subcommand is "generate"\n`);
          return EXIT.error;
        }
        {
          const keys = generateSigningKeys();
          io.stdout(`${keys.privateKey}${keys.publicKey}`);
        }
        return 0;
      default:
        io.stderr(`sluice: unknown command "${command}"\n\n${USAGE}`);
        return EXIT.error;
    }
  } catch (error) {
    io.stderr(`sluice ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.error;
  }
}

async function diffCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
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
  const [base, head, ...extra] = positionals;
  if (base === undefined || head === undefined || extra.length > 0) {
    io.stderr(`sluice diff: expected two directories, BASE and HEAD, got ${positionals.length}\n\n${USAGE}`);
    return EXIT.error;
  }
  const format = values.format as DiffFormat;
  if (!FORMATS.includes(format)) {
    io.stderr(`sluice diff: --format must be one of ${FORMATS.join(", ")}, got "${values.format}"\n`);
    return EXIT.error;
  }
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
