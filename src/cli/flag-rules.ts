import { parseBackendChoice } from "../backend";
import { METRICS } from "../eval/metric";
import { ParsedArgs } from "./args";

/**
 * The range of every value flag, checked in one place before any work, so a bad
 * value fails at once with the flag named instead of being clamped, truncated or
 * accepted (`--target 2`, `--max-raised -3`, `--w-bits 7.5`).
 */
type Rule = { whole: true; min: number; max?: number } | { choices: readonly string[] } | { number: (v: number) => boolean; range: string };

const RANGE_METHODS = ["minmax", "percentile", "sqnr", "mse"];
const SCHEMES = ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"];
const whole = (min: number, max?: number): Rule => ({ whole: true, min, max });
const RULES: Record<string, Rule> = {
  "w-bits": whole(2, 32),
  "a-bits": whole(2, 32),
  calib: whole(1),
  "batch-size": whole(1),
  eval: whole(1),
  "max-raised": whole(0),
  percentile: { number: (v) => v > 0 && v <= 100, range: "in (0, 100]" },
  "range-method": { choices: RANGE_METHODS },
  /** Deprecated alias of --range-method (it never set the scheme). */
  scheme: { choices: RANGE_METHODS },
  "w-scheme": { choices: SCHEMES },
  "a-scheme": { choices: SCHEMES },
  metric: { choices: METRICS },
  granularity: { choices: ["layer", "quantizer"] },
  relu6: { choices: ["relu", "per-channel"] },
};

/** Metrics whose scores are fractions, so a drop from FP32 is below 1. */
const FRACTION_METRICS = ["accuracy", "agreement"];

export function checkFlags(args: ParsedArgs): void {
  for (const [key, value] of args.flags) {
    if (value === true) continue;
    const shown = JSON.stringify(value);
    if (value.trim() === "") throw new Error(`--${key} needs a value, got ${shown}`);
    const rule = RULES[key];
    if (!rule) continue;
    if ("choices" in rule) {
      if (!rule.choices.includes(value)) throw new Error(`--${key} must be one of ${rule.choices.join(", ")}, got ${shown}`);
      continue;
    }
    const n = Number(value);
    if ("whole" in rule) {
      const range = rule.max === undefined ? `≥ ${rule.min}` : `from ${rule.min} to ${rule.max}`;
      if (!Number.isInteger(n) || n < rule.min || n > (rule.max ?? Infinity)) throw new Error(`--${key} must be a whole number ${range}, got ${shown}`);
    } else if (!Number.isFinite(n) || !rule.number(n)) throw new Error(`--${key} must be a number ${rule.range}, got ${shown}`);
  }
  const backend = args.flags.get("backend");
  if (typeof backend === "string") {
    try {
      parseBackendChoice(backend);
    } catch (err) {
      throw new Error(`--backend: ${(err as Error).message}`);
    }
  }
  const target = args.flags.get("target");
  if (typeof target === "string") {
    const metric = args.flags.get("metric");
    const fraction = metric === undefined || FRACTION_METRICS.includes(String(metric));
    const n = Number(target);
    if (!Number.isFinite(n) || n < 0 || (fraction && n >= 1)) {
      const range = fraction ? `from 0 to below 1 for ${metric === undefined ? "the default metric (accuracy or agreement)" : `metric ${metric}`} (0.01 = 1 point)` : "≥ 0";
      throw new Error(`--target is the largest acceptable drop from FP32 and must be ${range}, got ${JSON.stringify(target)}`);
    }
  }
  const outputs = args.flags.get("outputs");
  if (typeof outputs === "string" && outputs.split(",").some((s) => s.trim() === "")) {
    throw new Error(`--outputs takes tensor names separated by commas (e.g. --outputs Identity,Identity_1), got ${JSON.stringify(outputs)}`);
  }
  if (args.flags.has("scheme") && args.flags.has("range-method")) throw new Error("--scheme is the old name of --range-method; give only --range-method");
  if (args.flags.has("per-channel") && args.flags.has("no-per-channel")) throw new Error("--per-channel and --no-per-channel contradict each other; give one");
}
