import * as tf from "@tensorflow/tfjs";
import { computeEncoding, Encoding, QuantScheme } from "../quant/encoding";
import { fakeQuant } from "../quant/fake-quant";

/**
 * Range learning for an activation quantizer (AIMET's "range learning", LSQ's
 * learned step size): the quantizer's [min, max] is a trainable 2-vector, and
 * the loss's gradient reaches it through the grid.
 *
 * The forward is the ordinary fake quantization with the encoding of the
 * current [min, max] (`computeEncoding`, AIMET's rules). The backward, with
 * r = round(x / δ) and the straight-through estimator on every rounding:
 *   - x: dy where r lies on the grid [offset, offset + numSteps], 0 where clipped;
 *   - asymmetric, δ = (max − min) / numSteps:
 *       on the grid  dq/dmax = (r − x/δ) / numSteps,  dq/dmin = −(r − x/δ) / numSteps
 *       clipped low  dq/dmin = 1 (the output is min),  clipped high  dq/dmax = 1;
 *   - symmetric schemes, where δ ∝ s = max(−min, max) and the offset is fixed:
 *       dq/ds = (δ / s) · (r − x/δ on the grid, offset below it, offset + numSteps above it),
 *     given to max when it sets s, else to min with the opposite sign.
 * The range's gradient sums over the whole tensor.
 */
export function learnedRangeFakeQuant(x: tf.Tensor, range: tf.Tensor, current: LearnedRange): tf.Tensor {
  if (range.rank !== 1 || range.shape[0] !== 2) throw new Error(`learnedRangeFakeQuant: the range must be a [min, max] vector, got shape [${range.shape.join(", ")}]`);
  const enc = computeEncoding(current.min, current.max, current.bitwidth, current.scheme);
  // Symmetric grids scale with s = max(−min, max): the side that sets it gets the gradient.
  const maxSets = current.max >= -current.min;
  const fn = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xin = args[0] as tf.Tensor;
    (args[2] as tf.GradSaveFunc)([xin]);
    return {
      value: fakeQuant(xin, enc),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => rangeGradients(dy, saved[0], enc, maxSets),
    };
  };
  return (tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)(x, range);
}

/** The values a learned range has at one step (read from its variable before the step), with its quantizer's grid. */
export interface LearnedRange {
  min: number;
  max: number;
  bitwidth: number;
  scheme: QuantScheme;
}

function rangeGradients(dy: tf.Tensor, x: tf.Tensor, enc: Encoding, maxSets: boolean): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const v = tf.div(x, enc.scale);
    const r = tf.round(v);
    const low = tf.cast(tf.less(r, enc.offset), "float32");
    const high = tf.cast(tf.greater(r, enc.offset + enc.numSteps), "float32");
    const inside = tf.sub(1, tf.add(low, high));
    const dx = tf.mul(dy, inside);
    const onGrid = tf.sum(tf.mul(tf.mul(dy, inside), tf.sub(r, v)));
    const belowSum = tf.sum(tf.mul(dy, low));
    const aboveSum = tf.sum(tf.mul(dy, high));
    let dRange: tf.Tensor;
    if (enc.scheme === "asymmetric") {
      const grid = tf.div(onGrid, enc.numSteps);
      dRange = tf.stack([tf.sub(belowSum, grid), tf.add(aboveSum, grid)]);
    } else {
      // δ = s / k with k constant (the grid's top code, so s = enc.max): dδ/ds = δ / s.
      const perStep = enc.scale / enc.max;
      const ds = tf.mul(tf.addN([onGrid, tf.mul(belowSum, enc.offset), tf.mul(aboveSum, enc.offset + enc.numSteps)]), perStep);
      dRange = maxSets ? tf.stack([tf.scalar(0), ds]) : tf.stack([tf.neg(ds), tf.scalar(0)]);
    }
    return [dx, dRange];
  });
}

/**
 * Keeps a learned [min, max] where `computeEncoding` uses it as given: min ≤ 0 ≤ max,
 * at least 0.01 wide (AIMET's rules; a step outside them would have no gradient
 * to come back with). Returns the projected pair.
 */
export function projectRange(min: number, max: number): [number, number] {
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0, lo + 0.01);
  return [lo, hi];
}
