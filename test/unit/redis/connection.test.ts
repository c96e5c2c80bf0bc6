import { describe, expect, it } from "vitest";
import { loadAgentSettings } from "../../../src/agent/settings.ts";
import { loadSettings } from "../../../src/app/settings.ts";
import { parseRedisUrl } from "../../../src/redis/connection.ts";

describe("REDIS_URL", () => {
  it("reads one server as ioredis does, and a cluster's seed nodes with their credentials", () => {
    expect(parseRedisUrl("redis://redis:6379/2")).toEqual({ kind: "server", url: "redis://redis:6379/2" });
    expect(parseRedisUrl("rediss://:pw@redis.example:6380")).toEqual({ kind: "server", url: "rediss://:pw@redis.example:6380" });
    expect(parseRedisUrl("redis-cluster://10.0.0.1:7000,10.0.0.2:7001, redis-2.example:7002")).toEqual({
      kind: "cluster",
      tls: false,
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
        { host: "redis-2.example", port: 7002 },
      ],
    });
    expect(parseRedisUrl("rediss-cluster://sluice:p%40ss@[::1]:7000/")).toEqual({
      kind: "cluster",
      tls: true,
      nodes: [{ host: "::1", port: 7000 }],
      username: "sluice",
      password: "p@ss",
    });
  });

  it("says what is wrong, and never shows a password", () => {
    for (const [url, message] of [
      ["localhost:6379", /must be redis:\/\/host:port or rediss:\/\/host:port \(one server\), or redis-cluster:\/\/host:port,host:port/],
      ["http://:secret@redis:6379", /must be redis:\/\/.*"http:\/\/:\*\*\*@redis:6379"/],
      [
        "redis-cluster://:secret@a:7000/3",
        /a Redis Cluster has no databases or options in its URL .*"redis-cluster:\/\/:\*\*\*@a:7000\/3"/,
      ],
      ["redis-cluster://a:7000,b", /each seed node of a Redis Cluster is host:port, not "b"/],
      ["redis-cluster://a:70000", /each seed node of a Redis Cluster is host:port, not "a:70000"/],
      ["redis-cluster://user:secret@,", /each seed node of a Redis Cluster is host:port, not ""/],
    ] as const) {
      expect(() => parseRedisUrl(url), url).toThrow(message);
      expect(() => parseRedisUrl(url)).not.toThrow(/secret/);
    }
  });

  it("is checked when the app and the agent start", async () => {
    const app = { APP_ID: "1", PRIVATE_KEY: "k", WEBHOOK_SECRET: "w", SLUICE_PUBLIC_URL: "https://s.example" };
    await expect(loadSettings({ ...app, REDIS_URL: "redis-cluster://:hunter2@a:1,b" })).rejects.toThrow(
      /REDIS_URL: REDIS_URL each seed node of a Redis Cluster is host:port, not "b" in "redis-cluster:\/\/:\*\*\*@a:1,b"/,
    );
    await expect(loadSettings({ ...app, REDIS_URL: "redis-cluster://a:7000,b:7001" })).resolves.toMatchObject({
      redisUrl: "redis-cluster://a:7000,b:7001",
    });
    await expect(loadAgentSettings({ REDIS_URL: "tcp://redis:6379", SLUICE_AGENT_ENVIRONMENTS: "production" })).rejects.toThrow(
      /REDIS_URL must be redis:\/\//,
    );
  });
});
