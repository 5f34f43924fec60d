import * as tf from "@tensorflow/tfjs";
import { computeEncoding, Encoding, QuantScheme, quantizeDequantizeValue, roundHalfEven } from "./encoding";
import { TensorStats } from "./stats";

export interface Range {
  min: number;
  max: number;
}

export interface RangeOptions {
  bitwidth: number;
  scheme: QuantScheme;
  /** For "percentile": the share of values kept on each side, from 50 to 100 (default 99.99). */
  percentile?: number;
}

export type ActivationRangeMethod = "minmax" | "percentile" | "sqnr" | "mse";
export type WeightRangeMethod = "minmax" | "mse";

/** Candidate clipping factors, from the full observed range (1) down to 5 % of it. */
const FACTORS = Array.from({ length: 60 }, (_, i) => 1 - i * 0.016);

/** AIMET's tf_enhanced weighs clipping noise 3x against rounding noise (GAMMA in TfEnhancedEncodingAnalyzer). */
const CLIP_WEIGHT = 3;

/**
 * An activation range from calibration statistics:
 * - "minmax": the observed range;
 * - "percentile": the p-th and (100-p)-th percentiles (clips each tail);
 * - "sqnr": the candidate range minimizing expected noise, 3 x squared clipping
 *   error outside plus rounding noise delta^2/12 per value inside (AIMET's
 *   tf_enhanced / SQNR analyzer);
 * - "mse": the candidate range minimizing the quantize-dequantize error of the
 *   histogram's bin centers, weighted by their counts.
 * The observed range is always a candidate, so a searched range never does
 * worse than min-max by its own cost on the histogram.
 */
// `string & {}` keeps editor completion of the known methods while accepting any string, checked at run time.
export function rangeFromStats(stats: TensorStats, method: ActivationRangeMethod | (string & {}), options: RangeOptions): Range {
  if (stats.count === 0) throw new Error("no statistics: calibration saw no values for this quantizer");
  switch (method) {
    case "minmax":
      return { min: stats.min, max: stats.max };
    case "percentile": {
      const p = options.percentile ?? 99.99;
      if (!(p > 0 && p <= 100)) throw new Error(`invalid percentile: ${p} (expected a number in (0, 100])`);
      // p is the share kept on each side, so below 50 the two ends would cross (AIMET also asks for 50..100).
      if (p < 50) throw new Error(`invalid percentile: ${p} keeps less than half of the values on each side (expected 50 to 100)`);
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

/**
 * Shrinks each side of the observed range (widened to include 0) towards 0.
 * Symmetric schemes only depend on the larger side: one shared factor. For
 * asymmetric ranges: the best shared factor first, then coordinate descent on
 * the two sides (a few passes of 60 candidates each instead of the full 60 x 60
 * grid, so an exact search over a large weight tensor stays affordable).
 */
function search(observedRange: Range, options: RangeOptions, cost: (enc: Encoding) => number, extra: Range[] = []): Range {
  const observed = { min: Math.min(observedRange.min, 0), max: Math.max(observedRange.max, 0) };
  const costOf = (a: number, b: number) => cost(computeEncoding(observed.min * a, observed.max * b, options.bitwidth, options.scheme));
  let bestA = 1;
  let bestB = 1;
  let bestCost = costOf(1, 1);
  for (const f of FACTORS) {
    const c = costOf(f, f);
    if (c < bestCost) [bestCost, bestA, bestB] = [c, f, f];
  }
  if (options.scheme === "asymmetric") {
    for (let pass = 0, improved = true; pass < 3 && improved; pass++) {
      improved = false;
      for (const f of FACTORS) {
        const c = costOf(f, bestB);
        if (c < bestCost) [bestCost, bestA, improved] = [c, f, true];
      }
      for (const f of FACTORS) {
        const c = costOf(bestA, f);
        if (c < bestCost) [bestCost, bestB, improved] = [c, f, true];
      }
    }
  }
  let best = { min: observed.min * bestA, max: observed.max * bestB };
  for (const r of extra) {
    const c = cost(computeEncoding(r.min, r.max, options.bitwidth, options.scheme));
    if (c < bestCost) [bestCost, best] = [c, r];
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
    sum += counts[i] * (d === 0 ? rounding : CLIP_WEIGHT * d * d);
  }
  return sum;
}

/** Exact mean squared quantize-dequantize error of `values` under `enc`, in the simulation's float32 arithmetic. */
export function quantizationMse(values: ArrayLike<number>, enc: Encoding, from = 0, to = values.length, stride = 1): number {
  let sum = 0;
  let n = 0;
  for (let i = from; i < to; i += stride) {
    const d = quantizeDequantizeValue(values[i], enc) - values[i];
    sum += d * d;
    n++;
  }
  return n ? sum / n : 0;
}

/**
 * A weight range, per tensor or per channel along `axis`: min-max, or the
 * candidate with the lowest exact quantize-dequantize MSE on the values.
 */
export function weightRange(t: tf.Tensor, method: WeightRangeMethod, options: RangeOptions & { axis?: undefined }): Range;
export function weightRange(t: tf.Tensor, method: WeightRangeMethod, options: RangeOptions & { axis: number }): Range[];
export function weightRange(t: tf.Tensor, method: WeightRangeMethod, options: RangeOptions & { axis?: number }): Range | Range[];
export function weightRange(t: tf.Tensor, method: WeightRangeMethod, options: RangeOptions & { axis?: number }): Range | Range[] {
  if (method !== "minmax" && method !== "mse") throw new Error(`invalid weight range method: ${JSON.stringify(method)} (expected minmax or mse)`);
  const values = t.dataSync();
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`weights contain NaN or infinite values (first at index ${i})`);
  }
  const whole = minMaxOf(values);
  if (options.axis === undefined) return method === "minmax" ? whole : search(whole, options, (enc) => quantizationMse(values, enc));
  const axis = options.axis < 0 ? options.axis + t.rank : options.axis;
  if (!(axis >= 0 && axis < t.rank)) throw new Error(`weightRange: axis ${options.axis} is out of range for a tensor of rank ${t.rank}`);
  const channels = t.shape[axis];
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  // Gather each channel's values once so the search reads a compact array.
  const perChannel = Array.from({ length: channels }, () => new Float32Array(values.length / channels));
  const filled = new Array<number>(channels).fill(0);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    perChannel[c][filled[c]++] = values[i];
  }
  // The per-tensor search's answer is a candidate for every channel, so per channel never does worse than per tensor.
  const tensorBest = method === "mse" ? search(whole, options, (enc) => quantizationMse(values, enc)) : whole;
  return perChannel.map((vs) => {
    const own = minMaxOf(vs);
    if (method === "minmax") return own;
    return search(own, options, (enc) => quantizationMse(vs, enc), [tensorBest]);
  });
}

function minMaxOf(values: ArrayLike<number>): Range {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}
