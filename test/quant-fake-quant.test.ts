import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { computeEncoding, Encoding, quantizeDequantizeValue, QuantScheme } from "../src/quant/encoding";
import { fakeQuant, fakeQuantComposed } from "../src/quant/fake-quant";
import { channelMinMax } from "../src/quant/stats";
import { useBackend } from "../src/backend";
import { assertNoLeak, setupBackend } from "./helpers";
import { close, KNOWN_ANSWERS } from "./quant-encoding.test";

/**
 * -0 becomes 0: tf.round and the kernel's SIMD loop keep the sign of zero (-0.3
 * rounds to -0), its JS loop gives +0, tfjs-cpu's round gives +0 for -0.5; the
 * sign of a zero means nothing here.
 */
const plain = (xs: ArrayLike<number>) => Array.from(xs, (v) => v + 0);

/** The JS reference for a whole tensor, per tensor or per channel (channel of i = floor(i / inner) % C). */
function reference(values: ArrayLike<number>, shape: number[], enc: Encoding | Encoding[], axis: number): number[] {
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return Array.from(values, (v, i) => quantizeDequantizeValue(v, Array.isArray(enc) ? enc[Math.floor(i / inner) % enc.length] : enc) + 0);
}

for (const backend of ["wasm", "cpu"]) {
  describe(`fakeQuant on ${backend}`, () => {
    before(() => useBackend(backend));
    after(() => setupBackend());

    describe("known-answer table through the kernel and the composed ops", () => {
      for (const row of KNOWN_ANSWERS) {
        it(row.what, async () => {
          const enc = computeEncoding(row.min, row.max, row.bw, row.scheme);
          const x = tf.tensor1d(row.x);
          await assertNoLeak("fakeQuant and fakeQuantComposed", () => {
            for (const f of [fakeQuant, fakeQuantComposed]) {
              const y = f(x, enc);
              Array.from(y.dataSync()).forEach((v, i) => assert.ok(v === row.qdq[i] || close(v, row.qdq[i]), `${f.name}(${row.x[i]}) = ${v}, expected ${row.qdq[i]}`));
              y.dispose();
            }
          });
          x.dispose();
        });
      }
    });

    it("kernel, composed ops and JS reference agree bit for bit on random tensors, per tensor and per channel, 2 to 32 bits", async () => {
      const cases = [
        { shape: [3, 3, 4, 8], axis: 3 },
        { shape: [3, 3, 4, 8], axis: 2 },
        { shape: [16, 10], axis: 1 },
        { shape: [16, 10], axis: 0 },
      ];
      for (const { shape, axis } of cases) {
        for (const scheme of ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"] as QuantScheme[]) {
          for (const bw of [2, 4, 8, 16, 25, 32]) {
            const x = tf.randomNormal(shape, 0.3, 2, "float32", 7 + bw);
            const values = x.dataSync();
            const perChannel = channelMinMax(x, axis).map((r) => computeEncoding(r.min, r.max, bw, scheme));
            for (const enc of [computeEncoding(-2.5, 3.3, bw, scheme), perChannel]) {
              const what = `[${shape}] axis ${axis} ${scheme} ${bw}-bit ${Array.isArray(enc) ? "per channel" : "per tensor"}`;
              await assertNoLeak(what, () => {
                const fused = fakeQuant(x, enc, { axis });
                const composed = fakeQuantComposed(x, enc, { axis });
                const expected = reference(values, shape, enc, axis);
                assert.deepEqual(fused.shape, shape);
                assert.deepEqual(plain(fused.dataSync()), expected, `fused, ${what}`);
                assert.deepEqual(plain(composed.dataSync()), expected, `composed, ${what}`);
                tf.dispose([fused, composed]);
              });
            }
            x.dispose();
          }
        }
      }
    });

    it("every kernel layout (SIMD per tensor with a tail, periodic table with a tail, channel runs with tails, JS) matches, without leaks", async () => {
      // [shape, axis]: per tensor when axis is undefined; the comments name the wasm path taken.
      const cases: [number[], number | undefined][] = [
        [[4097], undefined], // SIMD per tensor, 1 element left for JS
        [[7, 5], 1], // period lcm(5, 4) = 20: table for 20 elements, JS for 15
        [[3, 2, 5], 0], // inner 10, period 60 > 30 elements: JS
        [[2, 3, 30001], 1], // period 90003 > 65536, runs of 30001: SIMD per run, 1 element each for JS
        [[2, 5000, 20], 1], // period 100000, runs of 20: JS
        [[5, 7, 13, 97], -2], // period 4 * 1261: table, then a tail; several JS blocks on cpu
      ];
      const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
      for (const [shape, axis] of cases) {
        const x = tf.randomNormal(shape, 0.2, 3, "float32", shape.length + shape[shape.length - 1]);
        const values = x.dataSync();
        const ax = axis === undefined ? shape.length - 1 : axis < 0 ? axis + shape.length : axis;
        const enc = axis === undefined ? computeEncoding(-4, 5, 8, "asymmetric") : channelMinMax(x, ax).map((r, c) => computeEncoding(r.min * (1 + c / 7), r.max, 4, "asymmetric"));
        const expected = reference(values, shape, enc, ax);
        const before = dataIds();
        await assertNoLeak(`[${shape}]`, () => {
          const a = fakeQuant(x, enc, { axis });
          const b = fakeQuantComposed(x, enc, { axis });
          assert.deepEqual(plain(a.dataSync()), expected, `kernel [${shape}] axis ${axis}`);
          assert.deepEqual(plain(b.dataSync()), expected, `composed [${shape}] axis ${axis}`);
          tf.dispose([a, b]);
        });
        assert.equal(dataIds(), before, "the kernel's scratch table is freed");
        x.dispose();
      }
    });

    it("NaN passes through the kernel; infinities clip to the grid's ends", async () => {
      const enc = computeEncoding(-1, 1, 8, "asymmetric");
      const x = tf.tensor2d([[NaN, Infinity, -Infinity, 0.5], [0.25, NaN, 7, -7]]);
      const perChannel = [enc, enc, enc, computeEncoding(-2, 2, 8, "symmetric")];
      await assertNoLeak("NaN", () => {
        for (const e of [enc, perChannel]) {
          const expected = reference(x.dataSync(), x.shape, e, 1);
          assert.ok(Number.isNaN(expected[0]) && close(expected[1], enc.max) && close(expected[2], enc.min), `${expected}`);
          const y = fakeQuant(x, e);
          assert.deepEqual(plain(y.dataSync()), expected);
          // The composed ops agree on the rest; tf.clipByValue on wasm maps NaN to the lower bound.
          const z = fakeQuantComposed(x, e);
          const finite = (vs: number[]) => vs.filter((_, i) => !Number.isNaN(expected[i]));
          assert.deepEqual(finite(plain(z.dataSync())), finite(expected));
          tf.dispose([y, z]);
        }
      });
      x.dispose();
    });

    it("on a large tensor (several blocks) the kernel equals the composed ops; negative axis works", async () => {
      const x = tf.randomNormal([5, 7, 13, 97], 0, 3, "float32", 11);
      const encs = channelMinMax(x, 2).map((r) => computeEncoding(r.min, r.max, 4, "asymmetric"));
      await assertNoLeak("large", () => {
        for (const [enc, axis] of [[computeEncoding(-4, 5, 8, "asymmetric"), undefined], [encs, -2]] as [Encoding | Encoding[], number | undefined][]) {
          const a = fakeQuant(x, enc, { axis });
          const b = fakeQuantComposed(x, enc, { axis });
          assert.deepEqual(plain(a.dataSync()), plain(b.dataSync()));
          tf.dispose([a, b]);
        }
      });
      x.dispose();
    });

    it("a 32-bit quantizer is the identity within float32 error; 0 maps to 0 exactly", async () => {
      const x = tf.randomNormal([1000], 0, 5, "float32", 3);
      const zeros = tf.zeros([4]);
      await assertNoLeak("32-bit", () => {
        const enc = computeEncoding(-25, 25, 32, "asymmetric");
        const y = fakeQuant(x, enc);
        const err = tf.tidy(() => tf.max(tf.abs(tf.sub(y, x))).dataSync()[0]);
        assert.ok(err <= 50 * 2 ** -23, `32-bit error ${err}`);
        y.dispose();
        for (const scheme of ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"] as QuantScheme[]) {
          for (const bw of [2, 8, 16, 32]) {
            const z = fakeQuant(zeros, computeEncoding(-0.37, 2.91, bw, scheme));
            assert.deepEqual(plain(z.dataSync()), [0, 0, 0, 0]);
            z.dispose();
          }
        }
      });
      tf.dispose([x, zeros]);
    });

    it("straight-through gradient: dy inside the range (within half a step), 0 where it clips", async () => {
      const enc = computeEncoding(-1, 1, 8, "asymmetric"); // grid [-128, 127] * 2/255
      const half = enc.scale / 2;
      const x = tf.tensor1d([-3, enc.min - 1.5 * half, enc.min - 0.5 * half, -0.5, 0, 0.7, enc.max + 0.5 * half, enc.max + 1.5 * half, 3]);
      const perChannel = [enc, computeEncoding(-10, 10, 8, "symmetric")];
      const x2 = tf.tensor2d([[-3, -3], [0.5, 0.5], [3, 3]]);
      await assertNoLeak("gradients", () => {
        for (const f of [fakeQuant, fakeQuantComposed]) {
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t, enc), 2)))(x);
          assert.deepEqual(Array.from(g.dataSync()), [0, 0, 2, 2, 2, 2, 2, 0, 0], f.name);
          const g2 = tf.grad((t: tf.Tensor) => tf.sum(f(t, perChannel, { axis: 1 })))(x2);
          assert.deepEqual(Array.from(g2.dataSync()), [0, 1, 1, 1, 0, 1], `${f.name} per channel`);
          tf.dispose([g, g2]);
        }
      });
      tf.dispose([x, x2]);
    });

    it("stochastic rounding is deterministic per seed and unbiased on average", async () => {
      const enc = computeEncoding(0, 255, 8, "unsigned-symmetric"); // scale 1
      const x = tf.fill([20000], 10.25);
      await assertNoLeak("stochastic", () => {
        const run = (seed: number) => {
          const y = fakeQuant(x, enc, { rounding: "stochastic", seed });
          const v = Array.from(y.dataSync());
          y.dispose();
          return v;
        };
        const a = run(1);
        assert.deepEqual(a, run(1));
        assert.notDeepEqual(a, run(2));
        assert.ok(a.every((v) => v === 10 || v === 11));
        const mean = a.reduce((s, v) => s + v, 0) / a.length;
        assert.ok(Math.abs(mean - 10.25) < 0.02, `mean ${mean}`);
        // The composed ops draw another stream with the same law.
        const c = fakeQuantComposed(x, enc, { rounding: "stochastic", seed: 1 });
        const cm = Array.from(c.dataSync()).reduce((s, v) => s + v, 0) / a.length;
        assert.ok(Math.abs(cm - 10.25) < 0.02, `composed mean ${cm}`);
        c.dispose();
      });
      x.dispose();
    });

    it("clear errors for mismatched per-channel encodings", () => {
      const x = tf.zeros([2, 3]);
      const e8 = computeEncoding(-1, 1, 8, "symmetric");
      assert.throws(() => fakeQuant(x, [e8, e8]), /2 per-channel encodings for axis 1 of shape \[2, 3\]/);
      assert.throws(() => fakeQuant(x, [e8, e8], { axis: 2 }), /axis 2 is out of range/);
      assert.throws(() => fakeQuant(x, [e8, e8, computeEncoding(-1, 1, 4, "symmetric")]), /share one bit-width/);
      assert.throws(() => fakeQuant(x, []), /no encoding given/);
      x.dispose();
    });
  });
}

describe("fakeQuant stochastic rounding across backends", () => {
  after(() => setupBackend());

  it("one seed gives the same values on wasm and cpu, per tensor and per channel", async () => {
    const results: number[][][] = [];
    for (const backend of ["wasm", "cpu"]) {
      await useBackend(backend);
      const x = tf.randomNormal([6, 5, 12], 0, 2, "float32", 4);
      const perChannel = channelMinMax(x, 1).map((r) => computeEncoding(r.min, r.max, 4, "asymmetric"));
      results.push(
        await assertNoLeak(`stochastic on ${backend}`, () =>
          [
            fakeQuant(x, computeEncoding(-3, 3, 4, "symmetric"), { rounding: "stochastic", seed: 9 }),
            fakeQuant(x, perChannel, { axis: 1, rounding: "stochastic", seed: 9 }),
          ].map((y) => {
            const v = plain(y.dataSync());
            y.dispose();
            return v;
          }),
        ),
      );
      x.dispose();
    }
    assert.deepEqual(results[0], results[1]);
  });
});
