import { sign, verify } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadAgentSettings } from "../../../src/agent/settings.ts";
import { loadSettings } from "../../../src/app/settings.ts";
import { main } from "../../../src/cli/main.ts";
import { generateSigningKeys } from "../../../src/core/signing.ts";

describe("app settings", () => {
  it("reads REDIS_URL from REDIS_URL_PATH when that file is there, and from REDIS_URL when it is not", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-redis-url-"));
    await writeFile(join(dir, "redis-url"), "rediss://sluice-app:s3cret@redis.example:6380/2\n");
    const base = {
      APP_ID: "1",
      PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----\\nx\\n-----END RSA PRIVATE KEY-----",
      WEBHOOK_SECRET: "w",
      REDIS_URL: "redis://from-configmap:6379",
      SLUICE_PUBLIC_URL: "https://s.example/",
    };

    expect((await loadSettings({ ...base, REDIS_URL_PATH: join(dir, "redis-url") })).redisUrl).toBe(
      "rediss://sluice-app:s3cret@redis.example:6380/2",
    );
    expect((await loadSettings({ ...base, REDIS_URL_PATH: join(dir, "absent") })).redisUrl).toBe("redis://from-configmap:6379");
    await rm(dir, { recursive: true });
  });

  it("lists every missing or invalid variable", async () => {
    await expect(loadSettings({ APP_ID: "abc", SLUICE_PUBLIC_URL: "not a url" })).rejects.toThrow(
      /APP_ID: APP_ID must be the GitHub App's numeric id[\s\S]*SLUICE_PUBLIC_URL: SLUICE_PUBLIC_URL must be the app's public URL[\s\S]*WEBHOOK_SECRET: WEBHOOK_SECRET is required/,
    );
  });

  it("treats empty variables as unset and derives the link secret", async () => {
    const settings = await loadSettings({
      APP_ID: "1",
      PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----\\nx\\n-----END RSA PRIVATE KEY-----",
      WEBHOOK_SECRET: "w",
      REDIS_URL: "redis://r:6379",
      SLUICE_PUBLIC_URL: "https://s.example/",
      SLUICE_LINK_SECRET: "",
      PORT: "",
    });
    expect(settings.publicUrl).toBe("https://s.example");
    expect(settings.port).toBe(3000);
    expect(settings.linkSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(settings.privateKey).toContain("\nx\n");
    expect(settings.jobSigningKey).toBeUndefined();
  });

  it("needs agent keys when deploys are on", async () => {
    await expect(
      loadSettings({
        APP_ID: "1",
        PRIVATE_KEY: "k",
        WEBHOOK_SECRET: "w",
        REDIS_URL: "redis://r:6379",
        SLUICE_PUBLIC_URL: "https://s.example",
        SLUICE_JOB_SIGNING_KEY: generateSigningKeys().privateKey,
      }),
    ).rejects.toThrow("SLUICE_AGENT_PUBLIC_KEYS: deploys need at least one agent public key");
  });

  it("starts preview-only when the deploy keys' files are absent, as a Secret without them mounts", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-settings-"));
    const given = {
      APP_ID: "1",
      PRIVATE_KEY: "k",
      WEBHOOK_SECRET: "w",
      REDIS_URL: "redis://r:6379",
      SLUICE_JOB_SIGNING_KEY_PATH: join(dir, "job-signing-key.pem"),
      SLUICE_AGENT_PUBLIC_KEYS_PATH: join(dir, "agent-public-keys.pem"),
    };
    const settings = await loadSettings(given);
    expect(settings.jobSigningKey).toBeUndefined();
    expect(settings.agentPublicKeys).toEqual([]);
    expect(settings.deploysOff).toBe(`SLUICE_JOB_SIGNING_KEY_PATH ${join(dir, "job-signing-key.pem")} is absent or empty`);
    expect((await loadSettings({ ...given, SLUICE_JOB_SIGNING_KEY_PATH: "" })).deploysOff).toBe(
      "SLUICE_JOB_SIGNING_KEY and SLUICE_JOB_SIGNING_KEY_PATH are not set",
    );

    // A signing key without agent keys is still refused, naming the file that is missing.
    await writeFile(given.SLUICE_JOB_SIGNING_KEY_PATH, generateSigningKeys().privateKey);
    await expect(loadSettings(given)).rejects.toThrow(
      `SLUICE_AGENT_PUBLIC_KEYS: deploys need at least one agent public key to trust reports (SLUICE_AGENT_PUBLIC_KEYS_PATH ${given.SLUICE_AGENT_PUBLIC_KEYS_PATH} is absent or holds none)`,
    );
    await writeFile(given.SLUICE_AGENT_PUBLIC_KEYS_PATH, generateSigningKeys().publicKey);
    const deploying = await loadSettings(given);
    expect([deploying.jobSigningKey !== undefined, deploying.deploysOff, deploying.agentPublicKeys.length]).toEqual([true, undefined, 1]);
  });

  it("stops 5 s before the pod's grace period ends (SLUICE_SHUTDOWN_GRACE_SECONDS, 30 by default)", async () => {
    const given = { APP_ID: "1", PRIVATE_KEY: "k", WEBHOOK_SECRET: "w", REDIS_URL: "redis://r:6379" };
    expect((await loadSettings(given)).stopTimeoutMs).toBe(25_000);
    expect((await loadSettings({ ...given, SLUICE_SHUTDOWN_GRACE_SECONDS: "60" })).stopTimeoutMs).toBe(55_000);
    await expect(loadSettings({ ...given, SLUICE_SHUTDOWN_GRACE_SECONDS: "5" })).rejects.toThrow(
      "SLUICE_SHUTDOWN_GRACE_SECONDS: SLUICE_SHUTDOWN_GRACE_SECONDS must be at least 6",
    );
  });

  it("links diff pages to the local address outside production, and needs Redis and the public URL in production", async () => {
    const given = { APP_ID: "1", PRIVATE_KEY: "k", WEBHOOK_SECRET: "w", REDIS_URL: "redis://r:6379", PORT: "3100" };
    expect((await loadSettings(given)).publicUrl).toBe("http://localhost:3100");
    await expect(loadSettings({ ...given, NODE_ENV: "production", REDIS_URL: "" })).rejects.toThrow(
      /REDIS_URL: REDIS_URL is required[\s\S]*SLUICE_PUBLIC_URL: SLUICE_PUBLIC_URL is required in production/,
    );
  });
});

describe("agent settings", () => {
  it("needs environments, repositories, namespaces and both keys", async () => {
    await expect(loadAgentSettings({})).rejects.toThrow(
      /SLUICE_AGENT_ENVIRONMENTS must name at least one environment[\s\S]*SLUICE_AGENT_REPOSITORIES must name at least one owner\/name/,
    );
    await expect(
      loadAgentSettings({ REDIS_URL: "redis://r:6379", SLUICE_AGENT_ENVIRONMENTS: "prod", SLUICE_AGENT_REPOSITORIES: "o/*" }),
    ).rejects.toThrow('SLUICE_AGENT_REPOSITORIES: repository rule "o/*" names no namespace');
    await expect(
      loadAgentSettings({
        REDIS_URL: "redis://r:6379",
        SLUICE_AGENT_ENVIRONMENTS: "prod",
        SLUICE_AGENT_REPOSITORIES: "o/*",
        SLUICE_AGENT_NAMESPACES: "team-*",
      }),
    ).rejects.toThrow("SLUICE_APP_PUBLIC_KEY or SLUICE_APP_PUBLIC_KEY_PATH is required");
  });

  it("splits lists and applies defaults", async () => {
    const keys = generateSigningKeys();
    const settings = await loadAgentSettings({
      REDIS_URL: "redis://r:6379",
      SLUICE_AGENT_ENVIRONMENTS: "prod, staging",
      SLUICE_AGENT_REPOSITORIES: "o/*, o/platform=platform-*",
      SLUICE_AGENT_NAMESPACES: "team-*,shared",
      SLUICE_APP_PUBLIC_KEY: keys.publicKey,
      SLUICE_AGENT_SIGNING_KEY: keys.privateKey,
    });
    expect(settings).toMatchObject({
      environments: ["prod", "staging"],
      rules: [
        { repositories: "o/*", namespaces: ["team-*", "shared"] },
        { repositories: "o/platform", namespaces: ["platform-*"] },
      ],
      clusterKinds: [],
      allowAdoption: false,
      maxJobAgeMs: 900_000,
      fieldManager: "sluice",
      namespace: "sluice-system",
      healthTimeoutMs: 300_000,
    });
  });
});

describe("sluice keys generate", () => {
  it("prints an Ed25519 key pair, and refuses other subcommands", async () => {
    let out = "";
    let err = "";
    const io = {
      env: {},
      cwd: process.cwd(),
      stdout: (t: string) => {
        out += t;
      },
      stderr: (t: string) => {
        err += t;
      },
    };
    expect(await main(["keys", "generate"], io)).toBe(0);
    expect(out).toMatch(
      /^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/,
    );
    expect(await main(["keys", "rotate"], io)).toBe(2);
    expect(err).toContain('sluice keys: the only subcommand is "generate"');
  });

  it("writes NAME.key (mode 600) and NAME.pub with --out, a pair that signs and verifies, and never overwrites a key", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-keys-"));
    let err = "";
    const io = { env: {}, cwd: dir, stdout: () => undefined, stderr: (t: string) => (err += t) };

    expect(await main(["keys", "generate", "--out", "agent-production"], io)).toBe(0);
    const privateKey = await readFile(join(dir, "agent-production.key"), "utf8");
    const publicKey = await readFile(join(dir, "agent-production.pub"), "utf8");
    expect((await stat(join(dir, "agent-production.key"))).mode & 0o777).toBe(0o600);
    const signature = sign(null, Buffer.from("report"), privateKey);
    expect(verify(null, Buffer.from("report"), publicKey, signature)).toBe(true);

    expect(await main(["keys", "generate", "--out", "agent-production"], io)).toBe(2);
    expect(err).toContain("agent-production.key");
    expect(await readFile(join(dir, "agent-production.key"), "utf8")).toBe(privateKey);
    expect(await main(["keys", "generate", "--out"], io)).toBe(2);
    expect(err).toContain('unexpected arguments "--out"');
    await rm(dir, { recursive: true });
  });
});
