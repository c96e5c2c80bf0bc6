import { describe, expect, it } from "vitest";
import { deployCheckName, parseDeployCheckName } from "../../../src/core/check-names.ts";

describe("parseDeployCheckName", () => {
  it("reads back the environment of every deploy check run's name", () => {
    for (const environment of ["production", "staging-eu", "a (b)", "x)", "(", "prod/eu", "ünïcödé"])
      expect(parseDeployCheckName(deployCheckName(environment)), environment).toBe(environment);
  });

  it("reads no environment from another check run's name", () => {
    for (const name of [
      "sluice/preview",
      "sluice/drift (production)",
      "sluice/deploy ()",
      "sluice/deploy (production",
      "sluice/deploy production)",
      " sluice/deploy (production)",
      "sluice/deploy (production) ",
      "sluice/deploy (production)\n",
      "sluice/deploy (prod\nuction)",
      "xsluice/deploy (production)",
      "",
    ])
      expect(parseDeployCheckName(name), JSON.stringify(name)).toBeUndefined();
  });

  it("reads what the pattern it replaces read, name for name", () => {
    // The pattern the Re-sync and Roll back buttons read check-run names with before this parser.
    const pattern = /^sluice\/deploy \((.+)\)$/;
    const names = [
      "sluice/deploy (production)",
      "sluice/deploy (a) (b)",
      "sluice/deploy ())",
      "sluice/deploy ( )",
      "sluice/deploy ()",
      "sluice/deploy (x\ry)",
      "sluice/deploy (x\u2028y)",
      "sluice/deploy (",
      "sluice/deploy )",
      "sluice/preview",
    ];
    for (const name of names) expect(parseDeployCheckName(name), JSON.stringify(name)).toBe(pattern.exec(name)?.[1]);
  });
});
