import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // `npm run test:reliability` runs these: faults, scale and properties, with figures.
    exclude: ["test/reliability/**", "**/node_modules/**"],
    globalSetup: ["test/env/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Most files spend their time waiting (GitHub's write pacing, health waits, agents), not
    // computing, so three run at once even on two cores; each has a Redis database of its own.
    maxWorkers: 3,
    reporters: ["default", "json"],
    outputFile: { json: ".cache/test-results.json" },
  },
});
