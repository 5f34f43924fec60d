import { strict as assert } from "assert";
import { computeEncoding, encodingFromAimet, encodingToAimet, quantizeDequantizeValue, QuantScheme, validateBitwidth } from "../src/quant/encoding";

/**
 * Known answers worked out by hand from AIMET's conventions (src/quant/encoding.ts),
 * in the manner of AIMET's test_backend.py: statistics in; scale, offset, grid
 * min/max and quantize-dequantize outputs out. Scales of 1 make ties exact
 * (x.5 rounds to the even neighbour); other rows give codes k as k * scale.
 */
export interface KnownAnswer {
  what: string;
  min: number;
  max: number;
  bw: number;
  scheme: QuantScheme;
  /** The scheme the encoding reports (unsigned falls back to symmetric with negatives). */
  effective?: QuantScheme;
  scale: number;
  offset: number;
  encMin: number;
  encMax: number;
  x: number[];
  qdq: number[];
}

const s2 = 2 / 255;
export const KNOWN_ANSWERS: KnownAnswer[] = [
  { what: "8-bit asymmetric [-1, 1]: offset -127.5 rounds away from zero", min: -1, max: 1, bw: 8, scheme: "asymmetric", scale: s2, offset: -128, encMin: -128 * s2, encMax: 127 * s2,
    x: [0, 0.3, -0.3, -2, 2], qdq: [0, 38 * s2, -38 * s2, -128 * s2, 127 * s2] },
  { what: "8-bit asymmetric [0, 63.75]: scale 0.25, ties to even", min: 0, max: 63.75, bw: 8, scheme: "asymmetric", scale: 0.25, offset: 0, encMin: 0, encMax: 63.75,
    x: [0.125, 0.375, 0.625, 0.875, 63.9, -0.2], qdq: [0, 0.5, 0.5, 1, 63.75, 0] },
  { what: "8-bit symmetric: ties to even, clipping at -128 and 127", min: -127, max: 127, bw: 8, scheme: "symmetric", scale: 1, offset: -128, encMin: -128, encMax: 127,
    x: [0, 0.5, 1.5, 2.5, 3.5, -2.5, -3.5, 127.6, -130, 126.4], qdq: [0, 0, 2, 2, 4, -2, -4, 127, -128, 126] },
  { what: "8-bit strict symmetric: grid [-127, 127]", min: -50, max: 127, bw: 8, scheme: "strict-symmetric", scale: 1, offset: -127, encMin: -127, encMax: 127,
    x: [-130, -127.5, 127.5, 0.5, 0], qdq: [-127, -127, 127, 0, 0] },
  { what: "8-bit unsigned symmetric: grid [0, 255]", min: 0, max: 255, bw: 8, scheme: "unsigned-symmetric", scale: 1, offset: 0, encMin: 0, encMax: 255,
    x: [-3, 254.5, 253.5, 300, 0.5], qdq: [0, 254, 254, 255, 0] },
  { what: "unsigned symmetric with negatives falls back to signed symmetric", min: -1, max: 127, bw: 8, scheme: "unsigned-symmetric", effective: "symmetric", scale: 1, offset: -128, encMin: -128, encMax: 127,
    x: [-1, 5.5, -200], qdq: [-1, 6, -128] },
  { what: "4-bit asymmetric, all positive: ties to even", min: 0, max: 15, bw: 4, scheme: "asymmetric", scale: 1, offset: 0, encMin: 0, encMax: 15,
    x: [7.5, 6.5, 16, -1], qdq: [8, 6, 15, 0] },
  { what: "4-bit symmetric: grid [-8, 7]", min: -7, max: 3, bw: 4, scheme: "symmetric", scale: 1, offset: -8, encMin: -8, encMax: 7,
    x: [-9, 7.6, 0.5, -7.5], qdq: [-8, 7, 0, -8] },
  { what: "4-bit strict symmetric: grid [-7, 7]", min: -7, max: 7, bw: 4, scheme: "strict-symmetric", scale: 1, offset: -7, encMin: -7, encMax: 7,
    x: [-7.5, 5.5, 9], qdq: [-7, 6, 7] },
  { what: "2-bit symmetric: grid [-2, 1]", min: -1, max: 1, bw: 2, scheme: "symmetric", scale: 1, offset: -2, encMin: -2, encMax: 1,
    x: [-3, 0.6, -1.5, 1.7], qdq: [-2, 1, -2, 1] },
  { what: "2-bit asymmetric: grid [-1, 2]", min: -1, max: 2, bw: 2, scheme: "asymmetric", scale: 1, offset: -1, encMin: -1, encMax: 2,
    x: [2.5, -0.5, 0.5, 1.5, -4], qdq: [2, 0, 0, 2, -1] },
  { what: "2-bit unsigned symmetric: grid [0, 3]", min: 0.5, max: 3, bw: 2, scheme: "unsigned-symmetric", scale: 1, offset: 0, encMin: 0, encMax: 3,
    x: [2.5, 3.7, -1], qdq: [2, 3, 0] },
  { what: "all negative: the range is widened up to 0", min: -4, max: -1, bw: 8, scheme: "asymmetric", scale: 4 / 255, offset: -255, encMin: -4, encMax: 0,
    x: [0, -4, 1, -5, -1], qdq: [0, -4, 0, -4, (-64 * 4) / 255] },
  { what: "all zero, asymmetric: widened to [0, 0.01]", min: 0, max: 0, bw: 8, scheme: "asymmetric", scale: 0.01 / 255, offset: 0, encMin: 0, encMax: 0.01,
    x: [0, -1, 1], qdq: [0, 0, 0.01] },
  { what: "all zero, symmetric: max widened to 0.01 first", min: 0, max: 0, bw: 8, scheme: "symmetric", scale: 0.01 / 127, offset: -128, encMin: (-128 * 0.01) / 127, encMax: 0.01,
    x: [0, 1, -1], qdq: [0, 0.01, (-128 * 0.01) / 127] },
  // 2.5 / delta is 127.5 in real numbers, but delta is stored as float32 (a bit above 5/255), so
  // float32 division gives 127.499992 and rounds down, as AIMET's torch quantizer does.
  // (Multiplying by a float32 reciprocal instead gives exactly 127.5 and rounds to 128.)
  { what: "constant 5: the range includes 0; a real-number tie that is not one in float32", min: 5, max: 5, bw: 8, scheme: "asymmetric", scale: 5 / 255, offset: 0, encMin: 0, encMax: 5,
    x: [5, 0, 2.5], qdq: [5, 0, (127 * 5) / 255] },
  { what: "constant -3, symmetric", min: -3, max: -3, bw: 8, scheme: "symmetric", scale: 3 / 127, offset: -128, encMin: (-128 * 3) / 127, encMax: 3,
    x: [-3, 0], qdq: [-3, 0] },
  { what: "range narrower than 0.01 is widened", min: 0.001, max: 0.004, bw: 8, scheme: "asymmetric", scale: 0.01 / 255, offset: 0, encMin: 0, encMax: 0.01,
    x: [0.004, 0.02], qdq: [(102 * 0.01) / 255, 0.01] },
  { what: "narrow symmetric range: max widened to min + 0.01", min: -0.002, max: 0.003, bw: 8, scheme: "symmetric", scale: 0.008 / 127, offset: -128, encMin: (-128 * 0.008) / 127, encMax: 0.008,
    x: [0.003], qdq: [(48 * 0.008) / 127] },
  { what: "huge values, symmetric", min: -1e30, max: 1e30, bw: 8, scheme: "symmetric", scale: 1e30 / 127, offset: -128, encMin: (-128 * 1e30) / 127, encMax: 1e30,
    x: [1e30, -2e30, 0], qdq: [1e30, (-128 * 1e30) / 127, 0] },
  { what: "huge values, asymmetric: offset -63.75 rounds to -64", min: -1e30, max: 3e30, bw: 8, scheme: "asymmetric", scale: 4e30 / 255, offset: -64, encMin: (-64 * 4e30) / 255, encMax: (191 * 4e30) / 255,
    x: [0, 5e30], qdq: [0, (191 * 4e30) / 255] },
];

/** |a - b| within `rel` of |b| (or absolutely, near 0). */
export const close = (a: number, b: number, rel = 1e-6): boolean => Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-30);

const SCHEMES: QuantScheme[] = ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"];

describe("quant encodings (AIMET conventions)", () => {
  describe("known-answer table", () => {
    for (const row of KNOWN_ANSWERS) {
      it(row.what, () => {
        const enc = computeEncoding(row.min, row.max, row.bw, row.scheme);
        assert.equal(enc.scheme, row.effective ?? row.scheme);
        assert.ok(close(enc.scale, row.scale, 1e-12), `scale ${enc.scale} vs ${row.scale}`);
        assert.equal(enc.offset, row.offset);
        assert.ok(close(enc.min, row.encMin, 1e-12) || enc.min === row.encMin, `min ${enc.min} vs ${row.encMin}`);
        assert.ok(close(enc.max, row.encMax, 1e-12), `max ${enc.max} vs ${row.encMax}`);
        row.x.forEach((x, i) => {
          const y = quantizeDequantizeValue(x, enc);
          assert.ok(y === row.qdq[i] || close(y, row.qdq[i]), `qdq(${x}) = ${y}, expected ${row.qdq[i]}`);
        });
      });
    }
  });

  it("0 is exactly on the grid for every scheme, bit-width and range", () => {
    for (const scheme of SCHEMES) {
      for (const [lo, hi] of [[-0.37, 2.91], [0.2, 7], [-5, -0.3], [-1e-3, 1e-3], [-123.4, 0.01], [0, 0]]) {
        for (const bw of [2, 3, 4, 8, 16, 32]) {
          const e = computeEncoding(lo, hi, bw, scheme);
          assert.equal(quantizeDequantizeValue(0, e) + 0, 0, `${scheme} ${bw}-bit [${lo}, ${hi}]`);
          assert.ok(Number.isInteger(e.offset) && e.offset <= 0 && e.offset >= -e.numSteps);
          assert.ok(e.min <= 0 && e.max >= 0 && e.max - e.min >= 0.01 * (1 - 1e-12));
        }
      }
    }
  });

  it("32-bit encodings are the identity within float32 error, for every scheme", () => {
    for (const scheme of SCHEMES) {
      const unsigned = scheme === "unsigned-symmetric";
      const enc = computeEncoding(unsigned ? 0 : -25, 25, 32, scheme);
      assert.equal(enc.scheme, scheme);
      assert.equal(enc.numSteps, scheme === "strict-symmetric" ? 2 ** 32 - 2 : 2 ** 32 - 1);
      for (let i = 0; i < 1000; i++) {
        const x = Math.fround(Math.sin(i * 12.9898) * 25 * (i % 3 === 0 ? 1e-4 : 1));
        if (unsigned && x < 0) continue; // clipped to 0 by design
        // x / delta rounds to float32 (relative 2^-24), the integer is within half a step, the product rounds again.
        const bound = Math.abs(x) * 2 ** -22 + enc.scale;
        assert.ok(Math.abs(quantizeDequantizeValue(x, enc) - x) <= bound, `${scheme} x ${x}: ${quantizeDequantizeValue(x, enc)}`);
      }
    }
  });

  it("clear errors for bad bit-widths, NaN/Inf and inverted ranges", () => {
    assert.throws(() => validateBitwidth(1), /^Error: invalid bitwidth: 1 \(expected an integer from 2 to 32\)$/);
    assert.throws(() => validateBitwidth(33), /invalid bitwidth: 33 \(expected an integer from 2 to 32\)/);
    assert.throws(() => validateBitwidth(7.5), /invalid bitwidth: 7.5 \(expected an integer from 2 to 32\)/);
    assert.throws(() => computeEncoding(0, 1, 7.5, "asymmetric"), /invalid bitwidth: 7.5/);
    assert.throws(() => computeEncoding(NaN, 1, 8, "asymmetric"), /min NaN, max 1: both must be finite/);
    assert.throws(() => computeEncoding(0, Infinity, 8, "symmetric"), /must be finite/);
    assert.throws(() => computeEncoding(2, 1, 8, "symmetric"), /min 2 > max 1/);
    assert.throws(() => computeEncoding(-3.4e38, 3.4e38, 8, "symmetric"), /exceeds float32's range/);
  });

  it("encodingFromAimet with an explicit scheme: accepted when the entry fits it, an error otherwise", () => {
    const sym = encodingToAimet(computeEncoding(-3, 3, 8, "symmetric"));
    const strict = encodingToAimet(computeEncoding(-3, 3, 8, "strict-symmetric"));
    const unsigned = encodingToAimet(computeEncoding(0, 3, 8, "unsigned-symmetric"));
    const asym = encodingToAimet(computeEncoding(0, 3, 8, "asymmetric")); // offset 0 too, but is_symmetric "False"
    assert.equal(encodingFromAimet(sym, "symmetric").numSteps, 255);
    assert.equal(encodingFromAimet(strict, "strict-symmetric").numSteps, 254);
    assert.equal(encodingFromAimet(unsigned, "unsigned-symmetric").offset, 0);
    assert.equal(encodingFromAimet(asym).scheme, "asymmetric");
    assert.equal(encodingFromAimet(asym, "asymmetric").scheme, "asymmetric");
    assert.throws(() => encodingFromAimet(sym, "strict-symmetric"), /is_symmetric "True", offset -128, 8 bits\) is not strict-symmetric/);
    assert.throws(() => encodingFromAimet(asym, "unsigned-symmetric"), /is not unsigned-symmetric/);
    assert.throws(() => encodingFromAimet(sym, "asymmetric"), /is not asymmetric/);
    // 2 bits: symmetric offset -2 and strict offset -1 stay distinguishable.
    assert.equal(encodingFromAimet(encodingToAimet(computeEncoding(-1, 1, 2, "strict-symmetric"))).scheme, "strict-symmetric");
    assert.equal(encodingFromAimet(encodingToAimet(computeEncoding(-1, 1, 2, "symmetric"))).scheme, "symmetric");
  });

  it("AIMET JSON round trip keeps scale, offset, min, max and the scheme exactly", () => {
    for (const scheme of SCHEMES) {
      for (const bw of [2, 4, 8, 16]) {
        for (const [lo, hi] of [[-0.7, 3.1], [0, 5], [-2, -1]]) {
          const enc = computeEncoding(lo, hi, bw, scheme);
          const json = encodingToAimet(enc);
          assert.equal(json.dtype, "int");
          assert.equal(json.is_symmetric, enc.scheme === "asymmetric" ? "False" : "True");
          assert.deepEqual(Object.keys(json).sort(), ["bitwidth", "dtype", "is_symmetric", "max", "min", "offset", "scale"]);
          assert.deepEqual(encodingFromAimet(JSON.parse(JSON.stringify(json))), enc, `${scheme} ${bw}-bit [${lo}, ${hi}]`);
        }
      }
    }
    const good = encodingToAimet(computeEncoding(-1, 1, 8, "asymmetric"));
    assert.equal(encodingFromAimet({ ...good, is_symmetric: false as unknown as "False" }).scheme, "asymmetric", "JSON booleans are read too");
    assert.throws(() => encodingFromAimet({ ...good, is_symmetric: "yes" as "True" }), /is_symmetric must be "True" or "False", got "yes"/);
    assert.throws(() => encodingFromAimet({ ...good, scale: 0 }), /scale must be positive/);
    assert.throws(() => encodingFromAimet({ ...good, offset: 3 }), /offset must be an integer from -255 to 0/);
    assert.throws(() => encodingFromAimet({ ...good, bitwidth: 1 }), /invalid bitwidth: 1/);
  });
});
