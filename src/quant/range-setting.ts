import * as tf from "@tensorflow/tfjs";
import { computeEncoding, Encoding, QuantScheme, roundHalfEven } from "./encoding";
import { TensorStats } from "./stats";

export interface Range {
  min: number;
  max: number;
}

export interface RangeOptions {
  bitwidth: number;
  scheme: QuantScheme;
  /** For "percentile": the share of values kept on each side, in (0, 100]. */
  percentile?: number;
}

/** Candidate clipping factors, from the full observed range (1) down to 5 % of it. */
const FACTORS = Array.from({ length: 60 }, (_, i) => 1 - i * 0.016);

/**
 * An activation range from calibration statistics:
 * - "minmax": the observed range;
 * - "percentile": the p-th and (100-p)-th percentiles (clips the tails);
 * - "sqnr": the candidate range minimizing the expected noise, rounding noise
 *   delta^2/12 per value inside plus squared clipping error outside (the idea
 *   of AIMET's tf_enhanced / SQNR analyzer);
 * - "mse": the candidate range minimizing the quantize-dequantize error of the
 *   histogram's bin centers.
 * Candidates shrink each side of the observed range by the same factors; the
 * observed range itself is always a candidate, so searched ranges never do worse
 * than min-max on the histogram.
 */
export function rangeFromStats(stats: TensorStats, method: string, options: RangeOptions): Range {
  if (stats.count === 0) throw new Error("no statistics: calibration saw no values for this quantizer");
  switch (method) {
    case "minmax":
      return { min: stats.min, max: stats.max };
    case "percentile": {
      const p = options.percentile ?? 99.99;
      if (!(p > 0 && p <= 100)) throw new Error(`invalid percentile: ${p} (expected a number in (0, 100])`);
      return { min: stats.quantile(1 - p / 100), max: stats.quantile(p / 100) };
    }
    case "sqnr":
    case "mse": {
      const { centers, counts } = stats.occupiedBins();
      const cost = method === "mse" ? histogramMse : expectedNoise;
      return search({ min: stats.min, max: stats.max }, options, (enc) => cost(centers, counts, enc));
    }
    default:
      throw new Error(`invalid range method: ${JSON.stringify(method)} (expected minmax, percentile, sqnr or mse)`);
  }
}

function search(observedRange: Range, options: RangeOptions, cost: (enc: Encoding) => number): Range {
  const symmetric = options.scheme !== "asymmetric";
  // Every encoding includes 0, so shrink each side towards 0 from there.
  const observed = { min: Math.min(observedRange.min, 0), max: Math.max(observedRange.max, 0) };
  let best = observed;
  let bestCost = cost(computeEncoding(observed.min, observed.max, options.bitwidth, options.scheme));
  for (const a of FACTORS) {
    for (const b of symmetric ? [a] : FACTORS) {
      const r = { min: observed.min * a, max: observed.max * b };
      const c = cost(computeEncoding(r.min, r.max, options.bitwidth, options.scheme));
      if (c < bestCost) {
        bestCost = c;
        best = r;
      }
    }
  }
  return best;
}

function histogramMse(centers: Float64Array, counts: Float64Array, enc: Encoding): number {
  let sum = 0;
  for (let i = 0; i < centers.length; i++) {
    const x = centers[i];
    const q = Math.min(enc.numSteps, Math.max(0, roundHalfEven(x / enc.scale) - enc.offset));
    const d = (q + enc.offset) * enc.scale - x;
    sum += counts[i] * d * d;
  }
  return sum;
}

function expectedNoise(centers: Float64Array, counts: Float64Array, enc: Encoding): number {
  const rounding = (enc.scale * enc.scale) / 12;
  let sum = 0;
  for (let i = 0; i < centers.length; i++) {
    const x = centers[i];
    const d = x < enc.min ? enc.min - x : x > enc.max ? x - enc.max : 0;
    sum += counts[i] * (d === 0 ? rounding : d * d);
  }
  return sum;
}

/** Exact mean squared quantize-dequantize error of `values` under `enc`. */
export function quantizationMse(values: ArrayLike<number>, enc: Encoding, from = 0, to = values.length, stride = 1): number {
  let sum = 0;
  let n = 0;
  for (let i = from; i < to; i += stride) {
    const x = values[i];
    const q = Math.min(enc.numSteps, Math.max(0, roundHalfEven(x / enc.scale) - enc.offset));
    const d = (q + enc.offset) * enc.scale - x;
    sum += d * d;
    n++;
  }
  return n ? sum / n : 0;
}

/**
 * A weight range, per tensor or per channel along `axis`: min-max, or the
 * candidate with the lowest exact quantize-dequantize MSE on the values.
 */
export function weightRange(t: tf.Tensor, method: "minmax" | "mse", options: RangeOptions & { axis?: number }): Range | Range[] {
  const values = t.dataSync();
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`weights contain NaN or infinite values (first at index ${i})`);
  }
  const rangeOf = (pick: (visit: (v: number) => void) => void, mse: (enc: Encoding) => number): Range => {
    let min = Infinity;
    let max = -Infinity;
    pick((v) => {
      if (v < min) min = v;
      if (v > max) max = v;
    });
    if (method === "minmax") return { min, max };
    if (method !== "mse") throw new Error(`invalid weight range method: ${JSON.stringify(method)} (expected minmax or mse)`);
    return search({ min, max }, options, mse);
  };
  if (options.axis === undefined) {
    return rangeOf((visit) => values.forEach((v) => visit(v)), (enc) => quantizationMse(values, enc));
  }
  const axis = options.axis < 0 ? options.axis + t.rank : options.axis;
  const channels = t.shape[axis];
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  // Gather each channel's values once so the search reads a compact array.
  const perChannel = Array.from({ length: channels }, () => [] as number[]);
  for (let i = 0; i < values.length; i++) perChannel[Math.floor(i / inner) % channels].push(values[i]);
  return perChannel.map((vs) => rangeOf((visit) => vs.forEach(visit), (enc) => quantizationMse(vs, enc)));
}
