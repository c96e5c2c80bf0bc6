import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** ioredis clients are made in one place. */
const IOREDIS = { name: "ioredis", message: "Redis clients come from src/redis/connection.ts (one server or a cluster)." };

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".cache/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      // @kubernetes/client-node types its models as classes, but its API takes and returns plain JSON.
      "@typescript-eslint/no-unsafe-class-instance-assignment": "off",
      "no-restricted-syntax": ["error", { selector: "ExportDefaultDeclaration", message: "Use named exports." }],
    },
  },
  { files: ["**/*.js"], ...tseslint.configs.disableTypeChecked },
  {
    files: ["src/core/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:fs*", "node:child_process", "node:net", "node:http*", "node:process", "node:os"],
              message: "src/core is pure: no I/O, environment or process access.",
            },
            {
              group: ["**/app/**", "**/agent/**", "**/render/**", "**/cli/**", "**/redis/**"],
              message: "src/core depends on nothing else in src.",
            },
          ],
          paths: [IOREDIS],
        },
      ],
      "no-restricted-globals": ["error", { name: "process", message: "src/core reads no environment or process state." }],
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: "Inject a clock instead of reading it in src/core." },
        { object: "Math", property: "random", message: "src/core is deterministic." },
      ],
    },
  },
  {
    files: ["src/app/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["**/agent/**"], message: "app and agent share only src/core and src/redis." }], paths: [IOREDIS] },
      ],
    },
  },
  {
    files: ["src/agent/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["**/app/**"], message: "app and agent share only src/core and src/redis." }], paths: [IOREDIS] },
      ],
    },
  },
  {
    files: ["src/render/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [{ group: ["**/app/**", "**/agent/**", "**/cli/**", "**/redis/**"], message: "src/render depends only on src/core." }],
          paths: [IOREDIS],
        },
      ],
    },
  },
  {
    files: ["src/cli/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { paths: [IOREDIS] }],
    },
  },
  {
    files: ["src/**/*.ts"],
    rules: {
      // A function that does not fit on a screen does more than one thing.
      "max-lines-per-function": ["error", { max: 80 }],
    },
  },
  {
    files: ["eslint.config.js", "vitest.config.ts", "vitest.reliability.config.ts"],
    rules: { "no-restricted-syntax": "off" },
  },
);
