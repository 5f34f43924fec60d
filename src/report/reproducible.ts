/**
 * What keeps two runs' files byte-identical: the date comes from
 * SOURCE_DATE_EPOCH when it is set (the reproducible-builds convention), and
 * timing fields stay out of written files (the terminal shows them).
 */

/** The report's date, YYYY-MM-DD (UTC): SOURCE_DATE_EPOCH's when set, else today's. */
export function reportDate(env: NodeJS.ProcessEnv = process.env): string {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch === undefined || epoch === "") return new Date().toISOString().slice(0, 10);
  if (!/^\d{1,12}$/.test(epoch)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01, got ${JSON.stringify(epoch)}`);
  return new Date(Number(epoch) * 1000).toISOString().slice(0, 10);
}

const TIMING_KEYS = new Set(["seconds", "elapsedMs"]);

/** A deep copy of plain JSON data without its timing fields (`seconds`, `elapsedMs`). */
export function withoutTimings<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (key, v) => (TIMING_KEYS.has(key) ? undefined : v))) as T;
}
