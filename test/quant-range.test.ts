import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { computeEncoding, quantizeDequantizeValue, QuantScheme } from "../src/quant/encoding";
import { quantizationMse, Range, rangeFromStats, weightRange } from "../src/quant/range-setting";
import { channelMinMax, TensorStats } from "../src/quant/stats";
import { useBackend } from "../src/backend";
import { assertNoLeak, setupBackend } from "./helpers";

const SCHEMES: QuantScheme[] = ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"];
/** Heavy-tailed, asymmetric sample values. */
const heavy = Array.from({ length: 20000 }, (_, i) => Math.tan((i / 20000 - 0.45) * 2.8));

describe("TensorStats (streaming activation statistics)", () => {
  it("batch by batch equals all at once; merge equals one observer; memory stays bounded", () => {
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
    assert.equal(h.count, 5000);
    assert.equal(h.counts.reduce((s, c) => s + c, 0), 5000);
    assert.ok(h.counts.length <= 2048 && h.edges.length === h.counts.length + 1);
    assert.equal(h.min, Math.min(...values));
    assert.equal(h.max, Math.max(...values));
    assert.ok(h.edges[0] <= h.min && h.edges[h.edges.length - 1] >= h.max);
    assert.deepEqual(JSON.parse(JSON.stringify(h)), h, "plain JSON");
  });

  it("update reads a tensor once without leaking; NaN/Inf is an error saying how many", async () => {
    await useBackend("cpu");
    try {
      const stats = new TensorStats();
      const t = tf.tensor1d([1, -2, 3.5]);
      await assertNoLeak("update", () => stats.update(t));
      assert.deepEqual([stats.min, stats.max, stats.count], [-2, 3.5, 3]);
      assert.throws(() => stats.update(tf.tensor1d([1, NaN, Infinity, -Infinity])), /saw 3 NaN or infinite value\(s\) among 4 \(1 NaN, 2 infinite\)/);
      assert.equal(stats.count, 3, "a rejected batch leaves the statistics as they were");
      tf.disposeVariables();
      t.dispose();
    } finally {
      await setupBackend();
    }
  });

  it("channelMinMax per channel along any axis", () => {
    const t = tf.tensor3d([[[1, -5], [2, 6]], [[-3, 0], [4, 7]]]); // [2, 2, 2]
    assert.deepEqual(channelMinMax(t, 2), [{ min: -3, max: 4 }, { min: -5, max: 7 }]);
    assert.deepEqual(channelMinMax(t, 0), [{ min: -5, max: 6 }, { min: -3, max: 7 }]);
    assert.deepEqual(channelMinMax(t, -2), [{ min: -5, max: 1 }, { min: 2, max: 7 }]);
    t.dispose();
  });
});

describe("range setting", () => {
  const stats = new TensorStats();
  stats.addValues(heavy);
  const exactMse = (r: Range, bw: number, scheme: QuantScheme) => quantizationMse(heavy, computeEncoding(r.min, r.max, bw, scheme));

  it("minmax is the observed range; percentile clips each tail; bad percentiles are errors", () => {
    const mm = rangeFromStats(stats, "minmax", { bitwidth: 8, scheme: "asymmetric" });
    assert.deepEqual(mm, { min: Math.min(...heavy), max: Math.max(...heavy) });
    const p = rangeFromStats(stats, "percentile", { bitwidth: 8, scheme: "asymmetric", percentile: 99 });
    const below = (v: number) => heavy.filter((x) => x <= v).length / heavy.length;
    assert.ok(Math.abs(below(p.max) - 0.99) < 0.002 && Math.abs(below(p.min) - 0.01) < 0.002, `${p.min} ${p.max}`);
    assert.deepEqual(rangeFromStats(stats, "percentile", { bitwidth: 8, scheme: "asymmetric", percentile: 100 }), mm);
    for (const bad of [0, -1, 100.5, NaN]) {
      assert.throws(() => rangeFromStats(stats, "percentile", { bitwidth: 8, scheme: "asymmetric", percentile: bad }), /invalid percentile: .* \(expected a number in \(0, 100\]\)/);
    }
    assert.throws(() => rangeFromStats(stats, "percentile", { bitwidth: 8, scheme: "asymmetric", percentile: 30 }), /invalid percentile: 30 keeps less than half .* \(expected 50 to 100\)/);
    const median = rangeFromStats(stats, "percentile", { bitwidth: 8, scheme: "asymmetric", percentile: 50 });
    assert.ok(Math.abs(median.max - median.min) < 1e-2, "50 keeps the median on both sides");
    assert.throws(() => rangeFromStats(stats, "entropy", { bitwidth: 8, scheme: "asymmetric" }), /invalid range method: "entropy"/);
    assert.throws(() => rangeFromStats(new TensorStats(), "minmax", { bitwidth: 8, scheme: "asymmetric" }), /no statistics/);
  });

  it("MSE and SQNR searches do better than min-max on heavy tails (exact MSE), for every scheme", () => {
    for (const scheme of SCHEMES) {
      for (const bw of [4, 8]) {
        const mm = exactMse(rangeFromStats(stats, "minmax", { bitwidth: bw, scheme }), bw, scheme);
        for (const method of ["mse", "sqnr"] as const) {
          const r = rangeFromStats(stats, method, { bitwidth: bw, scheme });
          assert.ok(exactMse(r, bw, scheme) <= mm, `${method} ${scheme} ${bw}-bit: ${exactMse(r, bw, scheme)} > min-max ${mm}`);
        }
      }
    }
  });

  it("0 is exactly representable in every searched range", () => {
    for (const scheme of SCHEMES) {
      for (const method of ["minmax", "percentile", "mse", "sqnr"] as const) {
        const r = rangeFromStats(stats, method, { bitwidth: 4, scheme, percentile: 99.9 });
        assert.equal(quantizeDequantizeValue(0, computeEncoding(r.min, r.max, 4, scheme)) + 0, 0, `${method} ${scheme}`);
      }
    }
  });

  describe("weights", () => {
    before(() => useBackend("cpu"));
    after(() => setupBackend());

    it("exact MSE search <= min-max, and per channel <= per tensor, for every scheme", async () => {
      // Channel scales differ by 100x: the case per-channel quantization is for.
      const w = tf.tidy(() => tf.mul(tf.randomNormal([3, 3, 4, 6], 0.1, 1, "float32", 9), tf.tensor1d([0.01, 0.1, 1, 2, 0.05, 1])));
      const values = w.dataSync();
      await assertNoLeak("weightRange", () => {
        for (const scheme of SCHEMES) {
          for (const bw of [4, 8]) {
            const opts = { bitwidth: bw, scheme };
            const tensorMse = (r: Range) => quantizationMse(values, computeEncoding(r.min, r.max, bw, scheme));
            const mm = tensorMse(weightRange(w, "minmax", opts));
            const searched = tensorMse(weightRange(w, "mse", opts));
            assert.ok(searched <= mm, `${scheme} ${bw}: mse ${searched} > min-max ${mm}`);
            const perChannel = weightRange(w, "mse", { ...opts, axis: 3 });
            assert.equal(perChannel.length, 6);
            let sum = 0;
            perChannel.forEach((r, c) => (sum += quantizationMse(values, computeEncoding(r.min, r.max, bw, scheme), c, values.length, 6) * (values.length / 6)));
            assert.ok(sum / values.length <= searched, `${scheme} ${bw}: per channel ${sum / values.length} > per tensor ${searched}`);
          }
        }
      });
      w.dispose();
    });

    it("the invariants hold on any tensor: seeded random shapes, scales and tails", () => {
      for (let seed = 1; seed <= 12; seed++) {
        const shape = [1 + (seed % 3), 2 + (seed % 4), 3 + (seed % 5)];
        const axis = seed % 3;
        const w = tf.tidy(() => tf.mul(tf.randomNormal(shape, seed % 2 ? 0 : 0.5, 1, "float32", seed), tf.pow(tf.randomUniform(shape, 0, 1, "float32", seed + 100), 3)));
        const values = w.dataSync();
        const scheme = SCHEMES[seed % 4];
        const bw = [2, 4, 8][seed % 3];
        const opts = { bitwidth: bw, scheme };
        const mse = (r: Range) => quantizationMse(values, computeEncoding(r.min, r.max, bw, scheme));
        const tensorMse = mse(weightRange(w, "mse", opts));
        assert.ok(tensorMse <= mse(weightRange(w, "minmax", opts)), `seed ${seed}: mse search worse than min-max`);
        const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
        const channel = (i: number) => Math.floor(i / inner) % shape[axis];
        const ranges = weightRange(w, "mse", { ...opts, axis });
        const encs = ranges.map((r) => computeEncoding(r.min, r.max, bw, scheme));
        let sum = 0;
        values.forEach((v, i) => (sum += (quantizeDequantizeValue(v, encs[channel(i)]) - v) ** 2));
        assert.ok(sum / values.length <= tensorMse, `seed ${seed}: per channel ${sum / values.length} > per tensor ${tensorMse}`);
        w.dispose();
      }
    });

    it("per channel along a middle axis, and clear errors", () => {
      const w = tf.tensor3d([[[1, 2], [-30, 40]], [[3, -4], [50, 60]]]); // [2, 2, 2], axis 1
      assert.deepEqual(weightRange(w, "minmax", { bitwidth: 8, scheme: "symmetric", axis: 1 }), [{ min: -4, max: 3 }, { min: -30, max: 60 }]);
      assert.throws(() => weightRange(w, "minmax", { bitwidth: 8, scheme: "symmetric", axis: 3 }), /axis 3 is out of range/);
      assert.throws(() => weightRange(w, "sqnr" as "mse", { bitwidth: 8, scheme: "symmetric" }), /invalid weight range method/);
      const bad = tf.tensor1d([1, NaN]);
      assert.throws(() => weightRange(bad, "minmax", { bitwidth: 8, scheme: "symmetric" }), /NaN or infinite values \(first at index 1\)/);
      tf.dispose([w, bad]);
    });
  });
});
