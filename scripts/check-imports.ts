import { fileURLToPath } from "node:url";
import { floorViolations, importGraph, importLoops } from "./import-graph.ts";

// Part of `npm run lint`: src/ has no import loops and no import against its floors.
const root = fileURLToPath(new URL("../src", import.meta.url));
const graph = await importGraph(root);
const loops = importLoops(graph);
const violations = floorViolations(graph);
for (const loop of loops) process.stderr.write(`import loop in src/: ${loop.join(" ⇄ ")}\n`);
for (const violation of violations) process.stderr.write(`import against the floors of src/ (see docs/architecture.md): ${violation}\n`);
if (loops.length > 0 || violations.length > 0) process.exit(1);
process.stdout.write(`src/: ${graph.size} files, no import loops, every import within its floors\n`);
