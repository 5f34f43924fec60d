import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { toDataset } from "../src/data/dataset";
import { biasCorrection, clippedNormalMean, meanShifts } from "../src/fix/bias-correction";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, setupBackend } from "./helpers";

const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** Seeded N(mean, std²) samples (mulberry32 + Box–Muller). */
function normalSamples(mean: number, std: number, n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const a = 2 * Math.PI * uniform();
    out[i] = mean + std * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(a);
  }
  return out;
}

/** The example model with BatchNorm folded (CLE too when asked); the caller disposes it. */
async function exampleGraph(cle = false): Promise<Graph> {
  const original = await loadGraph(EXAMPLE_MODEL);
  const { graph } = foldBatchNorms(original);
  original.dispose();
  if (!cle) return graph;
  const equalized = crossLayerEqualization(graph).graph;
  graph.dispose();
  return equalized;
}

/** The simulation with its activation quantizers bypassed: what bias correction measures. */
function weightsOnly(sim: QuantSim): QuantSim {
  return sim.with(Object.fromEntries(sim.sites.filter((s) => s.kind === "activation").map((s) => [s.name, { enabled: false }])));
}

describe("bias correction", () => {
  before(setupBackend);

  it("clippedNormalMean: hand values, and the sample mean of clipped normal draws (ReLU, ReLU6, linear)", () => {
    // ReLU of N(0, 1): σ·φ(0) = 1/√(2π).
    assert.ok(Math.abs(clippedNormalMean(0, 1, 0) - 1 / Math.sqrt(2 * Math.PI)) < 1e-6);
    assert.equal(clippedNormalMean(3, 2), 3);
    assert.equal(clippedNormalMean(7, 0, 0, 6), 6);
    assert.equal(clippedNormalMean(-1, 0, 0), 0);
    const cases: [number, number, number, number][] = [
      [0, 1, 0, Infinity],
      [1, 2, 0, 6],
      [-2, 0.5, 0, Infinity],
      [5, 1.5, 0, 6],
      [0.3, 3, -Infinity, Infinity],
    ];
    cases.forEach(([mean, std, lo, hi], k) => {
      const x = normalSamples(mean, std, 400000, 17 + k);
      let sum = 0;
      let sq = 0;
      for (const v of x) {
        const y = Math.min(Math.max(v, lo), hi);
        sum += y;
        sq += y * y;
      }
      const m = sum / x.length;
      const se = Math.sqrt(Math.max(sq / x.length - m * m, 1e-12) / x.length);
      const formula = clippedNormalMean(mean, std, lo, hi);
      assert.ok(Math.abs(formula - m) < 4 * se + 1e-6, `N(${mean}, ${std}²) clipped to [${lo}, ${hi}]: formula ${formula}, samples ${m} ± ${se}`);
    });
  });

  it("analytical, by hand: dense → relu → dense, (W_q − W)·E[x] with E[x] from the BatchNorm statistics", async () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ units: 2, inputShape: [3], name: "d1" }), tf.layers.reLU({ name: "r" }), tf.layers.dense({ units: 2, name: "d2" })],
    });
    const w = [tf.tensor2d([[0.7, 0.13], [-0.26, 0.04]]), tf.tensor1d([0.1, -0.2])];
    model.getLayer("d2").setWeights(w);
    tf.dispose(w);
    const imported = importLayersModel(model);
    model.dispose();
    // d1's output is N([0, 2], [1, 0]²): after the ReLU, E[x] = [1/√(2π), 2].
    const graph = new Graph({
      name: imported.name,
      nodes: imported.nodes.map((n) => (n.name === "d1" ? { ...n, attrs: { ...n.attrs, batchNormStats: { mean: [0, 2], std: [1, 0] } } } : n)),
      inputs: [...imported.inputs],
      outputs: [...imported.outputs],
    });
    const sim = QuantSim.create(graph, { weights: { bitwidth: 4 } });
    await assertNoLeak("analytical", async () => {
      const r = await biasCorrection(sim, { method: "analytical" });
      // 4-bit symmetric, absmax 0.7: δ = 0.7 / 7 = 0.1, so W_q = [[0.7, 0.1], [−0.3, 0]] and W_q − W = [[0, −0.03], [−0.04, −0.04]].
      // shift = (W_q − W)ᵀ E[x] = [−0.04·2, −0.03/√(2π) − 0.04·2] = [−0.08, −0.0919683].
      const shift = [-0.08, -0.03 / Math.sqrt(2 * Math.PI) - 0.08];
      const expected = [0.1 - shift[0], -0.2 - shift[1]];
      values(r.graph.node("d2").params.bias).forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `bias[${i}] = ${v}, expected ${expected[i]}`));
      assert.equal(r.corrected.length, 1);
      assert.equal(r.corrected[0].layer, "d2");
      assert.ok(Math.abs(r.corrected[0].maxAbsShift - Math.abs(shift[1])) < 1e-6);
      assert.deepEqual(r.skipped.map((s) => s.layer), ["d1"]);
      assert.match(r.skipped[0].reason, /its input is the model input/);
      assert.equal(r.recalibrated, false);
      assert.deepEqual(values(graph.node("d2").params.bias).map((v) => Math.round(v * 1e6) / 1e6), [0.1, -0.2]);
      r.sim.dispose();
      r.graph.dispose();
    });
    sim.dispose();
    imported.dispose();
  });

  it("empirical on the example (BatchNorm folded, W4A8 per tensor): every layer's mean shift goes to ~0 on its data, and accuracy rises", async () => {
    const graph = await exampleGraph();
    const calibration = toDataset("mnist:0:256");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(calibration);
    await assertNoLeak("empirical", async () => {
      const r = await biasCorrection(sim, { method: "empirical", data: calibration, evaluation: { data: toDataset("mnist:1000:1000"), metric: "accuracy" } });
      assert.equal(r.corrected.length, 18);
      assert.deepEqual(r.skipped, []);
      assert.equal(r.recalibrated, true);
      assert.equal(r.step, "bias-correction");
      assert.deepEqual(r.graph.edits.filter((e) => e.by === "bias-correction"), r.corrected.map((c) => ({ by: "bias-correction", kind: "params", node: c.layer, params: ["bias"] })), "the new graph records the biases it changed, after the folding it came from");
      assert.ok(r.graph.edits.some((e) => e.by === "fold-batch-norm"));
      assert.match(r.diagnosis, /^Subtracted the mean output shift .* from the biases of 18 layers \(empirical\)/);
      // The invariant: with the encodings it was measured with, each corrected layer's per-channel mean matches FP32's.
      const measuredBefore = weightsOnly(sim);
      const measuredAfter = weightsOnly(sim.withGraph(r.graph, { keepStats: true }));
      const before = (await meanShifts(measuredBefore, { data: calibration })).rows;
      const after = (await meanShifts(measuredAfter, { data: calibration, reference: graph })).rows;
      before.forEach((row, i) => {
        assert.ok(row.meanAbsShift > 1e-2, `${row.layer}: ${row.meanAbsShift} before`);
        assert.ok(after[i].maxAbsShift < 1e-4, `${row.layer}: ${after[i].maxAbsShift} after`);
      });
      // The shifts it reports are the ones it removed.
      assert.ok(Math.abs(r.corrected[0].meanAbsShift - before[0].meanAbsShift) < 1e-6);
      assert.ok(r.scores!.after > r.scores!.before + 0.01, JSON.stringify(r.scores));
      measuredBefore.dispose();
      measuredAfter.dispose();
      r.sim.dispose();
      r.graph.dispose();
    });
    sim.dispose();
    graph.dispose();
  });

  it("empirical on a model with two output branches: the layers of both are measured and corrected", async () => {
    const init = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed });
    const x = tf.input({ shape: [6], name: "x" });
    const trunk = tf.layers.dense({ units: 8, activation: "relu", kernelInitializer: init(1), name: "trunk" }).apply(x) as tf.SymbolicTensor;
    const left = tf.layers.dense({ units: 3, kernelInitializer: init(2), name: "left" }).apply(trunk) as tf.SymbolicTensor;
    const right = tf.layers.dense({ units: 2, kernelInitializer: init(3), name: "right" }).apply(trunk) as tf.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: [left, right], name: "two_branches" });
    const graph = importLayersModel(model);
    const inputs = tf.randomUniform([64, 6], -1, 1, "float32", 7);
    const data = toDataset(inputs, { batchSize: 16 });
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 3 } }).calibrate(data);
    await assertNoLeak("two branches", async () => {
      const r = await biasCorrection(sim, { method: "empirical", data });
      assert.deepEqual(r.corrected.map((c) => c.layer).sort(), ["left", "right", "trunk"]);
      assert.ok(r.corrected.every((c) => c.meanAbsShift > 0), JSON.stringify(r.corrected));
      r.sim.dispose();
      r.graph.dispose();
    });
    sim.dispose();
    graph.dispose();
    inputs.dispose();
    model.dispose();
  });

  it("measures with the simulation's own quantized weights: its shift at Conv1 is the simulation's output mean minus FP32's", async () => {
    const graph = await exampleGraph();
    const data = toDataset("mnist:0:64");
    const sim = QuantSim.create(graph, { weights: { bitwidth: 4, perChannel: true } });
    const calibrated = await sim.calibrate(data);
    await assertNoLeak("mean shifts", async () => {
      const [row] = (await meanShifts(calibrated, { data, layers: ["Conv1"] })).rows;
      // Conv1 fuses into its ReLU, so the hook sees its raw output in both runs.
      const meanAt = async (run: (hook: (node: { name: string }, out: tf.Tensor) => void) => Promise<unknown>) => {
        const sum = new Float64Array(16);
        let n = 0;
        await run((node, out) => {
          if (node.name !== "Conv1") return;
          tf.tidy(() => tf.sum(out, [0, 1, 2]).dataSync()).forEach((v, i) => (sum[i] += v));
          n += out.size / 16;
        });
        return Array.from(sum, (v) => v / n);
      };
      const copy = calibrated.with({});
      const q = await meanAt((hook) => copy.run(data, { hook }));
      const bypassed = copy.with({ "**": { enabled: false } });
      const fp = await meanAt((hook) => bypassed.run(data, { hook }));
      bypassed.dispose();
      copy.dispose();
      row.shifts.forEach((s, i) => assert.ok(Math.abs(s - (q[i] - fp[i])) < 1e-5, `channel ${i}: ${s} vs ${q[i] - fp[i]}`));
      assert.ok(row.maxAbsShift > 1e-3);
    });
    calibrated.dispose();
    graph.dispose();
  });

  it("analytical on the example: skips the layers whose input has no BatchNorm statistics; after CLE it raises accuracy", async () => {
    const graph = await exampleGraph(true);
    const calibration = toDataset("mnist:0:256");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(calibration);
    await assertNoLeak("analytical", async () => {
      const r = await biasCorrection(sim, { method: "analytical", data: calibration, evaluation: { data: toDataset("mnist:1000:1000"), metric: "accuracy" } });
      assert.deepEqual(r.skipped.map((s) => s.layer), ["Conv1", "block_2_expand", "block_4_expand", "Conv_1"]);
      assert.match(r.skipped[0].reason, /model input "image"/);
      assert.match(r.skipped[1].reason, /"block_1_add" \(add\), which carries no BatchNorm statistics/);
      assert.equal(r.corrected.length, 14);
      // predictions reads out_relu's statistics through the average pooling and dropout.
      assert.ok(r.corrected.some((c) => c.layer === "predictions"));
      assert.equal(r.recalibrated, true);
      assert.ok(r.scores!.after > r.scores!.before, JSON.stringify(r.scores));
      r.sim.dispose();
      r.graph.dispose();
    });
    sim.dispose();
    graph.dispose();
  });

  it("at weight bit-width 32 changes nothing: every layer skipped, biases and outputs as they were", async () => {
    const graph = await exampleGraph();
    const data = toDataset("mnist:0:64");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 32 } }).calibrate(data);
    // 32-bit weights do shift the means, by float32 rounding only.
    const measured = weightsOnly(sim);
    const shifts = (await meanShifts(measured, { data })).rows;
    measured.dispose();
    assert.ok(Math.max(...shifts.map((s) => s.maxAbsShift)) < 1e-5);
    await assertNoLeak("32-bit", async () => {
      for (const method of ["empirical", "analytical"] as const) {
        const r = await biasCorrection(sim, { method, data });
        assert.deepEqual(r.corrected, []);
        assert.equal(r.skipped.length, 18);
        assert.ok(r.skipped.every((s) => /32-bit weights/.test(s.reason)));
        for (const node of graph.nodes) {
          if (node.params.bias) assert.deepEqual(values(r.graph.node(node.name).params.bias), values(node.params.bias), node.name);
        }
        const x = tf.randomUniform([4, 28, 28, 1], 0, 1, "float32", 2);
        const [a] = r.sim.forward(x);
        const copy = sim.with({});
        const [b] = copy.forward(x);
        assert.deepEqual(values(a), values(b));
        tf.dispose([a, b, x]);
        copy.dispose();
        r.sim.dispose();
        r.graph.dispose();
      }
    });
    sim.dispose();
    graph.dispose();
  });

  it("says what is wrong with its options", async () => {
    const graph = await exampleGraph();
    const sim = QuantSim.create(graph, { weights: { bitwidth: 4 } });
    await assert.rejects(biasCorrection(sim, { method: "empirical" }), /empirical method needs calibration data/);
    await assert.rejects(biasCorrection(sim, { method: "exact" as "empirical" }), /method must be "empirical" or "analytical"/);
    await assert.rejects(biasCorrection(sim, { method: "analytical", layers: ["block_1_add"] }), /"block_1_add" is a add; only conv2d/);
    await assert.rejects(biasCorrection(sim, { method: "analytical", layers: ["block_9"] }), /no node named "block_9"/);
    graph.dispose();
  });
});
