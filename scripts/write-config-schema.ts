import { writeFile } from "node:fs/promises";
import { configJsonSchema } from "../src/core/config.ts";

// Writes schema/sluice.schema.json, the JSON Schema editors use for .github/sluice.yml.
const target = new URL("../schema/sluice.schema.json", import.meta.url);
await writeFile(target, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${target.pathname}\n`);
