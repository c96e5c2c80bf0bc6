import { defineConfig } from "vitest/config";

// `npm run test:reliability`: faults, scale, bad input and properties. Each test prints its figures.
export default defineConfig({
  test: {
    include: ["test/reliability/**/*.test.ts"],
    globalSetup: ["test/env/global-setup.ts"],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two files at once; the load test runs alone after them (see package.json), so its
    // latencies are not another test's.
    maxWorkers: 2,
    reporters: ["default", "json"],
    outputFile: { json: ".cache/reliability-results.json" },
  },
});
