import { describe, expect, it } from "vitest";
import { instantOf, parseTimeIn, parseWallClock, timeZoneSchema, wallClockOf } from "../../../src/core/time-zone.ts";

/** The instant a wall-clock time in a zone stands for, as an ISO string in UTC. */
function utc(wall: string, timeZone: string): string {
  const parsed = parseWallClock(wall);
  if (parsed === undefined) throw new Error(`not a wall-clock time: ${wall}`);
  return new Date(instantOf(parsed, timeZone)).toISOString();
}

/** The wall-clock time an instant shows in a zone. */
function wall(instant: string, timeZone: string): string {
  return new Date(wallClockOf(Date.parse(instant), timeZone)).toISOString().slice(0, 19);
}

describe("instantOf", () => {
  it("converts Europe/Berlin wall-clock times on both sides of the last Sunday of March 2026", () => {
    expect(utc("2026-03-28T22:00", "Europe/Berlin")).toBe("2026-03-28T21:00:00.000Z");
    expect(utc("2026-03-29T01:59", "Europe/Berlin")).toBe("2026-03-29T00:59:00.000Z");
    expect(utc("2026-03-29T03:00", "Europe/Berlin")).toBe("2026-03-29T01:00:00.000Z");
    expect(utc("2026-03-29T22:00", "Europe/Berlin")).toBe("2026-03-29T20:00:00.000Z");
  });

  it("moves a time in the spring-forward gap forward by the gap (02:30 → 03:30 CEST)", () => {
    expect(utc("2026-03-29T02:00", "Europe/Berlin")).toBe("2026-03-29T01:00:00.000Z");
    expect(utc("2026-03-29T02:30", "Europe/Berlin")).toBe("2026-03-29T01:30:00.000Z");
    expect(utc("2026-03-08T02:30", "America/New_York")).toBe("2026-03-08T07:30:00.000Z");
  });

  it("takes the first of the two instants of an ambiguous autumn time", () => {
    expect(utc("2026-10-25T02:30", "Europe/Berlin")).toBe("2026-10-25T00:30:00.000Z");
    expect(utc("2026-10-25T03:00", "Europe/Berlin")).toBe("2026-10-25T02:00:00.000Z");
    expect(utc("2026-11-01T01:30", "America/New_York")).toBe("2026-11-01T05:30:00.000Z");
    expect(utc("2026-11-01T02:00", "America/New_York")).toBe("2026-11-01T07:00:00.000Z");
  });

  it("converts America/New_York on both sides of the second Sunday of March and the first of November 2026", () => {
    expect(utc("2026-03-07T22:00", "America/New_York")).toBe("2026-03-08T03:00:00.000Z");
    expect(utc("2026-03-08T22:00", "America/New_York")).toBe("2026-03-09T02:00:00.000Z");
    expect(utc("2026-10-31T22:00", "America/New_York")).toBe("2026-11-01T02:00:00.000Z");
    expect(utc("2026-11-01T22:00", "America/New_York")).toBe("2026-11-02T03:00:00.000Z");
  });

  it("handles zones without daylight saving and with half-hour offsets", () => {
    expect(utc("2026-07-01T12:00", "UTC")).toBe("2026-07-01T12:00:00.000Z");
    expect(utc("2026-07-01T12:00", "Asia/Kolkata")).toBe("2026-07-01T06:30:00.000Z");
    // Lord Howe moves by half an hour: 02:00 → 02:30 on the first Sunday of October.
    expect(utc("2026-10-04T02:15", "Australia/Lord_Howe")).toBe("2026-10-03T15:45:00.000Z");
  });
});

describe("wallClockOf", () => {
  it("shows an instant in the zone's wall-clock time across the changes", () => {
    expect(wall("2026-03-29T00:59:59Z", "Europe/Berlin")).toBe("2026-03-29T01:59:59");
    expect(wall("2026-03-29T01:00:00Z", "Europe/Berlin")).toBe("2026-03-29T03:00:00");
    expect(wall("2026-10-25T00:30:00Z", "Europe/Berlin")).toBe("2026-10-25T02:30:00");
    expect(wall("2026-10-25T01:30:00Z", "Europe/Berlin")).toBe("2026-10-25T02:30:00");
    expect(wall("2026-11-01T06:00:00Z", "America/New_York")).toBe("2026-11-01T01:00:00");
  });
});

describe("parseWallClock", () => {
  it("reads YYYY-MM-DDTHH:MM with optional seconds and refuses dates that do not exist", () => {
    expect(parseWallClock("2026-12-24T18:00")).toBe(Date.UTC(2026, 11, 24, 18, 0));
    expect(parseWallClock("2026-12-24T18:00:30")).toBe(Date.UTC(2026, 11, 24, 18, 0, 30));
    expect(parseWallClock("2026-02-30T10:00")).toBeUndefined();
    expect(parseWallClock("2026-12-24T24:00")).toBeUndefined();
    expect(parseWallClock("24.12.2026 18:00")).toBeUndefined();
    expect(parseWallClock("0026-12-24T18:00")).toBe(new Date("0026-12-24T18:00:00Z").getTime());
  });
});

describe("parseTimeIn", () => {
  it("reads wall-clock times in the zone, and ISO times with Z or an offset (with or without a colon, with fractions) as they are", () => {
    const at = (text: string) => {
      const instant = parseTimeIn(text, "Europe/Berlin");
      return instant === undefined ? "refused" : new Date(instant).toISOString();
    };
    expect(at("2026-12-24T18:00")).toBe("2026-12-24T17:00:00.000Z");
    expect(at("2026-12-24T18:00Z")).toBe("2026-12-24T18:00:00.000Z");
    expect(at("2026-12-24T18:00:00.250Z")).toBe("2026-12-24T18:00:00.250Z");
    expect(at("2026-12-24T18:00:00-05:00")).toBe("2026-12-24T23:00:00.000Z");
    expect(at("2026-12-24T18:00+0530")).toBe("2026-12-24T12:30:00.000Z");
    expect(at("2026-12-24T18:00+01")).toBe("2026-12-24T17:00:00.000Z");
    expect(at("2026-12-24T18:00+25:00")).toBe("refused");
    expect(at("2026-12-24T18:00 Europe/Berlin")).toBe("refused");
  });
});

describe("timeZoneSchema", () => {
  it("accepts IANA names, in their canonical spelling", () => {
    expect(timeZoneSchema.parse("Europe/Berlin")).toBe("Europe/Berlin");
    expect(timeZoneSchema.parse("europe/berlin")).toBe("Europe/Berlin");
    expect(timeZoneSchema.parse("UTC")).toBe("UTC");
  });

  it("refuses an unknown zone or a bare offset, naming the value", () => {
    expect(timeZoneSchema.safeParse("Europe/Berln").error?.issues[0]?.message).toBe(
      'is not a time zone: "Europe/Berln"; use an IANA name such as Europe/Berlin, America/New_York or UTC',
    );
    expect(timeZoneSchema.safeParse("Berlin").error?.issues[0]?.message).toBe(
      'is not a time zone: "Berlin"; did you mean "Europe/Berlin"?',
    );
    expect(timeZoneSchema.safeParse("+01:00").error?.issues[0]?.message).toBe(
      'is not a time zone: "+01:00" is a fixed offset; use an IANA name such as Europe/Berlin (or Etc/GMT-1 for a fixed offset)',
    );
  });
});
