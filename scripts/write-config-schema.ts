import { readFile, writeFile } from "node:fs/promises";
import { configJsonSchema, configReference, REFERENCE_MARKERS } from "../src/core/config.ts";

// Writes schema/sluice.schema.json, the JSON Schema editors use for .github/sluice.yml, and the
// configuration reference in README.md generated from it.
const target = new URL("../schema/sluice.schema.json", import.meta.url);
await writeFile(target, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${target.pathname}\n`);

const readme = new URL("../README.md", import.meta.url);
const text = await readFile(readme, "utf8");
const start = text.indexOf(REFERENCE_MARKERS.start);
const end = text.indexOf(REFERENCE_MARKERS.end);
if (start < 0 || end < start) throw new Error(`README.md has no ${REFERENCE_MARKERS.start} … ${REFERENCE_MARKERS.end} section`);
await writeFile(readme, `${text.slice(0, start + REFERENCE_MARKERS.start.length)}\n${configReference()}\n${text.slice(end)}`);
process.stdout.write(`wrote the configuration reference in ${readme.pathname}\n`);
