import { z } from "zod";

// Wall-clock time in an IANA time zone, converted to and from instants with Intl alone. A wall-clock
// time is held as a number: the milliseconds the same date and time would be in UTC
// (2026-03-29T02:30 in Berlin → Date.UTC(2026, 2, 29, 2, 30)), so calendar arithmetic on it has no
// daylight-saving steps.

const SECOND = 1_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** No zone's offset from UTC, local mean time included, has been larger than this. */
export const MAX_UTC_OFFSET = 16 * HOUR;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let cached = formatters.get(timeZone);
  if (!cached) {
    cached = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, cached);
  }
  return cached;
}

/** The zone's offset from UTC at an instant, in milliseconds (whole seconds), read from Intl. */
function offsetAt(instant: number, timeZone: string): number {
  const at = Math.floor(instant / SECOND) * SECOND;
  const fields: Record<string, string> = {};
  for (const part of formatter(timeZone).formatToParts(at)) fields[part.type] = part.value;
  const year = Number(fields.year) * (fields.era === "BC" ? -1 : 1) + (fields.era === "BC" ? 1 : 0);
  const wall = new Date(0);
  wall.setUTCFullYear(year, Number(fields.month) - 1, Number(fields.day));
  wall.setUTCHours(Number(fields.hour), Number(fields.minute), Number(fields.second), 0);
  return wall.getTime() - at;
}

/** The offsets around one wall-clock day: before and after its change of offset, and when the change happens. */
interface DayOffsets {
  before: number;
  after: number;
  /** The instant the offset changes; Infinity on a day without a change. */
  change: number;
}

const dayCache = new Map<string, Map<number, DayOffsets>>();
const DAY_CACHE_LIMIT = 20_000;

/**
 * The offsets that can apply to wall-clock times on day `day` (days since 1970-01-01) in a zone.
 * Every instant that shows such a time lies within MAX_UTC_OFFSET of the day, so the offsets at the two
 * ends of that span tell whether the day has a change; a change is then found to the second by bisection.
 * Zones change offset at most once within such a span (about three days).
 */
function dayOffsets(day: number, timeZone: string): DayOffsets {
  let zone = dayCache.get(timeZone);
  if (!zone) dayCache.set(timeZone, (zone = new Map<number, DayOffsets>()));
  const cached = zone.get(day);
  if (cached) return cached;
  let low = day * DAY - MAX_UTC_OFFSET - HOUR;
  let high = (day + 1) * DAY + MAX_UTC_OFFSET + HOUR;
  const before = offsetAt(low, timeZone);
  const after = offsetAt(high, timeZone);
  if (before !== after) {
    // Invariant: the offset at `low` is `before`, at `high` it is not.
    while (high - low > SECOND) {
      const middle = low + Math.floor((high - low) / 2 / SECOND) * SECOND;
      if (offsetAt(middle, timeZone) === before) low = middle;
      else high = middle;
    }
  }
  const result = { before, after, change: before === after ? Infinity : high };
  if (zone.size >= DAY_CACHE_LIMIT) zone.clear();
  zone.set(day, result);
  return result;
}

/**
 * The instant a wall-clock time in a zone stands for. A time that does not exist (in the gap when
 * clocks go forward) moves forward by the gap: 02:30 on the day Berlin goes from 02:00 to 03:00 is
 * 03:30 CEST. A time that happens twice (when clocks go back) is the first, earlier one.
 */
export function instantOf(wall: number, timeZone: string): number {
  const { before, after, change } = dayOffsets(Math.floor(wall / DAY), timeZone);
  const early = wall - before;
  const late = wall - after;
  const earlyShows = early < change;
  const lateShows = late >= change;
  if (earlyShows && lateShows) return Math.min(early, late);
  if (lateShows) return late;
  // Either the time shows before the change, or it is in the gap: then `early`, read with the offset
  // after the change, is the same time moved forward by the gap.
  return early;
}

/** Both instants of a wall-clock time that happens twice (the earlier first); otherwise the one of instantOf. */
export function instantsOf(wall: number, timeZone: string): number[] {
  const { before, after, change } = dayOffsets(Math.floor(wall / DAY), timeZone);
  const early = wall - before;
  const late = wall - after;
  if (early < change && late >= change && early !== late) return [Math.min(early, late), Math.max(early, late)];
  return [instantOf(wall, timeZone)];
}

/**
 * How far the order of wall-clock times around an instant can differ from the order of the instants
 * they stand for: the largest change of offset within about a day of it (0 on most days). A wall-clock
 * time more than this before (after) the one the instant shows stands for an earlier (later) instant.
 */
export function offsetShiftNear(instant: number, timeZone: string): number {
  const day = Math.floor(instant / DAY);
  let shift = 0;
  for (const near of [day - 1, day, day + 1]) {
    const { before, after } = dayOffsets(near, timeZone);
    shift = Math.max(shift, Math.abs(after - before));
  }
  return shift;
}

/** The wall-clock time an instant shows in a zone. */
export function wallClockOf(instant: number, timeZone: string): number {
  const { before, after, change } = dayOffsets(Math.floor(instant / DAY), timeZone);
  return instant + (instant < change ? before : after);
}

const WALL_CLOCK = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/;
const OFFSET = /^(.*?)(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)$/i;

/** `2026-12-24T18:00`, `2026-12-24T18:00:30` or `2026-12-24T18:00:30.250` (a space for the T too) → the wall-clock time; undefined for anything else or a date that does not exist. */
export function parseWallClock(text: string): number | undefined {
  const match = WALL_CLOCK.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute] = match.slice(1, 6).map(Number) as [number, number, number, number, number];
  const second = match[6] === undefined ? 0 : Number(match[6]);
  const millisecond = match[7] === undefined ? 0 : Number(match[7].padEnd(3, "0"));
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millisecond);
  const sameFields =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute;
  return sameFields && second < 60 ? date.getTime() : undefined;
}

/**
 * A time in the configuration → an instant: a wall-clock time in `timeZone` (see parseWallClock), or an
 * ISO time with `Z` or an offset (`2026-12-24T18:00+01:00`, `+0100`, `+01`), which ignores the zone. Undefined when it is neither.
 */
export function parseTimeIn(text: string, timeZone: string): number | undefined {
  const offset = OFFSET.exec(text.trim());
  if (!offset) {
    const wall = parseWallClock(text.trim());
    return wall === undefined ? undefined : instantOf(wall, timeZone);
  }
  const [, clock = "", zulu, sign, hours = "0", minutes = "0"] = offset;
  const wall = parseWallClock(clock);
  if (wall === undefined || Number(hours) > 23 || Number(minutes) > 59) return undefined;
  const shift = zulu ? 0 : (sign === "-" ? -1 : 1) * (Number(hours) * HOUR + Number(minutes) * 60_000);
  return wall - shift;
}

let zoneNames: ReadonlySet<string> | undefined;

function knownZones(): ReadonlySet<string> {
  zoneNames ??= new Set([...Intl.supportedValuesOf("timeZone"), "UTC"]);
  return zoneNames;
}

/** What is wrong with a time zone name, or undefined for an IANA name Intl knows (aliases such as US/Eastern included). */
function timeZoneProblem(name: string): string | undefined {
  if (/^[+-]\d/.test(name)) {
    return `is not a time zone: ${JSON.stringify(name)} is a fixed offset; use an IANA name such as Europe/Berlin (or Etc/GMT-1 for a fixed offset)`;
  }
  if (knownZones().has(name)) return undefined;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return undefined;
  } catch {
    const suffix = `/${name.toLowerCase()}`;
    const guess = [...knownZones()].find((zone) => zone.toLowerCase().endsWith(suffix));
    return guess
      ? `is not a time zone: ${JSON.stringify(name)}; did you mean ${JSON.stringify(guess)}?`
      : `is not a time zone: ${JSON.stringify(name)}; use an IANA name such as Europe/Berlin, America/New_York or UTC`;
  }
}

/** An IANA time zone name (Europe/Berlin), checked against Intl and written as Intl spells it. */
export const timeZoneSchema = z.string().transform((name, ctx) => {
  const problem = timeZoneProblem(name);
  if (problem !== undefined) {
    ctx.addIssue({ code: "custom", message: problem, input: name });
    return z.NEVER;
  }
  return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
});
