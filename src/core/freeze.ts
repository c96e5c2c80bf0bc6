import { z } from "zod";
import { cronSchema, cronTimes, type CronSchedule } from "./cron.ts";
import { durationSchema } from "./duration.ts";
import { instantOf, instantsOf, offsetShiftNear, parseTimeIn, parseWallClock, timeZoneSchema, wallClockOf } from "./time-zone.ts";

/** A one-off freeze: from one instant up to (not including) another. */
export interface OneOffFreeze {
  kind: "once";
  /** Milliseconds since the epoch. */
  from: number;
  /** Milliseconds since the epoch; after `from`. */
  until: number;
  timezone: string;
  reason: string;
}

/** A recurring freeze: starts at each wall-clock time its schedule matches in `timezone`, lasts `duration` real milliseconds. */
export interface RecurringFreeze {
  kind: "recurring";
  schedule: CronSchedule;
  duration: number;
  timezone: string;
  reason: string;
}

/** A time when an environment applies nothing: one-off, or recurring (told apart by `schedule`). */
export type FreezeWindow = OneOffFreeze | RecurringFreeze;

const TIME_SHAPE =
  "must be a wall-clock time such as 2026-12-24T18:00 (in timezone) or an ISO time with an offset such as 2026-12-24T18:00+01:00";

const windowFields = z.strictObject({
  from: z
    .string()
    .optional()
    .describe("One-off window: its start, as wall-clock time in `timezone` (2026-12-24T18:00) or an ISO time with an offset."),
  until: z.string().optional().describe("One-off window: its end, like `from` (the environment applies again from this moment)."),
  schedule: cronSchema
    .optional()
    .describe(
      "Recurring window: when each one starts, a 5-field cron expression in `timezone` (minute hour day-of-month month day-of-week: `0 18 * * FRI`).",
    ),
  duration: durationSchema.optional().describe("Recurring window: how long each one lasts (10h, 2d15h), in real time."),
  timezone: timeZoneSchema.prefault("UTC").describe("IANA time zone of the window's wall-clock times (Europe/Berlin)."),
  reason: z
    .string({ error: (issue) => (issue.input === undefined ? "is required (why the environment is frozen)" : "must be a string") })
    .trim()
    .min(1, "must not be empty")
    .max(200, {
      error: (issue) => `must be at most 200 characters, not ${typeof issue.input === "string" ? issue.input.length : "a string"}`,
    })
    .describe("Why the environment is frozen; shown on the deploy check run."),
});
type WindowFields = z.output<typeof windowFields>;
type Issues = { path: string[]; message: string }[];

/** What is misplaced or missing in a window's fields, for the kind that `schedule` selects. */
function shapeIssues(fields: WindowFields): Issues {
  if (fields.schedule !== undefined) {
    const issues: Issues = (["from", "until"] as const)
      .filter((key) => fields[key] !== undefined)
      .map((key) => ({ path: [key], message: "is for a one-off window; a recurring window (schedule) lasts for duration" }));
    if (fields.duration === undefined) {
      issues.push({ path: ["duration"], message: "is required for a recurring window (how long each one lasts, such as 2h)" });
    }
    return issues;
  }
  if (fields.from === undefined && fields.until === undefined && fields.duration === undefined) {
    return [{ path: [], message: "needs from and until (a one-off window) or schedule and duration (a recurring window)" }];
  }
  const issues: Issues = [];
  if (fields.duration !== undefined) {
    issues.push({ path: ["duration"], message: "is for a recurring window; give schedule, or from and until for a one-off window" });
  }
  for (const key of ["from", "until"] as const) {
    if (fields[key] === undefined)
      issues.push({ path: [key], message: "is required for a one-off window (or give schedule and duration)" });
  }
  return issues;
}

/** The instants of a one-off window, or what is wrong with its times. */
function oneOffTimes(from: string, until: string, timezone: string): { from: number; until: number } | Issues {
  const start = parseTimeIn(from, timezone);
  const end = parseTimeIn(until, timezone);
  const issues: Issues = [];
  if (start === undefined) issues.push({ path: ["from"], message: `${TIME_SHAPE}, not ${JSON.stringify(from)}` });
  if (end === undefined) issues.push({ path: ["until"], message: `${TIME_SHAPE}, not ${JSON.stringify(until)}` });
  if (start === undefined || end === undefined) return issues;
  if (end <= start) {
    const shown = parseWallClock(from.trim()) === undefined ? from : `${from} ${timezone}`;
    return [{ path: ["until"], message: `must be after from (${shown}), not ${JSON.stringify(until)}` }];
  }
  return { from: start, until: end };
}

/** A time when an environment applies nothing: `{ from, until, timezone, reason }` or `{ schedule, duration, timezone, reason }`. */
export const freezeWindowSchema = windowFields.transform((fields, ctx): FreezeWindow => {
  const report = (issues: Issues) => {
    for (const issue of issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message, input: fields });
    return z.NEVER;
  };
  const shape = shapeIssues(fields);
  if (shape.length > 0) return report(shape);
  const { timezone, reason } = fields;
  if (fields.schedule !== undefined && fields.duration !== undefined) {
    return { kind: "recurring", schedule: fields.schedule, duration: fields.duration, timezone, reason };
  }
  const times = oneOffTimes(fields.from ?? "", fields.until ?? "", timezone);
  if (Array.isArray(times)) return report(times);
  return { kind: "once", ...times, timezone, reason };
});

/** An environment's freeze at a moment: when it really ends, why, and the zone to show the end in. */
export interface Freeze {
  /** The first moment no window covers, following overlapping and back-to-back windows (milliseconds since the epoch). */
  until: number;
  /** The reason of the window that freezes the environment now. */
  reason: string;
  /** The time zone of the window that ends last, to show `until` in. */
  timezone: string;
  /** The reasons of every window the freeze runs through, in order, without repeats. */
  reasons: string[];
}

const DAY = 86_400_000;
/** How far past `now` freezeAt follows a freeze: one that recurring windows keep closed for longer is said to end about here. */
export const FREEZE_FOLLOW_LIMIT = 366 * DAY;
// A freeze that passes from one window to another more often than this is followed only this far
// (two windows of a minute each, taking turns, reach about a week), so freezeAt stays fast.
const FOLLOW_STEPS = 10_000;

/**
 * The instants occurrences of a recurring window start at for one wall-clock time its schedule
 * matches: one (a time in the spring gap moves forward by the gap, an ambiguous autumn time is the
 * earlier instant), or both instants of an ambiguous time for a schedule that repeats within the hour.
 */
function startsOf(window: RecurringFreeze, wall: number): number[] {
  return window.schedule.wildcardTime ? instantsOf(wall, window.timezone) : [instantOf(wall, window.timezone)];
}

/** The wall-clock times around an instant beyond which every wall-clock time stands for an earlier (later) instant. */
function wallBounds(instant: number, timeZone: string): { below: number; above: number } {
  const wall = wallClockOf(instant, timeZone);
  const shift = offsetShiftNear(instant, timeZone);
  return { below: wall - shift, above: wall + shift };
}

/** The latest start of a recurring window at or before `at` whose occurrence still covers `at`. */
function coveringStart(window: RecurringFreeze, at: number): number | undefined {
  const bottom = wallBounds(at - window.duration, window.timezone).below;
  let floor = bottom;
  let start: number | undefined;
  for (const wall of cronTimes(window.schedule, wallBounds(at, window.timezone).above, "backward")) {
    if (wall < floor) break;
    for (const instant of startsOf(window, wall)) {
      if (instant <= at && instant + window.duration > at && (start === undefined || instant > start)) {
        start = instant;
        floor = Math.max(bottom, wallBounds(start, window.timezone).below);
      }
    }
  }
  return start;
}

/** When a window's cover of `at` ends, following its own occurrences that start before each ends (up to `limit`); undefined when it does not cover `at`. */
function coverEnd(window: FreezeWindow, at: number, limit: number): number | undefined {
  if (window.kind === "once") return window.from <= at && at < window.until ? window.until : undefined;
  const start = coveringStart(window, at);
  if (start === undefined) return undefined;
  let end = start + window.duration;
  let ceiling = wallBounds(end, window.timezone).above;
  for (const wall of cronTimes(window.schedule, wallBounds(start, window.timezone).below, "forward")) {
    if (wall > ceiling || end > limit) break;
    for (const instant of startsOf(window, wall)) {
      if (instant <= end && instant + window.duration > end) {
        end = instant + window.duration;
        ceiling = wallBounds(end, window.timezone).above;
      }
    }
  }
  return end;
}

/** The window covering `at` whose cover lasts longest (the first listed on a tie), and when that cover ends. */
function longestCover(windows: readonly FreezeWindow[], at: number, limit: number): { window: FreezeWindow; end: number } | undefined {
  let best: { window: FreezeWindow; end: number } | undefined;
  for (const window of windows) {
    const end = coverEnd(window, at, limit);
    if (end !== undefined && (best === undefined || end > best.end)) best = { window, end };
  }
  return best;
}

/**
 * Whether an environment with these freeze windows is frozen at `now`, and if so until when: the
 * first moment no window covers, found by following overlapping and back-to-back windows (a window
 * that starts the moment another ends keeps the environment frozen). Undefined when none covers `now`.
 */
export function freezeAt(windows: readonly FreezeWindow[], now: number): Freeze | undefined {
  const limit = now + FREEZE_FOLLOW_LIMIT;
  const first = longestCover(windows, now, limit);
  if (!first) return undefined;
  let { window: last, end: until } = first;
  const reasons = [first.window.reason];
  for (let step = 0; step < FOLLOW_STEPS && until <= limit; step++) {
    const next = longestCover(windows, until, limit);
    if (!next) break;
    ({ window: last, end: until } = next);
    if (!reasons.includes(last.reason)) reasons.push(last.reason);
  }
  return { until, reason: first.window.reason, timezone: last.timezone, reasons };
}

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"] as const;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;

/**
 * When a freeze ends, for people: the weekday and 24-hour time in `timezone` and the zone
 * (`Monday 09:00 Europe/Berlin`), with the date when more than 6 days after `now` (`Monday 14 Dec 09:00
 * Europe/Berlin`) and the year when that is another year.
 */
export function describeUntil(until: number, timezone: string, options: { now: number }): string {
  const wall = new Date(wallClockOf(until, timezone));
  const pad = (n: number) => String(n).padStart(2, "0");
  const seconds = wall.getUTCSeconds() === 0 ? "" : `:${pad(wall.getUTCSeconds())}`;
  const parts: string[] = [WEEKDAYS[wall.getUTCDay()] ?? ""];
  if (until - options.now > 6 * DAY) {
    parts.push(`${wall.getUTCDate()} ${MONTHS[wall.getUTCMonth()] ?? ""}`);
    const year = wall.getUTCFullYear();
    if (year !== new Date(wallClockOf(options.now, timezone)).getUTCFullYear()) parts.push(String(year));
  }
  parts.push(`${pad(wall.getUTCHours())}:${pad(wall.getUTCMinutes())}${seconds}`, timezone);
  return parts.join(" ");
}
