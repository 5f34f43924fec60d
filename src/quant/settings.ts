import picomatch from "picomatch";
import { readJsonFile } from "../json-file";
import { validateConfig } from "./config-schema";
import { QuantScheme, validateBitwidth } from "./encoding";

/** How a quantizer's range is found from what calibration saw. */
export type RangeMethod = "minmax" | "percentile" | "sqnr" | "mse";
export type Rounding = "nearest" | "stochastic";

/** Everything that decides one quantizer's behaviour, in canonical form. */
export interface QuantizerSettings {
  /** Integer 2..32. */
  bitwidth: number;
  scheme: QuantScheme;
  /** One encoding per output channel (weights only; activations are always per tensor). */
  perChannel: boolean;
  /** "nearest" rounds half to even; "stochastic" is seeded. */
  rounding: Rounding;
  /** false = bypassed: the tensor passes through unquantized. */
  enabled: boolean;
  rangeMethod: RangeMethod;
  /** For rangeMethod "percentile": the kept percentile per tail, in (0, 100]. */
  percentile: number;
  /** A user-set range that replaces calibration (a per-quantizer fix). */
  range?: { min: number; max: number };
}

export type SettingsPatch = Partial<QuantizerSettings>;

/**
 * The simulation's configuration: defaults per kind, then overrides by quantizer
 * name or glob pattern (later patterns win), e.g. `{ "block_3_*": { bitwidth: 16 } }`.
 */
export interface QuantSimConfig {
  weights?: SettingsPatch;
  activations?: SettingsPatch;
  /** Bias quantization is off unless set (true = 32-bit symmetric, or settings). */
  biases?: boolean | SettingsPatch;
  overrides?: Record<string, SettingsPatch>;
  /** Seed for stochastic rounding. */
  seed?: number;
}

/** AIMET's defaults: 8-bit symmetric per-tensor weights, 8-bit asymmetric activations. */
export const DEFAULT_WEIGHTS: QuantizerSettings = {
  bitwidth: 8,
  scheme: "symmetric",
  perChannel: false,
  rounding: "nearest",
  enabled: true,
  rangeMethod: "minmax",
  percentile: 99.99,
};
export const DEFAULT_ACTIVATIONS: QuantizerSettings = { ...DEFAULT_WEIGHTS, scheme: "asymmetric" };
export const DEFAULT_BIASES: QuantizerSettings = { ...DEFAULT_WEIGHTS, bitwidth: 32 };

const SCHEMES: readonly QuantScheme[] = ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"];
const ROUNDINGS: readonly Rounding[] = ["nearest", "stochastic"];
const METHODS: readonly RangeMethod[] = ["minmax", "percentile", "sqnr", "mse"];
const KEYS: readonly (keyof QuantizerSettings)[] = ["bitwidth", "scheme", "perChannel", "rounding", "enabled", "rangeMethod", "percentile", "range"];

function keyword<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`invalid ${name}: ${JSON.stringify(value)} (expected one of ${allowed.join(", ")})`);
}

/** Checks a patch once, at the edge, so the rest of the code can trust settings. */
export function normalizePatch(patch: unknown, where: string): SettingsPatch {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
    throw new Error(`${where}: settings must be an object, got ${JSON.stringify(patch)}`);
  }
  const p = patch as Record<string, unknown>;
  const unknown = Object.keys(p).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length) throw new Error(`${where}: unknown setting ${unknown.join(", ")} (settings: ${KEYS.join(", ")})`);
  const out: SettingsPatch = {};
  try {
    if (p.bitwidth !== undefined) out.bitwidth = validateBitwidth(p.bitwidth as number);
    if (p.scheme !== undefined) out.scheme = keyword(p.scheme, "scheme", SCHEMES);
    if (p.rounding !== undefined) out.rounding = keyword(p.rounding, "rounding", ROUNDINGS);
    if (p.rangeMethod !== undefined) out.rangeMethod = keyword(p.rangeMethod, "rangeMethod", METHODS);
    for (const flag of ["perChannel", "enabled"] as const) {
      if (p[flag] !== undefined) {
        if (typeof p[flag] !== "boolean") throw new Error(`invalid ${flag}: ${JSON.stringify(p[flag])} (expected true or false)`);
        out[flag] = p[flag] as boolean;
      }
    }
    if (p.percentile !== undefined) {
      const v = p.percentile;
      if (typeof v !== "number" || !(v > 0 && v <= 100)) throw new Error(`invalid percentile: ${JSON.stringify(v)} (expected a number in (0, 100])`);
      out.percentile = v;
    }
    if (p.range !== undefined) {
      const r = p.range as { min?: unknown; max?: unknown };
      if (typeof r?.min !== "number" || typeof r?.max !== "number" || !Number.isFinite(r.min) || !Number.isFinite(r.max) || r.min > r.max) {
        throw new Error(`invalid range: ${JSON.stringify(p.range)} (expected { min, max } with finite min <= max)`);
      }
      out.range = { min: r.min, max: r.max };
    }
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  return out;
}

/**
 * Reads a QuantSimConfig from a JSON file (same shape as in code), checked
 * against schema/qdebug-config.schema.json: an unknown key at any level is an
 * error naming it and the allowed ones, never silently ignored.
 */
export function readConfigFile(file: string): QuantSimConfig {
  const raw = readJsonFile(file, "quantization config");
  try {
    validateConfig(raw);
  } catch (err) {
    throw new Error(`quantization config ${file}: ${(err as Error).message}`);
  }
  const { $schema: _, ...config } = raw as QuantSimConfig & { $schema?: string };
  return config;
}

/** A compiled override: glob or exact name, and its checked patch. */
export interface Override {
  pattern: string;
  matches: (name: string) => boolean;
  patch: SettingsPatch;
}

export function compileOverrides(overrides: Record<string, unknown> | undefined): Override[] {
  return Object.entries(overrides ?? {}).map(([pattern, patch]) => {
    const glob = picomatch(pattern, { dot: true });
    return { pattern, matches: (name: string) => name === pattern || glob(name), patch: normalizePatch(patch, `override "${pattern}"`) };
  });
}
