/**
 * Encodings, with AIMET's conventions so exported encodings can go to tools that
 * consume AIMET's files (libpymo's quantization_utils / TfEncodingAnalyzer):
 * - the range always includes 0, then is widened (max moves up) to at least 0.01;
 * - numSteps = 2^bw - 1;
 * - asymmetric: delta = (max - min) / numSteps, offset = round(min / delta)
 *   (computed as -round(-min / delta): ties away from zero, like std::round)
 *   clamped to [-numSteps, 0]; min and max then move onto the grid
 *   (offset * delta, (numSteps + offset) * delta), so 0 is exactly representable;
 * - symmetric: delta = absmax / floor(numSteps / 2), offset = -ceil(numSteps / 2)
 *   (8 bits: grid [-128 delta, 127 delta]);
 * - strict symmetric: one step fewer, grid [-127 delta, 127 delta],
 *   offset = -floor(numSteps / 2), numSteps = 2^bw - 2;
 * - unsigned symmetric (non-negative tensors): offset 0, delta = max / numSteps;
 *   a range with negative values falls back to signed symmetric, as in AIMET,
 *   and the encoding then says scheme "symmetric" (it describes the grid used).
 * Quantize-dequantize: delta * (clamp(round(x / delta) - offset, 0, numSteps) + offset),
 * with round half to even (like tf.round and AIMET's torch v2 code; AIMET's C++
 * rounds halves away from zero), in the float32 arithmetic of the tensors: x / delta
 * is a true float32 division, as in AIMET's torch quantizer (see
 * quantizeDequantizeValue). Encodings are computed in float64, so a 32-bit
 * quantizer is the identity up to float32 rounding.
 */
export type QuantScheme = "asymmetric" | "symmetric" | "strict-symmetric" | "unsigned-symmetric";

export interface Encoding {
  readonly bitwidth: number;
  readonly scheme: QuantScheme;
  readonly min: number;
  readonly max: number;
  /** The step, delta. */
  readonly scale: number;
  /** Integer; the grid is (q + offset) * scale for q in 0..numSteps. */
  readonly offset: number;
  /** Largest integer code (2^bw - 1, or 2^bw - 2 for strict symmetric). */
  readonly numSteps: number;
}

/** AIMET's JSON entry for one tensor (or one channel). */
export interface AimetEncoding {
  bitwidth: number;
  dtype: "int";
  is_symmetric: "True" | "False";
  min: number;
  max: number;
  offset: number;
  scale: number;
}

export function validateBitwidth(bw: unknown): number {
  if (typeof bw !== "number" || !Number.isInteger(bw) || bw < 2 || bw > 32) {
    throw new Error(`invalid bitwidth: ${typeof bw === "number" ? bw : JSON.stringify(bw)} (expected an integer from 2 to 32)`);
  }
  return bw;
}

const MIN_RANGE = 0.01;

/** float32's largest finite value: grids beyond it would dequantize to Infinity. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** The encoding for a tensor whose values span [min, max]: a pure function of these statistics. */
export function computeEncoding(min: number, max: number, bitwidth: number, scheme: QuantScheme): Encoding {
  validateBitwidth(bitwidth);
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error(`cannot compute an encoding from min ${min}, max ${max}: both must be finite`);
  if (min > max) throw new Error(`cannot compute an encoding from min ${min} > max ${max}`);
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0, lo + MIN_RANGE);
  const levels = 2 ** bitwidth - 1;
  const enc = gridFor(lo, hi, bitwidth, levels, scheme === "unsigned-symmetric" && lo < 0 ? "symmetric" : scheme);
  if (!(Math.abs(enc.min) <= FLOAT32_MAX && Math.abs(enc.max) <= FLOAT32_MAX)) {
    throw new Error(`cannot compute an encoding from min ${min}, max ${max}: the grid [${enc.min}, ${enc.max}] exceeds float32's range`);
  }
  return enc;
}

function gridFor(lo: number, hi: number, bitwidth: number, levels: number, scheme: QuantScheme): Encoding {
  if (scheme === "asymmetric") {
    const scale = (hi - lo) / levels;
    // -Math.round(-v) rounds ties away from zero for v <= 0, as std::round does.
    const offset = Math.min(0, Math.max(-levels, -Math.round(-lo / scale))) + 0;
    return { bitwidth, scheme, min: offset * scale, max: (levels + offset) * scale, scale, offset, numSteps: levels };
  }
  if (scheme === "unsigned-symmetric") {
    const scale = hi / levels;
    return { bitwidth, scheme, min: 0, max: hi, scale, offset: 0, numSteps: levels };
  }
  const half = Math.floor(levels / 2);
  const scale = Math.max(-lo, hi) / half;
  if (scheme === "strict-symmetric") {
    return { bitwidth, scheme, min: -half * scale, max: half * scale, scale, offset: -half, numSteps: 2 * half };
  }
  const offset = -Math.ceil(levels / 2);
  return { bitwidth, scheme, min: offset * scale, max: (levels + offset) * scale, scale, offset, numSteps: levels };
}

/** Round half to even on float64 values. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Quantize-dequantize one value: the pure JS reference the kernels are tested
 * against. It is AIMET's formula in the float32 arithmetic of tensors (what
 * AIMET's torch quantizer, tf.div/tf.round/tf.mul and our kernels compute):
 * x / delta rounded to float32 (delta itself stored as float32), rounded half
 * to even, clamped to the grid [offset, offset + numSteps] (bounds as float32:
 * exact up to 24 bits), times delta, rounded to float32.
 */
export function quantizeDequantizeValue(x: number, enc: Encoding): number {
  const scale = Math.fround(enc.scale);
  const lo = Math.fround(enc.offset);
  const hi = Math.fround(enc.offset + enc.numSteps);
  const r = roundHalfEven(Math.fround(Math.fround(x) / scale));
  return Math.fround((r < lo ? lo : r > hi ? hi : r) * scale);
}

export function encodingToAimet(enc: Encoding): AimetEncoding {
  return {
    bitwidth: enc.bitwidth,
    dtype: "int",
    is_symmetric: enc.scheme === "asymmetric" ? "False" : "True",
    min: enc.min,
    max: enc.max,
    offset: enc.offset,
    scale: enc.scale,
  };
}

/**
 * Reads an AIMET entry back, with the same scale, offset, min and max, so the
 * simulation is reproduced exactly. The scheme follows from is_symmetric and the
 * offset (symmetric: -ceil(numSteps / 2); strict: -floor(numSteps / 2);
 * unsigned: 0); pass `scheme` to insist on one, and an entry that does not fit
 * it is an error. AIMET writes is_symmetric as the strings "True"/"False";
 * JSON booleans are accepted too.
 */
export function encodingFromAimet(entry: AimetEncoding, scheme?: QuantScheme): Encoding {
  const bitwidth = validateBitwidth(entry.bitwidth);
  for (const k of ["min", "max", "scale", "offset"] as const) {
    if (typeof entry[k] !== "number" || !Number.isFinite(entry[k])) throw new Error(`invalid AIMET encoding: ${k} must be a finite number, got ${JSON.stringify(entry[k])}`);
  }
  if (!(entry.scale > 0)) throw new Error(`invalid AIMET encoding: scale must be positive, got ${entry.scale}`);
  const levels = 2 ** bitwidth - 1;
  if (!Number.isInteger(entry.offset) || entry.offset > 0 || entry.offset < -levels) {
    throw new Error(`invalid AIMET encoding: offset must be an integer from ${-levels} to 0, got ${entry.offset}`);
  }
  const flag = entry.is_symmetric as unknown;
  if (flag !== "True" && flag !== "False" && flag !== true && flag !== false) {
    throw new Error(`invalid AIMET encoding: is_symmetric must be "True" or "False", got ${JSON.stringify(flag)}`);
  }
  const symmetric = flag === "True" || flag === true;
  const half = Math.floor(levels / 2);
  const inferred: QuantScheme = !symmetric ? "asymmetric" : entry.offset === 0 ? "unsigned-symmetric" : entry.offset === -half ? "strict-symmetric" : "symmetric";
  const chosen = scheme ?? inferred;
  if (scheme !== undefined) {
    const expectedOffset = scheme === "strict-symmetric" ? -half : scheme === "unsigned-symmetric" ? 0 : scheme === "symmetric" ? -Math.ceil(levels / 2) : undefined;
    if ((scheme === "asymmetric") === symmetric || (expectedOffset !== undefined && entry.offset !== expectedOffset)) {
      throw new Error(`AIMET encoding (is_symmetric ${JSON.stringify(flag)}, offset ${entry.offset}, ${bitwidth} bits) is not ${scheme}`);
    }
  }
  const numSteps = chosen === "strict-symmetric" ? 2 * half : levels;
  return { bitwidth, scheme: chosen, min: entry.min, max: entry.max, scale: entry.scale, offset: entry.offset, numSteps };
}
