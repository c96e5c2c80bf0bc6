import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeUntil, freezeAt, freezeWindowSchema, type FreezeWindow } from "../../../src/core/freeze.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function windows(...inputs: z.input<typeof freezeWindowSchema>[]): FreezeWindow[] {
  return inputs.map((input) => freezeWindowSchema.parse(input));
}

/** When the freeze at `now` (ISO) ends, as ISO, or "open". */
function frozenUntil(list: FreezeWindow[], now: string): string {
  const freeze = freezeAt(list, Date.parse(now));
  return freeze ? new Date(freeze.until).toISOString() : "open";
}

/** Every issue of an invalid window, as `path: message`. */
function problems(input: unknown): string[] {
  const result = freezeWindowSchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

describe("freezeWindowSchema", () => {
  it("reads a one-off window as wall-clock times in its zone, and an ISO time with an offset as it is", () => {
    const [berlin, iso] = windows(
      { from: "2026-12-24T18:00", until: "2027-01-04T09:00:30", timezone: "Europe/Berlin", reason: "Holidays" },
      { from: "2026-12-24T18:00:00+02:00", until: "2026-12-25T00:00Z", timezone: "Europe/Berlin", reason: "Party" },
    );
    expect(berlin).toEqual({
      kind: "once",
      from: Date.parse("2026-12-24T17:00:00Z"),
      until: Date.parse("2027-01-04T08:00:30Z"),
      timezone: "Europe/Berlin",
      reason: "Holidays",
    });
    expect(iso).toMatchObject({ from: Date.parse("2026-12-24T16:00:00Z"), until: Date.parse("2026-12-25T00:00:00Z") });
    expect(windows({ from: "2026-12-24 18:00", until: "2026-12-24T19:00", reason: "UTC by default" })[0]).toMatchObject({
      from: Date.parse("2026-12-24T18:00:00Z"),
      timezone: "UTC",
    });
  });

  it("reads a recurring window: a cron schedule, a duration and a zone", () => {
    const [weekend] = windows({ schedule: "0 18 * * FRI", duration: "2d15h", timezone: "Europe/Berlin", reason: "Weekend" });
    expect(weekend).toMatchObject({
      kind: "recurring",
      schedule: { expression: "0 18 * * FRI", weekdays: [5] },
      duration: 2 * DAY + 15 * HOUR,
      timezone: "Europe/Berlin",
      reason: "Weekend",
    });
  });

  it("refuses each bad input with a message that names the field and the value", () => {
    const once = { from: "2026-12-24T18:00", until: "2026-12-24T20:00", timezone: "Europe/Berlin", reason: "x" };
    expect(problems({ ...once, until: "2026-12-24T09:00" })).toEqual([
      'until: must be after from (2026-12-24T18:00 Europe/Berlin), not "2026-12-24T09:00"',
    ]);
    expect(problems({ ...once, until: once.from })).toEqual([
      'until: must be after from (2026-12-24T18:00 Europe/Berlin), not "2026-12-24T18:00"',
    ]);
    expect(problems({ ...once, timezone: "Europe/Berln" })).toEqual([
      'timezone: is not a time zone: "Europe/Berln"; use an IANA name such as Europe/Berlin, America/New_York or UTC',
    ]);
    expect(problems({ ...once, from: "24.12.2026 18:00" })).toEqual([
      'from: must be a wall-clock time such as 2026-12-24T18:00 (in timezone) or an ISO time with an offset such as 2026-12-24T18:00+01:00, not "24.12.2026 18:00"',
    ]);
    expect(problems({ ...once, until: "2026-02-30T10:00" })).toEqual([
      'until: must be a wall-clock time such as 2026-12-24T18:00 (in timezone) or an ISO time with an offset such as 2026-12-24T18:00+01:00, not "2026-02-30T10:00"',
    ]);
    expect(problems({ ...once, reason: "" })).toEqual(["reason: must not be empty"]);
    expect(problems({ ...once, reason: "r".repeat(201) })).toEqual(["reason: must be at most 200 characters, not 201"]);
    expect(problems({ from: once.from, until: once.until })).toEqual(["reason: is required (why the environment is frozen)"]);
    expect(problems({ ...once, util: "2026-12-25T00:00" })).toEqual([': Unrecognized key: "util"']);
    expect(problems({ ...once, until: undefined })).toEqual(["until: is required for a one-off window (or give schedule and duration)"]);
    expect(problems({ reason: "x" })).toEqual([": needs from and until (a one-off window) or schedule and duration (a recurring window)"]);
  });

  it("refuses a bad recurring window, naming the cron field, and a mix of the two kinds", () => {
    const weekly = { schedule: "0 18 * * FRI", duration: "63h", timezone: "Europe/Berlin", reason: "Weekend" };
    expect(problems({ ...weekly, schedule: "0 18 * * FRY" })).toEqual([
      'schedule: day-of-week "FRY" is not a number 0-7 or a name SUN-SAT in "0 18 * * FRY"',
    ]);
    expect(problems({ ...weekly, duration: "63 hours" })).toEqual([
      'duration: must be a duration such as 15m, 2h or 1h30m, not "63 hours"',
    ]);
    expect(problems({ ...weekly, duration: undefined })).toEqual([
      "duration: is required for a recurring window (how long each one lasts, such as 2h)",
    ]);
    expect(problems({ ...weekly, from: "2026-12-24T18:00" })).toEqual([
      "from: is for a one-off window; a recurring window (schedule) lasts for duration",
    ]);
    expect(problems({ ...weekly, schedule: undefined, until: "2026-12-24T18:00" })).toEqual([
      "duration: is for a recurring window; give schedule, or from and until for a one-off window",
      "from: is required for a one-off window (or give schedule and duration)",
    ]);
  });
});

describe("freezeAt", () => {
  it("is open outside every window and frozen from `from` up to, not including, `until`", () => {
    const list = windows({ from: "2026-12-04T09:00", until: "2026-12-04T12:00", reason: "Release" });
    expect(freezeAt(list, Date.parse("2026-12-04T08:59:59.999Z"))).toBeUndefined();
    expect(freezeAt(list, Date.parse("2026-12-04T09:00:00Z"))).toEqual({
      until: Date.parse("2026-12-04T12:00:00Z"),
      reason: "Release",
      timezone: "UTC",
      reasons: ["Release"],
    });
    expect(freezeAt(list, Date.parse("2026-12-04T12:00:00Z"))).toBeUndefined();
    expect(freezeAt([], Date.parse("2026-12-04T10:00:00Z"))).toBeUndefined();
  });

  it("keeps a nightly window at 22:00 Berlin wall-clock and 10 real hours across the March change", () => {
    const nightly = windows({ schedule: "0 22 * * *", duration: "10h", timezone: "Europe/Berlin", reason: "Nightly" });
    // Saturday 22:00 CET is 21:00Z; Sunday 22:00 CEST is 20:00Z: the start instant moves by an hour.
    expect(frozenUntil(nightly, "2026-03-28T20:59:59Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-03-28T21:00:00Z")).toBe("2026-03-29T07:00:00.000Z");
    expect(frozenUntil(nightly, "2026-03-29T06:59:59Z")).toBe("2026-03-29T07:00:00.000Z");
    expect(frozenUntil(nightly, "2026-03-29T07:00:00Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-03-29T19:59:59Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-03-29T20:00:00Z")).toBe("2026-03-30T06:00:00.000Z");
  });

  it("keeps the nightly Berlin window at 22:00 wall-clock across the October change", () => {
    const nightly = windows({ schedule: "0 22 * * *", duration: "10h", timezone: "Europe/Berlin", reason: "Nightly" });
    expect(frozenUntil(nightly, "2026-10-24T19:59:59Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-10-24T20:00:00Z")).toBe("2026-10-25T06:00:00.000Z");
    expect(frozenUntil(nightly, "2026-10-25T20:59:59Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-10-25T21:00:00Z")).toBe("2026-10-26T07:00:00.000Z");
  });

  it("keeps a nightly New York window at 22:00 wall-clock across the March and November changes", () => {
    const nightly = windows({ schedule: "0 22 * * *", duration: "10h", timezone: "America/New_York", reason: "Nightly" });
    expect(frozenUntil(nightly, "2026-03-08T02:59:59Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-03-08T03:00:00Z")).toBe("2026-03-08T13:00:00.000Z");
    expect(frozenUntil(nightly, "2026-03-09T01:59:59Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-03-09T02:00:00Z")).toBe("2026-03-09T12:00:00.000Z");
    expect(frozenUntil(nightly, "2026-11-01T02:00:00Z")).toBe("2026-11-01T12:00:00.000Z");
    expect(frozenUntil(nightly, "2026-11-02T02:59:59Z")).toBe("open");
    expect(frozenUntil(nightly, "2026-11-02T03:00:00Z")).toBe("2026-11-02T13:00:00.000Z");
  });

  it("measures a one-off window across each change in wall-clock time at both ends", () => {
    const list = windows(
      { from: "2026-03-28T20:00", until: "2026-03-29T08:00", timezone: "Europe/Berlin", reason: "Berlin spring" },
      { from: "2026-10-24T20:00", until: "2026-10-25T08:00", timezone: "Europe/Berlin", reason: "Berlin autumn" },
      { from: "2026-03-07T23:00", until: "2026-03-08T05:00", timezone: "America/New_York", reason: "New York spring" },
      { from: "2026-10-31T23:00", until: "2026-11-01T03:00", timezone: "America/New_York", reason: "New York autumn" },
    );
    expect(list.map((w) => (w.kind === "once" ? (w.until - w.from) / HOUR : 0))).toEqual([11, 13, 5, 5]);
    expect(frozenUntil(list, "2026-03-29T05:59:59Z")).toBe("2026-03-29T06:00:00.000Z");
    expect(frozenUntil(list, "2026-10-24T18:00:00Z")).toBe("2026-10-25T07:00:00.000Z");
    expect(frozenUntil(list, "2026-03-08T04:00:00Z")).toBe("2026-03-08T09:00:00.000Z");
    expect(frozenUntil(list, "2026-11-01T07:59:59Z")).toBe("2026-11-01T08:00:00.000Z");
    expect(frozenUntil(list, "2026-11-01T08:00:00Z")).toBe("open");
  });

  it("starts a window set in the spring gap after the gap, and one at an ambiguous autumn time only once", () => {
    const gap = windows({ schedule: "30 2 * * *", duration: "1h", timezone: "Europe/Berlin", reason: "Backups" });
    // 02:30 does not exist on 29 March: the window starts at 03:30 CEST (01:30Z).
    expect(frozenUntil(gap, "2026-03-29T01:29:59Z")).toBe("open");
    expect(frozenUntil(gap, "2026-03-29T01:30:00Z")).toBe("2026-03-29T02:30:00.000Z");
    const twice = windows({ schedule: "30 2 * * *", duration: "30m", timezone: "Europe/Berlin", reason: "Backups" });
    // 02:30 happens twice on 25 October: the window starts at the first (02:30 CEST, 00:30Z) only.
    expect(frozenUntil(twice, "2026-10-25T00:30:00Z")).toBe("2026-10-25T01:00:00.000Z");
    expect(frozenUntil(twice, "2026-10-25T01:30:00Z")).toBe("open");
    // A schedule that repeats within the hour (a * in the minute or hour field, like cron's wildcard
    // jobs) also starts in the second pass of the repeated hour, so it leaves no hole that night.
    const halfHourly = windows({ schedule: "*/30 * * * *", duration: "30m", timezone: "Europe/Berlin", reason: "Always" });
    expect(frozenUntil(halfHourly, "2026-10-25T01:15:00Z")).not.toBe("open");
    expect(freezeAt(halfHourly, Date.parse("2026-10-24T12:00:00Z"))?.until).toBeGreaterThan(Date.parse("2027-10-24T12:00:00Z"));
    const ny = windows({ schedule: "30 2 * * *", duration: "1h", timezone: "America/New_York", reason: "Backups" });
    expect(frozenUntil(ny, "2026-03-08T07:30:00Z")).toBe("2026-03-08T08:30:00.000Z");
    expect(frozenUntil(ny, "2026-03-08T07:29:59Z")).toBe("open");
  });

  it("follows overlapping and back-to-back windows to the first moment nothing covers", () => {
    const list = windows(
      { from: "2026-12-04T10:00", until: "2026-12-04T13:00", reason: "Release", timezone: "Europe/Berlin" },
      { from: "2026-12-04T12:00", until: "2026-12-04T15:00", reason: "Release, part two" },
      { from: "2026-12-04T14:00", until: "2026-12-04T16:00", reason: "Overlap" },
      { from: "2026-12-04T16:00:01", until: "2026-12-04T17:00", reason: "A second later" },
    );
    expect(freezeAt(list, Date.parse("2026-12-04T09:30:00Z"))).toEqual({
      until: Date.parse("2026-12-04T16:00:00Z"),
      reason: "Release",
      timezone: "UTC",
      reasons: ["Release", "Release, part two", "Overlap"],
    });
    expect(freezeAt(list, Date.parse("2026-12-04T16:00:00Z"))).toBeUndefined();
  });

  it("stays frozen when a recurring window starts again the moment another ends", () => {
    const list = windows(
      { schedule: "0 22 * * *", duration: "10h", timezone: "Europe/Berlin", reason: "Nightly" },
      { schedule: "0 8 * * MON-FRI", duration: "1h", timezone: "Europe/Berlin", reason: "Stand-up" },
      { schedule: "0 18 * * FRI", duration: "2d14h", timezone: "Europe/Berlin", reason: "Weekend" },
    );
    // Thursday 23:00 Berlin: nightly to Friday 08:00, stand-up to 09:00, then open.
    expect(frozenUntil(list, "2026-12-03T22:00:00Z")).toBe("2026-12-04T08:00:00.000Z");
    // Friday 18:00 Berlin: weekend to Monday 08:00, stand-up to 09:00; the nightly window inside adds nothing.
    expect(freezeAt(list, Date.parse("2026-12-04T17:00:00Z"))).toEqual({
      until: Date.parse("2026-12-07T08:00:00Z"),
      reason: "Weekend",
      timezone: "Europe/Berlin",
      reasons: ["Weekend", "Stand-up"],
    });
    const hourly = windows({ schedule: "0 * * * *", duration: "1h", reason: "Every hour, end to end" });
    const now = Date.parse("2026-12-04T10:30:00Z");
    const forever = freezeAt(hourly, now);
    expect(forever?.until).toBeGreaterThan(now + 365 * DAY);
  });
});

describe("describeUntil", () => {
  const now = Date.parse("2026-12-04T10:00:00Z"); // Friday
  it("gives the weekday and 24-hour time in the zone, and the date when more than 6 days away", () => {
    expect(describeUntil(Date.parse("2026-12-07T08:00:00Z"), "Europe/Berlin", { now })).toBe("Monday 09:00 Europe/Berlin");
    expect(describeUntil(Date.parse("2026-12-07T14:00:00Z"), "America/New_York", { now })).toBe("Monday 09:00 America/New_York");
    expect(describeUntil(Date.parse("2026-12-04T17:30:00Z"), "UTC", { now })).toBe("Friday 17:30 UTC");
    expect(describeUntil(Date.parse("2026-12-10T09:59:00Z"), "UTC", { now })).toBe("Thursday 09:59 UTC");
    expect(describeUntil(Date.parse("2026-12-14T08:00:00Z"), "Europe/Berlin", { now })).toBe("Monday 14 Dec 09:00 Europe/Berlin");
    expect(describeUntil(Date.parse("2027-01-04T08:00:00Z"), "Europe/Berlin", { now })).toBe("Monday 4 Jan 2027 09:00 Europe/Berlin");
    expect(describeUntil(Date.parse("2026-12-04T17:30:15Z"), "UTC", { now })).toBe("Friday 17:30:15 UTC");
  });
});
