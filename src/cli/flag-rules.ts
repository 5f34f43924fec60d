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
  peak: { number: (v) => v > 0, range: "> 0 (the largest signal: 255 for 8-bit pixels, 1 for [0, 1])" },
  "min-psnr": { number: () => true, range: "in dB" },
  "min-sqnr": { number: () => true, range: "in dB" },
  "min-cosine": { number: (v) => v >= -1 && v <= 1, range: "from −1 to 1" },
  "min-agreement": { number: (v) => v >= 0 && v <= 1, range: "from 0 to 1 (0.99 = 99 %)" },
  "min-accuracy": { number: (v) => v >= 0 && v <= 1, range: "from 0 to 1 (0.9 = 90 %)" },
  "max-mse": { number: (v) => v >= 0, range: "≥ 0" },
};

/** Flags that take numbers separated by commas, and how many. */
const LISTS: Record<string, { count?: number; check?: (v: number[]) => string | undefined; example: string }> = {
  "input-range": { count: 2, check: (v) => (v[0] < v[1] ? undefined : "the low end must be below the high end"), example: "--input-range 0,255" },
  mean: { example: "--mean 0.485,0.456,0.406 (or one number)" },
  std: { check: (v) => (v.every((x) => x > 0) ? undefined : "every std must be > 0"), example: "--std 0.229,0.224,0.225 (or one number)" },
};

/** Fidelity metrics (scores against FP32) and their absolute target flags. */
// (agreement, cosine and mse take --target too: a drop from identical outputs' 1, 1 and 0.)
const FIDELITY_TARGETS: Record<string, string> = { psnr: "--min-psnr 40", sqnr: "--min-sqnr 30" };

/** Metrics whose scores are fractions, so a drop from FP32 is below 1. */
const FRACTION_METRICS = ["accuracy", "agreement"];

export function checkFlags(args: ParsedArgs): void {
  for (const [key, value] of args.flags) {
    if (value === true) continue;
    const shown = JSON.stringify(value);
    if (value.trim() === "") throw new Error(`--${key} needs a value, got ${shown}`);
    const list = LISTS[key];
    if (list) {
      const values = value.split(",").map((v) => Number(v.trim()));
      const why = values.some((v) => !Number.isFinite(v)) ? "numbers separated by commas" : list.count !== undefined && values.length !== list.count ? `${list.count} numbers` : list.check?.(values);
      if (why) throw new Error(`--${key} takes ${why.includes("number") ? why : `numbers: ${why}`} (${list.example}), got ${shown}`);
      continue;
    }
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
  const targets = ["target", "min-psnr", "min-sqnr", "min-cosine", "min-agreement", "min-accuracy", "max-mse"].filter((f) => args.flags.has(f));
  if (targets.length > 1) throw new Error(`give one target, got ${targets.map((t) => `--${t}`).join(" and ")}`);
  const metricFlag = args.flags.get("metric");
  if (targets.length === 1 && targets[0] !== "target" && typeof metricFlag === "string" && targets[0].replace(/^(min|max)-/, "") !== metricFlag) {
    throw new Error(`--${targets[0]} sets the metric to ${targets[0].replace(/^(min|max)-/, "")}, but --metric is ${metricFlag}; give one`);
  }
  const target = args.flags.get("target");
  if (typeof target === "string" && !(Number(target) >= 0)) throw new Error(`--target is the largest acceptable drop from FP32 and must be ≥ 0, got ${JSON.stringify(target)}`);
  if (typeof target === "string" && typeof metricFlag === "string" && FIDELITY_TARGETS[metricFlag]) {
    throw new Error(`--target is a drop from FP32's own score, but metric ${metricFlag} scores the model against FP32, which has no score of its own: give an absolute target, ${FIDELITY_TARGETS[metricFlag]}`);
  }
  if (typeof target === "string") {
    const metric = args.flags.get("metric");
    const fraction = metric === undefined || FRACTION_METRICS.includes(String(metric));
    const n = Number(target);
    if (!Number.isFinite(n) || n < 0 || (fraction && n >= 1)) {
      const range = fraction ? `from 0 to below 1 for ${metric === undefined ? "the default metric (accuracy or agreement)" : `metric ${metric}`} (0.01 = 1 point)` : "≥ 0";
      throw new Error(`--target is the largest acceptable drop from FP32 and must be ${range}, got ${JSON.stringify(target)}`);
    }
  }
  const scored = args.flags.get("score-outputs");
  if (typeof scored === "string" && scored.split(",").some((part) => !/^[^=,\s]+(=\s*[0-9.eE+-]+)?$/.test(part.trim()) || (part.includes("=") && !(Number(part.split("=")[1]) >= 0)))) {
    throw new Error(`--score-outputs takes output names, each with an optional weight ≥ 0 (e.g. --score-outputs boxes=2,scores=1), got ${JSON.stringify(scored)}`);
  }
  const outputs = args.flags.get("outputs");
  if (typeof outputs === "string" && outputs.split(",").some((s) => s.trim() === "")) {
    throw new Error(`--outputs takes tensor names separated by commas (e.g. --outputs Identity,Identity_1), got ${JSON.stringify(outputs)}`);
  }
  if (args.flags.has("scheme") && args.flags.has("range-method")) throw new Error("--scheme is the old name of --range-method; give only --range-method");
  if (args.flags.has("per-channel") && args.flags.has("no-per-channel")) throw new Error("--per-channel and --no-per-channel contradict each other; give one");
}
