import { z } from "zod";

const UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
const MAX_MS = 365 * UNITS.d;

const SHAPE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;
const EXAMPLE = "must be a duration such as 15m, 2h or 1h30m";

/** `15m`, `2h`, `1h30m` → milliseconds, before the limits are checked; undefined when it has not that shape. */
function durationMs(text: string): number | undefined {
  const trimmed = text.trim();
  const match = SHAPE.exec(trimmed);
  if (!match || trimmed === "") return undefined;
  const [, d = "0", h = "0", m = "0", s = "0"] = match;
  return Number(d) * UNITS.d + Number(h) * UNITS.h + Number(m) * UNITS.m + Number(s) * UNITS.s;
}

/** `15m`, `2h`, `1h30m`, `7d`, `90s` → milliseconds; undefined when it is not such a duration, is 0 or is over 365 days. */
export function parseDuration(text: string): number | undefined {
  const ms = durationMs(text);
  return ms !== undefined && ms > 0 && ms <= MAX_MS ? ms : undefined;
}

function notADuration(input: unknown): string {
  if (typeof input === "number") return `${EXAMPLE}, not the number ${input} (a number needs a unit: ${input}m)`;
  return `${EXAMPLE}, not ${JSON.stringify(input)}`;
}

/** A duration in the configuration (`15m`, `2h`, `1h30m`, `7d`; Go-style units s, m, h, d; more than 0, at most 365d), as milliseconds. */
export const durationSchema = z.string({ error: (issue) => notADuration(issue.input) }).transform((text, ctx) => {
  const ms = durationMs(text);
  const message =
    ms === undefined
      ? notADuration(text)
      : ms === 0
        ? `must be longer than 0, not ${JSON.stringify(text)}`
        : ms > MAX_MS
          ? `must be at most 365d, not ${JSON.stringify(text)}`
          : undefined;
  if (message !== undefined) {
    ctx.addIssue({ code: "custom", message, input: text });
    return z.NEVER;
  }
  return ms ?? 0;
});

/** 900000 → `15 min`, 5400000 → `1 h 30 min`, 45000 → `45 s`. */
export function formatDuration(ms: number): string {
  let left = Math.max(0, Math.round(ms / 1000)) * 1000;
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", UNITS.d],
    ["h", UNITS.h],
    ["min", UNITS.m],
    ["s", UNITS.s],
  ] as const) {
    const count = Math.floor(left / size);
    if (count > 0) parts.push(`${count} ${unit}`);
    left -= count * size;
  }
  return parts.length > 0 ? parts.join(" ") : "0 s";
}
