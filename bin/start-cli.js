import module from "node:module";
import process from "node:process";

// Node's own warnings (experimental features, a library's deprecation) are not for the user of
// a command line tool; SLUICE_DEBUG=1 shows them.
if (!process.env.SLUICE_DEBUG) process.removeAllListeners("warning");
// Compiled modules are cached on disk (in the OS temporary directory), so later starts skip compiling.
module.enableCompileCache?.();
await import("../dist/cli/sluice.js");
