import { main } from "./main.ts";

/** The process entry point of `sluice`. */
export async function run(): Promise<void> {
  process.exitCode = await main(process.argv.slice(2), {
    env: process.env,
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
