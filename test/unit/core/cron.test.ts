import { describe, expect, it } from "vitest";
import { cronTimes, parseCron, type CronSchedule } from "../../../src/core/cron.ts";

function schedule(expression: string): CronSchedule {
  const result = parseCron(expression);
  if (!result.ok) throw new Error(result.message);
  return result.schedule;
}

/** The first `count` wall-clock times of a schedule from `from`, forward or backward, as ISO text without the zone. */
function times(expression: string, from: string, count: number, direction: "forward" | "backward" = "forward"): string[] {
  const out: string[] = [];
  for (const wall of cronTimes(schedule(expression), Date.parse(`${from}Z`), direction)) {
    out.push(new Date(wall).toISOString().slice(0, 16));
    if (out.length === count) break;
  }
  return out;
}

describe("parseCron", () => {
  it("reads lists, ranges, steps and names", () => {
    expect(schedule("*/15 9-17 * * MON-FRI")).toMatchObject({
      minutes: [0, 15, 30, 45],
      hours: [9, 10, 11, 12, 13, 14, 15, 16, 17],
      weekdays: [1, 2, 3, 4, 5],
      dayRestricted: false,
      weekdayRestricted: true,
    });
    expect(schedule("0 0 1,15 jan,Jul *")).toMatchObject({ days: [1, 15], months: [1, 7] });
    expect(schedule("0 0 * * 7").weekdays).toEqual([0]);
    expect(schedule("0 0 * * 5-7").weekdays).toEqual([0, 5, 6]);
    expect(schedule("10-50/20 0 * * *").minutes).toEqual([10, 30, 50]);
    expect(schedule("5/20 0 * * *").minutes).toEqual([5, 25, 45]);
    expect(schedule("  0   18 * *   FRI ").expression).toBe("0 18 * * FRI");
  });

  it("names the field and value of a bad expression", () => {
    const message = (expression: string) => {
      const result = parseCron(expression);
      return result.ok ? "accepted" : result.message;
    };
    expect(message("0 25 * * *")).toBe('hour "25" is out of range 0-23 in "0 25 * * *"');
    expect(message("0 18 * * FRY")).toBe('day-of-week "FRY" is not a number 0-7 or a name SUN-SAT in "0 18 * * FRY"');
    expect(message("0 0 1 13 *")).toBe('month "13" is out of range 1-12 in "0 0 1 13 *"');
    expect(message("*/0 * * * *")).toBe('minute "*/0" has a step of 0; a step must be at least 1 in "*/0 * * * *"');
    expect(message("0 0 * * 5-1")).toBe('day-of-week "5-1" is a range that runs backwards in "0 0 * * 5-1"');
    expect(message("0 0 0 * *")).toBe('day-of-month "0" is out of range 1-31 in "0 0 0 * *"');
    expect(message("0 0 * *")).toBe('must have 5 fields (minute hour day-of-month month day-of-week), not 4: "0 0 * *"');
    expect(message("0 0 * * * *")).toBe('must have 5 fields (minute hour day-of-month month day-of-week), not 6: "0 0 * * * *"');
    expect(message("0 0 30 2 *")).toBe('day-of-month "30" never occurs in month "2" in "0 0 30 2 *"');
    expect(message("0,,5 0 * * *")).toBe('minute "0,,5" has an empty list item in "0,,5 0 * * *"');
    expect(message("0 0 1- * *")).toBe('day-of-month "1-" is not a number 1-31 in "0 0 1- * *"');
  });
});

describe("cronTimes", () => {
  it("lists wall-clock times forward and backward from a moment, the moment included", () => {
    expect(times("0 18 * * FRI", "2026-12-04T18:00", 3)).toEqual(["2026-12-04T18:00", "2026-12-11T18:00", "2026-12-18T18:00"]);
    expect(times("0 18 * * FRI", "2026-12-04T17:59", 2, "backward")).toEqual(["2026-11-27T18:00", "2026-11-20T18:00"]);
    expect(times("*/30 23 31 12 *", "2026-06-01T00:00", 3)).toEqual(["2026-12-31T23:00", "2026-12-31T23:30", "2027-12-31T23:00"]);
    expect(times("0 0 29 2 *", "2026-01-01T00:00", 1)).toEqual(["2028-02-29T00:00"]);
  });

  it("matches either day field when both are restricted, and both when one is *", () => {
    // The 13th of the month or any Friday.
    expect(times("0 12 13 * FRI", "2026-11-01T00:00", 4)).toEqual([
      "2026-11-06T12:00",
      "2026-11-13T12:00",
      "2026-11-20T12:00",
      "2026-11-27T12:00",
    ]);
    expect(times("0 12 13 * FRI", "2026-12-01T00:00", 2)).toEqual(["2026-12-04T12:00", "2026-12-11T12:00"]);
    expect(times("0 12 13 * *", "2026-12-01T00:00", 1)).toEqual(["2026-12-13T12:00"]);
  });
});
