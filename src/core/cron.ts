import { z } from "zod";

// Five-field cron schedules (minute hour day-of-month month day-of-week), matched against wall-clock
// times (see time-zone.ts): the caller turns each matching wall-clock time into an instant in its zone.

/** A parsed cron expression: the values each field allows, ascending. */
export interface CronSchedule {
  /** The expression as written, whitespace collapsed. */
  expression: string;
  minutes: number[];
  hours: number[];
  days: number[];
  months: number[];
  /** 0 is Sunday (7 in the expression is Sunday too). */
  weekdays: number[];
  /** The day-of-month field does not start with `*`; with weekdayRestricted, either day field may match (as in cron). */
  dayRestricted: boolean;
  /** The day-of-week field does not start with `*`. */
  weekdayRestricted: boolean;
  /**
   * The minute or the hour field starts with `*`: the schedule repeats within the day, and (like
   * cron's wildcard jobs) it also matches in the second pass of an hour that clocks go back over.
   */
  wildcardTime: boolean;
}

interface Field {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  nameHint?: string;
}

const MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] as const;
const WEEKDAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] as const;
const FIELDS: readonly Field[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTH_NAMES, nameHint: "JAN-DEC" },
  { name: "day-of-week", min: 0, max: 7, names: WEEKDAY_NAMES, nameHint: "SUN-SAT" },
];
// The longest month each month can have (February in a leap year).
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

class CronFieldError extends Error {}

function fieldValue(text: string, field: Field, whole: string): number {
  const index = field.names?.indexOf(text.toUpperCase()) ?? -1;
  if (index >= 0) return index + (field.name === "month" ? 1 : 0);
  const names = field.nameHint ? ` or a name ${field.nameHint}` : "";
  if (!/^\d+$/.test(text))
    throw new CronFieldError(`${field.name} ${JSON.stringify(whole)} is not a number ${field.min}-${field.max}${names}`);
  const value = Number(text);
  if (value < field.min || value > field.max) {
    throw new CronFieldError(`${field.name} ${JSON.stringify(whole)} is out of range ${field.min}-${field.max}`);
  }
  return value;
}

/** One comma-separated item: `*`, `*\/n`, `a`, `a-b`, `a-b/n` or `a/n` (a to the field's end, every n). */
function itemValues(item: string, field: Field, whole: string): number[] {
  if (item === "") throw new CronFieldError(`${field.name} ${JSON.stringify(whole)} has an empty list item`);
  const [range = "", step, extra] = item.split("/");
  if (extra !== undefined || (step !== undefined && !/^\d+$/.test(step))) {
    throw new CronFieldError(`${field.name} ${JSON.stringify(whole)} has a step that is not a number`);
  }
  const every = step === undefined ? 1 : Number(step);
  if (every === 0) throw new CronFieldError(`${field.name} ${JSON.stringify(whole)} has a step of 0; a step must be at least 1`);
  let first = field.min;
  let last = field.name === "day-of-week" ? 6 : field.max;
  if (range !== "*") {
    const bounds = range.split("-");
    if (bounds.length > 2) throw new CronFieldError(`${field.name} ${JSON.stringify(whole)} is not a number ${field.min}-${field.max}`);
    first = fieldValue(bounds[0] ?? "", field, whole);
    if (bounds.length === 2) last = fieldValue(bounds[1] ?? "", field, whole);
    else if (step === undefined) last = first;
    if (last < first) throw new CronFieldError(`${field.name} ${JSON.stringify(whole)} is a range that runs backwards`);
  }
  const values: number[] = [];
  for (let value = first; value <= last; value += every) values.push(field.name === "day-of-week" ? value % 7 : value);
  return values;
}

function fieldValues(text: string, field: Field): number[] {
  const values = new Set(text.split(",").flatMap((item) => itemValues(item, field, text)));
  return [...values].sort((a, b) => a - b);
}

/** The outcome of parsing a cron expression: the schedule, or what is wrong with it (field and value named). */
export type CronResult = { ok: true; schedule: CronSchedule } | { ok: false; message: string };

/** Parses a five-field cron expression: `*`, lists, ranges, steps, names JAN-DEC and SUN-SAT, 0 and 7 both Sunday. */
export function parseCron(text: string): CronResult {
  const parts = text
    .trim()
    .split(/\s+/)
    .filter((part) => part !== "");
  const expression = parts.join(" ");
  if (parts.length !== 5) {
    return {
      ok: false,
      message: `must have 5 fields (minute hour day-of-month month day-of-week), not ${parts.length}: ${JSON.stringify(expression)}`,
    };
  }
  try {
    const [minutes, hours, days, months, weekdays] = FIELDS.map((field, index) => fieldValues(parts[index] ?? "", field)) as [
      number[],
      number[],
      number[],
      number[],
      number[],
    ];
    const dayRestricted = !(parts[2] ?? "").startsWith("*");
    const weekdayRestricted = !(parts[4] ?? "").startsWith("*");
    if (dayRestricted && !weekdayRestricted && !days.some((day) => months.some((month) => day <= (MONTH_DAYS[month - 1] ?? 31)))) {
      const day = JSON.stringify(parts[2]);
      throw new CronFieldError(`day-of-month ${day} never occurs in month ${JSON.stringify(parts[3])}`);
    }
    const wildcardTime = (parts[0] ?? "").startsWith("*") || (parts[1] ?? "").startsWith("*");
    return { ok: true, schedule: { expression, minutes, hours, days, months, weekdays, dayRestricted, weekdayRestricted, wildcardTime } };
  } catch (error) {
    if (!(error instanceof CronFieldError)) throw error;
    return { ok: false, message: `${error.message} in ${JSON.stringify(expression)}` };
  }
}

/** A five-field cron expression in the configuration, as a CronSchedule. */
export const cronSchema = z.string().transform((text, ctx) => {
  const result = parseCron(text);
  if (result.ok) return result.schedule;
  ctx.addIssue({ code: "custom", message: result.message, input: text });
  return z.NEVER;
});

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// A schedule that matches at all matches at least once in any eight years plus a day (29 February).
const SEARCH_DAYS = 8 * 366 + 1;

function dayMatches(schedule: CronSchedule, day: number): boolean {
  const date = new Date(day * DAY);
  if (!schedule.months.includes(date.getUTCMonth() + 1)) return false;
  const byDay = schedule.days.includes(date.getUTCDate());
  const byWeekday = schedule.weekdays.includes(date.getUTCDay());
  if (schedule.dayRestricted && schedule.weekdayRestricted) return byDay || byWeekday;
  return byDay && byWeekday;
}

const dayTimes = new WeakMap<CronSchedule, { forward: readonly number[]; backward: readonly number[] }>();

/** The times of day a schedule matches, as milliseconds after midnight, in the order of `direction`. */
function timesOfDay(schedule: CronSchedule, direction: "forward" | "backward"): readonly number[] {
  let times = dayTimes.get(schedule);
  if (!times) {
    const forward = schedule.hours.flatMap((hour) => schedule.minutes.map((minute) => hour * HOUR + minute * MINUTE));
    times = { forward, backward: [...forward].reverse() };
    dayTimes.set(schedule, times);
  }
  return times[direction];
}

/**
 * The wall-clock times a schedule matches, starting at `from` (included when it matches, seconds
 * ignored) and going forward or backward, nearest first. It ends after eight years without a match.
 */
export function* cronTimes(schedule: CronSchedule, from: number, direction: "forward" | "backward"): Generator<number> {
  const start = Math.floor(from / MINUTE) * MINUTE;
  const forward = direction === "forward";
  const times = timesOfDay(schedule, direction);
  const firstDay = Math.floor(start / DAY);
  let misses = 0;
  for (let day = firstDay; misses <= SEARCH_DAYS; day += forward ? 1 : -1) {
    if (!dayMatches(schedule, day)) {
      misses++;
      continue;
    }
    misses = 0;
    for (const time of times) {
      const wall = day * DAY + time;
      if (forward ? wall >= start : wall <= start) yield wall;
    }
  }
}
