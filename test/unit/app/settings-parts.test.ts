import { describe, expect, it } from "vitest";
import { appSettings, deploySettings, givenVariables, parseEnv, type LoadedParts } from "../../../src/app/settings.ts";
import { renderBudget } from "../../../src/render/render-budget.ts";
import { generateSigningKeys } from "../../../src/core/signing.ts";

const required = { APP_ID: "7", WEBHOOK_SECRET: "w", REDIS_URL: "redis://r:6379" };

describe("givenVariables", () => {
  it("leaves out empty variables, as copied from .env.example, and keeps the rest", () => {
    expect(givenVariables({ PORT: "", HOST: "::", LOG_LEVEL: undefined })).toEqual({ HOST: "::", LOG_LEVEL: undefined });
  });
});

describe("parseEnv", () => {
  it("applies the defaults", () => {
    const e = parseEnv(required);

    expect([e.APP_ID, e.PORT, e.HOST, e.SLUICE_RENDER_SANDBOX, e.SLUICE_SHUTDOWN_GRACE_SECONDS]).toEqual([7, 3000, "0.0.0.0", "auto", 30]);
  });

  it("needs a webhook secret inline or from a file, and the public URL in production only", () => {
    expect(parseEnv({ ...required, WEBHOOK_SECRET: undefined, WEBHOOK_SECRET_PATH: "/secrets/webhook" }).WEBHOOK_SECRET_PATH).toBe(
      "/secrets/webhook",
    );
    expect(() => parseEnv({ ...required, WEBHOOK_SECRET: undefined })).toThrow(
      "invalid configuration:\n  WEBHOOK_SECRET: WEBHOOK_SECRET is required (or WEBHOOK_SECRET_PATH)",
    );
    expect(() => parseEnv({ ...required, NODE_ENV: "production" })).toThrow(
      "invalid configuration:\n  SLUICE_PUBLIC_URL: SLUICE_PUBLIC_URL is required in production",
    );
  });

  it("lists the schema's problems and the cross-variable ones together", () => {
    expect(() => parseEnv({ APP_ID: "x", REDIS_URL: "redis://r:6379", NODE_ENV: "production" })).toThrow(
      /APP_ID: APP_ID must be the GitHub App's numeric id\n {2}SLUICE_PUBLIC_URL: SLUICE_PUBLIC_URL is required in production[^\n]*\n {2}WEBHOOK_SECRET: WEBHOOK_SECRET is required/,
    );
  });
});

describe("deploySettings", () => {
  const keys = generateSigningKeys();

  it("turns deploys off without a signing key, saying why", () => {
    expect(deploySettings(parseEnv(required), { jobSigningKey: "", agentPublicKeys: "" })).toEqual({
      jobSigningKey: undefined,
      deploysOff: "SLUICE_JOB_SIGNING_KEY and SLUICE_JOB_SIGNING_KEY_PATH are not set",
      agentPublicKeys: [],
    });
    const fromFile = parseEnv({ ...required, SLUICE_JOB_SIGNING_KEY_PATH: "/keys/job.pem" });
    expect(deploySettings(fromFile, { jobSigningKey: "", agentPublicKeys: "" }).deploysOff).toBe(
      "SLUICE_JOB_SIGNING_KEY_PATH /keys/job.pem is absent or empty",
    );
  });

  it("turns deploys on with a signing key and the agent keys, bound as their comment lines say", () => {
    const settings = deploySettings(parseEnv(required), {
      jobSigningKey: keys.privateKey,
      agentPublicKeys: `# environments: prod\n${keys.publicKey}`,
    });

    expect(settings.deploysOff).toBeUndefined();
    expect(settings.jobSigningKey).toBe(keys.privateKey);
    expect(settings.agentPublicKeys).toEqual([{ pem: keys.publicKey.trim(), environments: ["prod"] }]);
  });

  it("refuses a signing key without an agent key, naming the agent keys' file when it was to come from one", () => {
    const e = parseEnv({ ...required, SLUICE_AGENT_PUBLIC_KEYS_PATH: "/keys/agents.pem" });

    expect(() => deploySettings(e, { jobSigningKey: keys.privateKey, agentPublicKeys: "" })).toThrow(
      "SLUICE_AGENT_PUBLIC_KEYS: deploys need at least one agent public key to trust reports (SLUICE_AGENT_PUBLIC_KEYS_PATH /keys/agents.pem is absent or holds none)",
    );
  });
});

describe("appSettings", () => {
  const budget = renderBudget({ memoryBytes: 8 * 1024 ** 3, cpus: 4, given: {} });
  const parts: LoadedParts = {
    privateKey: "k",
    webhookSecret: "w",
    redisMacSecrets: { current: "w", previous: [] },
    redisTls: undefined,
    deploy: { jobSigningKey: undefined, deploysOff: "off", agentPublicKeys: [] },
    budget,
    env: {},
  };

  it("converts units, trims trailing slashes and takes the render processes from the budget", () => {
    const e = parseEnv({
      ...required,
      SLUICE_PUBLIC_URL: "https://s.example//",
      GITHUB_API_URL: "https://ghe.example/api/v3/",
      SLUICE_DIFF_TTL_DAYS: "2",
      SLUICE_RENDER_TIMEOUT_SECONDS: "3",
      SLUICE_SHUTDOWN_GRACE_SECONDS: "10",
      SLUICE_DASHBOARD_WRITE: "true",
    });

    const settings = appSettings(e, parts);

    expect(settings).toMatchObject({
      appId: 7,
      publicUrl: "https://s.example",
      githubApiUrl: "https://ghe.example/api/v3",
      diffTtlSeconds: 2 * 24 * 3600,
      renderTimeoutMs: 3000,
      stopTimeoutMs: 5000,
      dashboardWritable: true,
      renderProcesses: budget.processes,
      renderMemoryMb: budget.heapMb,
      deploysOff: "off",
    });
  });

  it("derives the link secret from the webhook secret unless one is given", () => {
    const derived = appSettings(parseEnv(required), parts).linkSecret;

    expect(derived).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(appSettings(parseEnv(required), { ...parts, webhookSecret: "other" }).linkSecret).not.toBe(derived);
    expect(appSettings(parseEnv({ ...required, SLUICE_LINK_SECRET: "0123456789abcdef" }), parts).linkSecret).toBe("0123456789abcdef");
  });
});
