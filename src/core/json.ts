/**
 * JSON that keeps integers beyond 2^53 exact. Kubernetes objects may carry them (a 64-bit field
 * written in full); a JavaScript number would round them and change what is applied.
 */

interface RawJsonApi {
  rawJSON: (text: string) => object;
  isRawJSON: (value: unknown) => boolean;
}

// JSON.rawJSON and JSON.isRawJSON (Node 22+) are not in TypeScript's es2024 library yet.
const api = JSON as unknown as RawJsonApi;

/** A number that JSON.stringify writes exactly as `digits`. */
export function rawJson(digits: string): object {
  return api.rawJSON(digits);
}

/** Whether a value is a raw JSON number (see {@link rawJson}). */
export function isRawJson(value: unknown): boolean {
  return typeof value === "object" && value !== null && api.isRawJSON(value);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A parsed integer as Kubernetes tools keep it: a number when that is exact, raw JSON up to 64
 * bits, and beyond 64 bits a float (as go-yaml reads it, rounding included).
 */
export function exactInteger(value: bigint): number | object {
  const number = Number(value);
  if (Number.isSafeInteger(number) || value < INT64_MIN || value > INT64_MAX) return number;
  return rawJson(value.toString());
}

/** Parses JSON, keeping integers beyond 2^53 exact. */
export function parseJson(text: string): unknown {
  // A reviver costs a call per value; only text with a 16-digit run can hold such an integer.
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  return JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: { source?: string }) {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source))
      return rawJson(context.source);
    return value;
  } as (key: string, value: unknown) => unknown);
}
