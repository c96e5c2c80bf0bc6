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
    reporters: ["default", "json"],
    outputFile: { json: ".cache/test-results.json" },
  },
});
