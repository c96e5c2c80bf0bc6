import { describe, expect, it } from "vitest";
import { durationSchema, formatDuration, parseDuration } from "../../../src/core/duration.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function issue(input: unknown): string | undefined {
  return durationSchema.safeParse(input).error?.issues[0]?.message;
}

describe("parseDuration", () => {
  it("reads Go-style units s, m, h and d, alone or combined largest first", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("15m")).toBe(15 * MINUTE);
    expect(parseDuration("2h")).toBe(2 * HOUR);
    expect(parseDuration("1h30m")).toBe(90 * MINUTE);
    expect(parseDuration("7d")).toBe(7 * DAY);
    expect(parseDuration("2d15h")).toBe(2 * DAY + 15 * HOUR);
    expect(parseDuration("1d2h3m4s")).toBe(DAY + 2 * HOUR + 3 * MINUTE + 4000);
    expect(parseDuration("365d")).toBe(365 * DAY);
  });

  it("refuses nothing, zero, more than 365 days, other units and other orders", () => {
    for (const text of ["", " ", "0s", "0m", "366d", "365d1s", "15", "15M", "1.5h", "300ms", "30m1h", "1h 30m", "-5m", "1w", "h"]) {
      expect([text, parseDuration(text)]).toEqual([text, undefined]);
    }
  });
});

describe("durationSchema", () => {
  it("turns a duration into milliseconds", () => {
    expect(durationSchema.parse("1h30m")).toBe(90 * MINUTE);
  });

  it("says what a duration looks like, with the value, for each kind of bad input", () => {
    expect(issue("15 minutes")).toBe('must be a duration such as 15m, 2h or 1h30m, not "15 minutes"');
    expect(issue("0m")).toBe('must be longer than 0, not "0m"');
    expect(issue("400d")).toBe('must be at most 365d, not "400d"');
    expect(issue(15)).toBe("must be a duration such as 15m, 2h or 1h30m, not the number 15 (a number needs a unit: 15m)");
    expect(issue(true)).toBe("must be a duration such as 15m, 2h or 1h30m, not true");
  });
});

describe("formatDuration", () => {
  it("writes durations for people", () => {
    expect(formatDuration(15 * MINUTE)).toBe("15 min");
    expect(formatDuration(90 * MINUTE)).toBe("1 h 30 min");
    expect(formatDuration(45_000)).toBe("45 s");
    expect(formatDuration(2 * DAY)).toBe("2 d");
    expect(formatDuration(90_000)).toBe("1 min 30 s");
    expect(formatDuration(DAY + 2 * HOUR)).toBe("1 d 2 h");
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(-5_000)).toBe("0 s");
    expect(formatDuration(1_499)).toBe("1 s");
  });
});
