import { describe, expect, it } from "vitest";
import { CredentialCheck, evictionVerdict, readinessAnswer, type CredentialAnswer } from "../../../src/core/probes.ts";
import { ManualClock } from "../../helpers/manual-clock.ts";

/** A GitHub whose `GET /app` answers only when the test says, and counts the requests it got. */
class ScriptedGitHub {
  asked = 0;
  aborted = 0;
  #pending: { resolve: () => void; reject: (error: unknown) => void }[] = [];

  readonly ask = (signal: AbortSignal): Promise<void> => {
    this.asked++;
    return new Promise<void>((resolve, reject) => {
      signal.addEventListener("abort", () => {
        this.aborted++;
        reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      });
      this.#pending.push({ resolve, reject });
    });
  };

  accept(): void {
    for (const p of this.#pending.splice(0)) p.resolve();
  }

  refuse(status: number): void {
    for (const p of this.#pending.splice(0)) p.reject(Object.assign(new Error(`HTTP ${status}`), { status }));
  }
}

describe("the GitHub credentials readiness check", () => {
  it("shares one request among all probes, and counts a hanging GitHub as unreachable, not unready", async () => {
    const clock = new ManualClock();
    const github = new ScriptedGitHub();
    const seen: CredentialAnswer[] = [];
    const check = new CredentialCheck(github.ask, { clock, observe: (answer) => seen.push(answer) });

    const probes = [check.check(), check.check(), check.check()];
    await clock.asleep();
    expect(github.asked).toBe(1);
    expect(clock.wakeUps).toEqual([5_000]);
    clock.advance(5_000);
    const answers = await Promise.all(probes);

    const unreachable = { name: "github", note: "GitHub unreachable, not counted: no answer within 5000 ms" };
    expect(answers).toEqual([unreachable, unreachable, unreachable]);
    expect(github.aborted).toBe(1);
    expect(seen).toEqual([{ kind: "unreachable", reason: "no answer within 5000 ms" }]);
    expect(readinessAnswer(answers).status).toBe(200);
  });

  it("is unready only on a refusal, which holds while GitHub is unreachable, and asks again after 10 s", async () => {
    const clock = new ManualClock();
    const github = new ScriptedGitHub();
    const check = new CredentialCheck(github.ask, { clock });

    const refused = check.check();
    github.refuse(401);
    expect(await refused).toEqual({ name: "github", problem: "GitHub refused the app's credentials (401): check APP_ID and PRIVATE_KEY" });
    // Within 10 s the refusal is answered without asking.
    clock.advance(9_999);
    expect((await check.check()).problem).toContain("(401)");
    expect(github.asked).toBe(1);

    clock.advance(1);
    const hanging = check.check();
    await clock.asleep();
    clock.advance(5_000);
    expect(await hanging).toEqual({
      name: "github",
      problem: "GitHub refused the app's credentials (401): check APP_ID and PRIVATE_KEY",
      note: "GitHub unreachable, not counted: no answer within 5000 ms",
    });

    clock.advance(10_000);
    const accepted = check.check();
    github.accept();
    expect(await accepted).toEqual({ name: "github" });
    expect(github.asked).toBe(3);
  });

  it("keeps an acceptance for five minutes, and a 5xx is unreachable", async () => {
    const clock = new ManualClock();
    const github = new ScriptedGitHub();
    const check = new CredentialCheck(github.ask, { clock });
    const first = check.check();
    github.accept();
    expect(await first).toEqual({ name: "github" });
    clock.advance(299_999);
    expect(await check.check()).toEqual({ name: "github" });
    expect(github.asked).toBe(1);

    clock.advance(1);
    const failing = check.check();
    github.refuse(502);
    expect(await failing).toEqual({ name: "github", note: "GitHub unreachable, not counted: HTTP 502" });
  });
});

describe("Redis's eviction policy", () => {
  it("fails readiness unless every server keeps its data, and only notes a policy it could not read", () => {
    expect(evictionVerdict([{ policy: "noeviction" }])).toEqual({});
    expect(evictionVerdict([{ policy: "noeviction" }, { policy: "allkeys-lru" }])).toEqual({
      problem: "maxmemory-policy is allkeys-lru, not noeviction: Redis may evict queued jobs and records; set maxmemory-policy noeviction",
    });
    expect(evictionVerdict([{ unreadable: "ERR unknown command 'CONFIG'" }])).toEqual({
      note: "maxmemory-policy could not be checked: ERR unknown command 'CONFIG'",
    });
    expect(readinessAnswer([{ name: "redis", note: "maxmemory-policy could not be checked: NOPERM" }]).body).toBe(
      "[+]redis ok (maxmemory-policy could not be checked: NOPERM)\nready\n",
    );
  });
});
