import * as tf from "@tensorflow/tfjs";
import picomatch from "picomatch";
import { Graph } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";

/**
 * tfjs-converter's weight storage (`--quantize_uint8`, `--quantize_uint16`,
 * `--quantize_float16`), reproduced weight by weight so a TF.js user can see
 * what the converter would do to their model before converting it.
 *
 * The converter's rule (tensorflowjs/quantization.py, quantize_weights):
 *  - min and max of the weight (as float64); a constant weight stores all
 *    codes 0 with scale 1 and min = the value;
 *  - scale = (max - min) / qmax, qmax = 255 or 65535;
 *  - only when the range holds 0 is it "nudged" so that 0 is a code:
 *    zero point = round(-min / scale) (half to even), min = -zeroPoint * scale;
 *    a range that excludes 0 is kept as it is (unlike AIMET, which widens it);
 *  - codes = round((clip(w, min, max) - min) / scale), half to even, computed
 *    in float32 as NumPy 1.x does for a float32 array and float64 scalars;
 *  - TF.js decodes a code q as q * scale + min (tf.io.decodeWeights), and
 *    float16 as the nearest half-precision value.
 */
export type ConverterDtype = "uint8" | "uint16" | "float16";

export interface ConverterWeight {
  dtype: ConverterDtype;
  /** Stored codes (uint8/uint16), or float16 bit patterns. */
  codes: Uint8Array | Uint16Array;
  /** The affine record TF.js decodes with (absent for float16). */
  min?: number;
  scale?: number;
  /** What TF.js loads: the weight on the converter's grid, as float32. */
  values: Float32Array;
}

const QMAX: Record<"uint8" | "uint16", number> = { uint8: 255, uint16: 65535 };
const f32 = Math.fround;

/** NumPy's round: halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The converter's affine range: scale, and min/max nudged so 0 is a code when the range holds it. */
export function converterRange(min: number, max: number, dtype: "uint8" | "uint16"): { scale: number; min: number; max: number } {
  const qmax = QMAX[dtype];
  const scale = (max - min) / qmax;
  if (min <= 0 && 0 <= max) {
    const zeroPoint = roundHalfEven((0 - min) / scale);
    const nudgedMin = -zeroPoint * scale;
    return { scale, min: nudgedMin, max: qmax * scale + nudgedMin };
  }
  return { scale, min, max };
}

/** Stores one weight the way tfjs-converter does, and what TF.js reads back. */
export function converterQuantize(data: Float32Array, dtype: ConverterDtype): ConverterWeight {
  if (dtype === "float16") {
    const codes = new Uint16Array(data.length);
    const values = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      codes[i] = toHalfBits(data[i]);
      values[i] = fromHalfBits(codes[i]);
    }
    return { dtype, codes, values };
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const codes = dtype === "uint8" ? new Uint8Array(data.length) : new Uint16Array(data.length);
  if (lo === hi) return { dtype, codes, min: lo, scale: 1, values: decode(codes, 1, lo) };
  const r = converterRange(lo, hi, dtype);
  // float32 arithmetic with the float64 bounds cast down, as NumPy 1.x's value-based casting does.
  const [min32, max32, scale32] = [f32(r.min), f32(r.max), f32(r.scale)];
  for (let i = 0; i < data.length; i++) {
    const clipped = Math.min(Math.max(data[i], min32), max32);
    codes[i] = roundHalfEven(f32(f32(clipped - min32) / scale32));
  }
  return { dtype, codes, min: r.min, scale: r.scale, values: decode(codes, r.scale, r.min) };
}

/** TF.js's own decoding of an affine record (tf.io.decodeWeights): q * scale + min, stored as float32. */
export function decode(codes: ArrayLike<number>, scale: number, min: number): Float32Array {
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = codes[i] * scale + min;
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));

/** float32 → IEEE half bits, rounding to nearest even (NumPy's astype(float16)). */
export function toHalfBits(v: number): number {
  scratch.setFloat32(0, v);
  const x = scratch.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && (half & 1)) ? 1 : 0));
  }
  const half = mant >>> 13;
  const rest = mant & 0x1fff;
  let out = (e << 10) | half;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) out += 1;
  return sign | out;
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Which weights get which storage: converter-style glob patterns by weight name (`true` = every other weight). */
export type ConverterPreset = Partial<Record<ConverterDtype, readonly string[] | true>>;

/** One weight of a graph: its node, param key and the name tfjs-converter knows it by. */
export interface GraphWeight {
  node: string;
  param: string;
  /** A graph model's Const name, or a layers model's "layer/param". */
  name: string;
}

/** Every float parameter of a graph, with its converter weight name. */
export function graphWeights(graph: Graph): GraphWeight[] {
  return graph.nodes.flatMap((n) =>
    Object.entries(n.params)
      .filter(([, t]) => t.dtype === "float32")
      .map(([param]) => ({ node: n.name, param, name: weightName(n, param) })),
  );
}

function weightName(node: GraphNode, param: string): string {
  const names = node.attrs.weights as Record<string, string> | undefined;
  return names?.[param] ?? `${node.name}/${param}`;
}

/** The storage each weight gets under a preset, as the converter resolves its patterns (one fallthrough at most; two dtypes on one weight is an error). */
export function resolvePreset(weights: readonly GraphWeight[], preset: ConverterPreset): Map<string, ConverterDtype> {
  const out = new Map<string, ConverterDtype>();
  const fallthrough = (Object.keys(preset) as ConverterDtype[]).filter((d) => preset[d] === true);
  if (fallthrough.length > 1) throw new Error(`more than one fallthrough dtype in the converter preset (${fallthrough.join(", ")}); the converter accepts exactly one`);
  for (const dtype of Object.keys(preset) as ConverterDtype[]) {
    const patterns = preset[dtype];
    if (patterns === true || !patterns) continue;
    const match = picomatch([...patterns], { dot: true });
    for (const w of weights) {
      if (!match(w.name)) continue;
      const known = out.get(w.name);
      if (known && known !== dtype) throw new Error(`weight "${w.name}" matches both ${known} and ${dtype} in the converter preset`);
      out.set(w.name, dtype);
    }
  }
  if (fallthrough.length) for (const w of weights) if (!out.has(w.name)) out.set(w.name, fallthrough[0]);
  return out;
}

export interface ConverterSimulation {
  /** The graph with every chosen weight as TF.js would load it after conversion (the caller disposes it). */
  graph: Graph;
  /** One row per stored weight: its name, dtype and affine record. */
  weights: { node: string; param: string; name: string; dtype: ConverterDtype; min?: number; scale?: number; maxAbsError: number }[];
}

/**
 * The graph as TF.js runs it after `tensorflowjs_converter` stored its weights
 * under `preset` (e.g. `{ uint8: true }` for --quantize_uint8 on every weight):
 * a new graph, weights replaced, so every analysis can score it against FP32.
 */
export function simulateConverter(graph: Graph, preset: ConverterPreset): ConverterSimulation {
  const weights = graphWeights(graph);
  const chosen = resolvePreset(weights, preset);
  const rows: ConverterSimulation["weights"] = [];
  const replaced = new Map<string, Params>();
  try {
    for (const w of weights) {
      const dtype = chosen.get(w.name);
      if (!dtype) continue;
      const t = graph.node(w.node).params[w.param];
      const data = t.dataSync() as Float32Array;
      const q = converterQuantize(data, dtype);
      let maxAbsError = 0;
      for (let i = 0; i < data.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(q.values[i] - data[i]));
      const params = replaced.get(w.node) ?? {};
      params[w.param] = tf.tensor(q.values, t.shape, "float32");
      replaced.set(w.node, params);
      rows.push({ node: w.node, param: w.param, name: w.name, dtype, min: q.min, scale: q.scale, maxAbsError });
    }
    // Untouched weights are copied, so the new graph owns all its tensors.
    const nodes = graph.nodes.map((n) => ({
      ...n,
      params: Object.fromEntries(Object.entries(n.params).map(([k, t]) => [k, replaced.get(n.name)?.[k] ?? tf.clone(t)])),
    }));
    return { graph: new Graph({ name: `${graph.name} (tfjs-converter weights)`, nodes, inputs: [...graph.inputs], outputs: [...graph.outputs] }), weights: rows };
  } catch (err) {
    tf.dispose([...replaced.values()].flatMap((p) => Object.values(p)));
    throw err;
  }
}

/**
 * tensorflowjs_converter flags that store each weight as `assignment` says
 * (weight name → dtype; weights left out stay float32), e.g. from a
 * mixed-precision result: `--quantize_uint8="a,b" --quantize_float16="c"`.
 */
export function converterFlags(assignment: ReadonlyMap<string, ConverterDtype> | Readonly<Record<string, ConverterDtype>>): string {
  const entries = assignment instanceof Map ? [...assignment] : Object.entries(assignment);
  const flag = { uint8: "--quantize_uint8", uint16: "--quantize_uint16", float16: "--quantize_float16" } as const;
  return (["uint8", "uint16", "float16"] as const)
    .map((d) => ({ d, names: entries.filter(([, v]) => v === d).map(([k]) => k) }))
    .filter((x) => x.names.length)
    .map((x) => `${flag[x.d]}="${x.names.join(",")}"`)
    .join(" ");
}
