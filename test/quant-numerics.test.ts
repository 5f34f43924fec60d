import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { computeEncoding, Encoding, encodingFromAimet, encodingToAimet, quantizeDequantizeValue, QuantScheme, validateBitwidth } from "../src/quant/encoding";
import { fakeQuant, fakeQuantComposed } from "../src/quant/fake-quant";
import { quantizationMse, rangeFromStats, weightRange } from "../src/quant/range-setting";
import { channelMinMax, TensorStats } from "../src/quant/stats";
import { useBackend } from "../src/backend";
import { assertNoLeak } from "./helpers";

/**
 * Known answers, worked out by hand from AIMET's conventions (see
 * src/quant/encoding.ts). Scales are chosen so that ties are exact.
 */
interface Row {
  what: string;
  min: number;
  max: number;
  bw: number;
  scheme: QuantScheme;
  scale: number;
  offset: number;
  encMin: number;
  encMax: number;
  x: number[];
  qdq: number[];
}

const TABLE: Row[] = [
  { what: "8-bit symmetric, ties to even, clipping", min: -127, max: 127, bw: 8, scheme: "symmetric", scale: 1, offset: -128, encMin: -128, encMax: 127,
    x: [0, 0.5, 1.5, 2.5, 3.5, -2.5, 127.6, -130, 126.4], qdq: [0, 0, 2, 2, 4, -2, 127, -128, 126] },
  { what: "8-bit strict symmetric drops -128", min: -50, max: 127, bw: 8, scheme: "strict-symmetric", scale: 1, offset: -127, encMin: -127, encMax: 127,
    x: [-130, -127.4, 127.4, 0], qdq: [-127, -127, 127, 0] },
  { what: "8-bit unsigned symmetric", min: 0, max: 255, bw: 8, scheme: "unsigned-symmetric", scale: 1, offset: 0, encMin: 0, encMax: 255,
    x: [-3, 254.5, 300, 0.5], qdq: [0, 254, 255, 0] },
  { what: "unsigned symmetric with negatives falls back to signed", min: -1, max: 127, bw: 8, scheme: "unsigned-symmetric", scale: 1, offset: -128, encMin: -128, encMax: 127,
    x: [-1, 5.5], qdq: [-1, 6] },
  { what: "8-bit asymmetric, 0 on the grid", min: -1, max: 1, bw: 8, scheme: "asymmetric", scale: 2 / 255, offset: -128, encMin: (-128 * 2) / 255, encMax: (127 * 2) / 255,
    x: [0, -2, 2], qdq: [0, (-128 * 2) / 255, (127 * 2) / 255] },
  { what: "4-bit asymmetric, all positive", min: 0, max: 15, bw: 4, scheme: "asymmetric", scale: 1, offset: 0, encMin: 0, encMax: 15,
    x: [7.5, 6.5, 16, -1], qdq: [8, 6, 15, 0] },
  { what: "2-bit symmetric", min: -1, max: 1, bw: 2, scheme: "symmetric", scale: 1, offset: -2, encMin: -2, encMax: 1,
    x: [-3, 0.6, -1.5, 1.7], qdq: [-2, 1, -2, 1] },
  { what: "all negative", min: -4, max: -1, bw: 8, scheme: "asymmetric", scale: 4 / 255, offset: -255, encMin: -4, encMax: 0,
    x: [0, -4, 1], qdq: [0, -4, 0] },
  { what: "all zero: widened to 0.01", min: 0, max: 0, bw: 8, scheme: "asymmetric", scale: 0.01 / 255, offset: 0, encMin: 0, encMax: 0.01,
    x: [0, -1, 1], qdq: [0, 0, 0.01] },
  { what: "constant 5: range includes 0", min: 5, max: 5, bw: 8, scheme: "asymmetric", scale: 5 / 255, offset: 0, encMin: 0, encMax: 5,
    x: [5, 0], qdq: [5, 0] },
  { what: "range narrower than 0.01", min: 0.001, max: 0.004, bw: 8, scheme: "asymmetric", scale: 0.01 / 255, offset: 0, encMin: 0, encMax: 0.01,
    x: [0.004], qdq: [(Math.round(0.004 / (0.01 / 255)) * 0.01) / 255] },
  { what: "very large values", min: -1e30, max: 1e30, bw: 8, scheme: "symmetric", scale: 1e30 / 127, offset: -128, encMin: (-128 * 1e30) / 127, encMax: 1e30,
    x: [1e30, -2e30, 0], qdq: [1e30, (-128 * 1e30) / 127, 0] },
];

/** Values with -0 turned into 0: the sign of a zero differs between tf.round and our kernel and means nothing here. */
const plain = (xs: ArrayLike<number>) => Array.from(xs, (v) => v + 0);

const close = (a: number, b: number, rel = 1e-6) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)) || Math.abs(a - b) <= rel * Math.abs(b);

for (const backend of ["wasm", "cpu"]) {
  describe(`quantization numerics on ${backend}`, () => {
    before(() => useBackend(backend));
    after(() => useBackend());

    describe("known-answer table", () => {
      for (const row of TABLE) {
        it(row.what, async () => {
          const enc = computeEncoding(row.min, row.max, row.bw, row.scheme);
          assert.ok(close(enc.scale, row.scale, 1e-12), `scale ${enc.scale} vs ${row.scale}`);
          assert.equal(enc.offset, row.offset);
          assert.ok(close(enc.min, row.encMin, 1e-12), `min ${enc.min} vs ${row.encMin}`);
          assert.ok(close(enc.max, row.encMax, 1e-12), `max ${enc.max} vs ${row.encMax}`);
          const reference = row.x.map((v) => quantizeDequantizeValue(v, enc));
          reference.forEach((v, i) => assert.ok(close(v, row.qdq[i]), `reference qdq(${row.x[i]}) = ${v}, expected ${row.qdq[i]}`));
          await assertNoLeak("fakeQuant", () => {
            const x = tf.tensor1d(row.x);
            const fused = fakeQuant(x, enc);
            const composed = fakeQuantComposed(x, enc);
            assert.deepEqual(plain(fused.dataSync()), plain(reference.map(Math.fround)), "fused kernel == reference");
            assert.deepEqual(plain(composed.dataSync()), plain(reference.map(Math.fround)), "composed ops == reference");
            tf.dispose([x, fused, composed]);
          });
        });
      }
    });

    it("kernel, composed ops and JS reference agree on random tensors, per tensor and per channel", () => {
      const cases: { shape: number[]; axis: number }[] = [
        { shape: [3, 3, 4, 8], axis: 3 },
        { shape: [3, 3, 4, 8], axis: 2 },
        { shape: [16, 10], axis: 1 },
      ];
      for (const { shape, axis } of cases) {
        tf.tidy(() => {
          const x = tf.randomNormal(shape, 0, 2, "float32", 7);
          const values = x.dataSync();
          const perChannel = channelMinMax(x, axis).map((r) => computeEncoding(r.min, r.max, 8, "symmetric"));
          const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
          for (const enc of [computeEncoding(-3, 3, 8, "asymmetric"), perChannel] as (Encoding | Encoding[])[]) {
            const fused = fakeQuant(x, enc, { axis }).dataSync();
            const composed = fakeQuantComposed(x, enc, { axis }).dataSync();
            const reference = Array.from(values, (v, i) => Math.fround(quantizeDequantizeValue(v, Array.isArray(enc) ? enc[Math.floor(i / inner) % shape[axis]] : enc)));
            assert.deepEqual(plain(fused), plain(reference), `fused, shape ${shape} axis ${axis}`);
            assert.deepEqual(plain(composed), plain(reference), `composed, shape ${shape} axis ${axis}`);
          }
        });
      }
    });

    it("a 32-bit quantizer is the identity within float error; 0 is always exactly representable", () => {
      tf.tidy(() => {
        const x = tf.randomNormal([1000], 0, 5, "float32", 3);
        const enc = computeEncoding(-25, 25, 32, "asymmetric");
        const err = tf.max(tf.abs(tf.sub(fakeQuant(x, enc), x))).dataSync()[0];
        assert.ok(err <= 50 * 2 ** -23, `32-bit error ${err}`);
        for (const scheme of ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"] as QuantScheme[]) {
          for (const [lo, hi] of [[-0.37, 2.91], [0.2, 7], [-5, -0.3], [-1e-3, 1e-3]]) {
            for (const bw of [2, 4, 8, 16]) {
              const e = computeEncoding(lo, hi, bw, scheme);
              assert.equal(quantizeDequantizeValue(0, e), 0, `${scheme} ${bw}-bit [${lo}, ${hi}]`);
              assert.equal(fakeQuant(tf.zeros([1]), e).dataSync()[0], 0);
            }
          }
        }
      });
    });

    it("straight-through gradient: 1 inside the range, 0 where the quantizer clips", () => {
      tf.tidy(() => {
        const enc = computeEncoding(-1, 1, 8, "asymmetric");
        const x = tf.tensor1d([-3, -0.5, 0, 0.7, 0.99, 3]);
        for (const f of [fakeQuant, fakeQuantComposed]) {
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t, enc), 2)))(x);
          assert.deepEqual(Array.from(g.dataSync()), [0, 2, 2, 2, 2, 0]);
        }
      });
    });

    it("stochastic rounding is deterministic per seed and unbiased on average", () => {
      tf.tidy(() => {
        const enc = computeEncoding(0, 255, 8, "unsigned-symmetric"); // scale 1
        const x = tf.fill([20000], 10.25);
        const a = fakeQuant(x, enc, { rounding: "stochastic", seed: 1 }).dataSync();
        const b = fakeQuant(x, enc, { rounding: "stochastic", seed: 1 }).dataSync();
        const c = fakeQuant(x, enc, { rounding: "stochastic", seed: 2 }).dataSync();
        assert.deepEqual(Array.from(a), Array.from(b));
        assert.notDeepEqual(Array.from(a), Array.from(c));
        assert.ok(Array.from(a).every((v) => v === 10 || v === 11));
        const mean = Array.from(a).reduce((s, v) => s + v, 0) / a.length;
        assert.ok(Math.abs(mean - 10.25) < 0.02, `mean ${mean}`);
      });
    });
  });
}

describe("encodings and range setting", () => {
  it("clear errors for bad bit-widths and ranges", () => {
    assert.throws(() => validateBitwidth(1), /invalid bitwidth: 1 \(expected an integer from 2 to 32\)/);
    assert.throws(() => validateBitwidth(33), /invalid bitwidth: 33/);
    assert.throws(() => validateBitwidth(7.5), /invalid bitwidth: 7.5/);
    assert.throws(() => computeEncoding(NaN, 1, 8, "asymmetric"), /must be finite/);
    assert.throws(() => computeEncoding(0, Infinity, 8, "asymmetric"), /must be finite/);
  });

  it("AIMET JSON round trip keeps scale, offset, min and max exactly, and the scheme", () => {
    for (const scheme of ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"] as QuantScheme[]) {
      const enc = computeEncoding(scheme === "unsigned-symmetric" ? 0 : -0.7, 3.1, 8, scheme);
      const json = encodingToAimet(enc);
      assert.equal(json.is_symmetric, scheme === "asymmetric" ? "False" : "True");
      assert.deepEqual(encodingFromAimet(JSON.parse(JSON.stringify(json))), enc);
    }
  });

  it("streaming histograms: batch by batch equals all at once, merge equals one observer, NaN is an error", () => {
    const values = Array.from({ length: 5000 }, (_, i) => Math.sin(i * 0.37) * (i < 2500 ? 1 : 40));
    const all = new TensorStats();
    all.addValues(values);
    const streamed = new TensorStats();
    for (let s = 0; s < values.length; s += 500) streamed.addValues(values.slice(s, s + 500));
    assert.deepEqual(streamed.toJSON(), all.toJSON());
    const a = new TensorStats();
    const b = new TensorStats();
    a.addValues(values.slice(0, 2500));
    b.addValues(values.slice(2500));
    a.merge(b);
    assert.deepEqual(a.toJSON(), all.toJSON());
    const h = all.toJSON();
    assert.equal(h.counts.reduce((s, c) => s + c, 0), 5000);
    assert.ok(h.counts.length <= 2048);
    assert.throws(() => all.addValues([1, NaN, Infinity]), /saw 2 NaN or infinite value/);
  });

  it("percentile clips the tails; MSE and SQNR searches never do worse than min-max", () => {
    const values = Array.from({ length: 20000 }, (_, i) => Math.tan(((i / 20000) - 0.5) * 3.1)); // heavy tails
    const stats = new TensorStats();
    stats.addValues(values);
    const mm = rangeFromStats(stats, "minmax", { bitwidth: 8, scheme: "asymmetric" });
    const p = rangeFromStats(stats, "percentile", { bitwidth: 8, scheme: "asymmetric", percentile: 99 });
    assert.ok(p.max < mm.max && p.min > mm.min);
    assert.throws(() => rangeFromStats(stats, "percentile", { bitwidth: 8, scheme: "asymmetric", percentile: 0 }), /invalid percentile: 0/);
    for (const method of ["mse", "sqnr"]) {
      const r = rangeFromStats(stats, method, { bitwidth: 4, scheme: "asymmetric" });
      const mse = (range: { min: number; max: number }) => quantizationMse(values, computeEncoding(range.min, range.max, 4, "asymmetric"));
      assert.ok(mse(r) <= mse(mm), `${method}: ${mse(r)} > min-max ${mse(mm)}`);
    }
  });

  it("on weights: MSE search <= min-max, and per-channel <= per-tensor, exactly", () => {
    tf.tidy(() => {
      // Channel scales differ by 100x: the case per-channel quantization is for.
      const w = tf.mul(tf.randomNormal([3, 3, 4, 6], 0, 1, "float32", 9), tf.tensor1d([0.01, 0.1, 1, 2, 0.05, 1]));
      const values = w.dataSync();
      const opts = { bitwidth: 4, scheme: "symmetric" as QuantScheme };
      const perTensor = weightRange(w, "minmax", opts) as { min: number; max: number };
      const searched = weightRange(w, "mse", opts) as { min: number; max: number };
      const tensorMse = quantizationMse(values, computeEncoding(perTensor.min, perTensor.max, 4, "symmetric"));
      assert.ok(quantizationMse(values, computeEncoding(searched.min, searched.max, 4, "symmetric")) <= tensorMse);
      for (const method of ["minmax", "mse"] as const) {
        const channels = weightRange(w, method, { ...opts, axis: 3 }) as { min: number; max: number }[];
        let sum = 0;
        channels.forEach((r, c) => (sum += quantizationMse(values, computeEncoding(r.min, r.max, 4, "symmetric"), c, values.length, 6) * (values.length / 6)));
        assert.ok(sum / values.length <= tensorMse, `${method} per-channel ${sum / values.length} > per-tensor ${tensorMse}`);
      }
    });
  });
});
