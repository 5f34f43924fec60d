import * as tf from "@tensorflow/tfjs";
import { Encoding, roundHalfEven } from "../quant/encoding";
import { QuantizerSite } from "../quant/placement";
import { initialV } from "./adaround-loss";

/** A weight quantizer's grid as AdaRound reads it: per-element scale and bounds, the starting point, hard rounding. */

/** The per-element view of one weight quantizer's grid (float32 values, as the fake-quant kernel uses them). */
interface Grid {
  /** The parameter as quantized: reshaped to the channel shape when it has one (same element order). */
  shape: number[];
  channels: number;
  /** Elements per contiguous run of one channel. */
  inner: number;
  scales: Float32Array;
  lows: Float64Array;
  highs: Float64Array;
  /** The broadcast shape of per-channel constants. */
  channelShape: number[];
}

export function gridOf(site: QuantizerSite, param: tf.Tensor, encoding: Encoding | Encoding[]): Grid {
  const shape = site.channelShape ?? param.shape;
  const list = Array.isArray(encoding) ? encoding : [encoding];
  const axis = site.channelAxis ?? shape.length - 1;
  const perChannel = list.length > 1;
  if (perChannel && shape[axis] !== list.length) throw new Error(`${list.length} per-channel encodings for axis ${axis} of shape [${shape.join(", ")}]`);
  return {
    shape,
    channels: list.length,
    inner: perChannel ? shape.slice(axis + 1).reduce((a, b) => a * b, 1) : 1,
    scales: Float32Array.from(list, (e) => e.scale),
    lows: Float64Array.from(list, (e) => e.offset),
    highs: Float64Array.from(list, (e) => e.offset + e.numSteps),
    channelShape: perChannel ? shape.map((d, i) => (i === axis ? d : 1)) : [],
  };
}

const channelOf = (g: Grid, i: number) => (g.channels === 1 ? 0 : Math.floor(i / g.inner) % g.channels);

/** floor(W/s) and the initial V (h(V) = frac(W/s)), in float32 arithmetic like the quantizer's W/s. */
export function startingPoint(w: Float32Array, g: Grid): { floors: Float32Array; v: Float32Array; nearest: Float32Array } {
  const floors = new Float32Array(w.length);
  const v = new Float32Array(w.length);
  const nearest = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const c = channelOf(g, i);
    const q = Math.fround(w[i] / g.scales[c]);
    const f = Math.floor(q);
    floors[i] = f;
    v[i] = initialV(q - f);
    nearest[i] = Math.min(g.highs[c], Math.max(g.lows[c], roundHalfEven(q)));
  }
  return { floors, v, nearest };
}

/** Hard rounding: codes floor + [V ≥ 0] (h(V) ≥ 0.5 exactly when V ≥ 0), clamped, as on-grid float32 values. */
export function hardRounded(floors: Float32Array, v: Float32Array, g: Grid): { codes: Float32Array; values: Float32Array } {
  const codes = new Float32Array(v.length);
  const values = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = channelOf(g, i);
    codes[i] = Math.min(g.highs[c], Math.max(g.lows[c], floors[i] + (v[i] >= 0 ? 1 : 0)));
    values[i] = Math.fround(codes[i] * g.scales[c]);
  }
  return { codes, values };
}
