import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { toDataset } from "../src/data/dataset";
import { assertViewRenders } from "./fixtures/vega-validate";
import { costModel, modelCost } from "../src/fix/cost";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { mixedPrecision, MixedPrecisionResult } from "../src/fix/mixed-precision";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { mixedPrecisionTableView, paretoView } from "../widgets/pareto-view";
import { View } from "../widgets/spec";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { buildBlockModel } from "./fixtures/small-models";
import { assertNoLeak, setupBackend, sliceDataset } from "./helpers";

const close = (a: number, b: number, what: string, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
/** The plain-JSON part of a result (its simulation aside). */
const withoutSim = (r: MixedPrecisionResult): Omit<MixedPrecisionResult, "sim"> => JSON.parse(JSON.stringify({ ...r, sim: undefined }));

/** No point is beaten on both score and cost by another; every point off the front is. */
function assertFront(r: MixedPrecisionResult): void {
  const beats = (q: { score: number; cost: number }, p: { score: number; cost: number }) => q.score >= p.score && q.cost <= p.cost && (q.score > p.score || q.cost < p.cost);
  for (const p of r.pareto) {
    const beaten = r.pareto.some((q) => beats(q, p));
    assert.equal(p.onFront, !beaten, `${p.config}: onFront ${p.onFront} but ${beaten ? "beaten" : "not beaten"}`);
  }
  assert.ok(r.pareto.some((p) => p.onFront));
}

function assertTableMonotone(r: MixedPrecisionResult): void {
  for (let i = 1; i < r.table.length; i++) assert.ok(r.table[i].cost > r.table[i - 1].cost, `step ${i} cost ${r.table[i].cost} ≤ ${r.table[i - 1].cost}`);
  r.table.forEach((row, i) => assert.equal(row.step, i));
}

describe("mixed precision", () => {
  const checkView = (name: string, spec: View, minMarks: number) => assertViewRenders(name, spec, minMarks);

  before(setupBackend);

  describe("on a small conv / depthwise / pointwise / dense block", () => {
    let graph: Graph;
    let sim: QuantSim;
    let x: tf.Tensor;
    const data = () => sliceDataset(x, 8);
    // Penalties per weight quantizer: a known, additive "score" for the search to find its way through.
    const penalty: Record<string, number> = { "c1.kernel": 0.02, "dw.depthwise_kernel": 0.01, "pw.kernel": 0.001, "fc.kernel": 0.0001 };
    const factor: Record<number, number> = { 4: 1, 6: 0.25 };
    let calls = 0;
    const evaluate = (s: QuantSim) => {
      calls += 1;
      return 1 - Object.entries(penalty).reduce((a, [q, p]) => a + (s.settingsOf(q).enabled ? p * (factor[s.settingsOf(q).bitwidth] ?? 0) : 0), 0);
    };

    before(async () => {
      const model = buildBlockModel();
      graph = importLayersModel(model);
      model.dispose();
      x = tf.randomUniform([16, 8, 8, 3], 0, 1, "float32", 7);
      sim = await QuantSim.create(graph).calibrate(data());
    });
    after(() => {
      sim.dispose();
      graph.dispose();
      x.dispose();
    });

    it("cost: BOPs = MACs × weight bits × input activation bits and size = params × bits / 8, by hand", () => {
      const mixed = sim.with({ "c1.kernel": { bitwidth: 4 }, "r1.output": { bitwidth: 6 } });
      const model = costModel(mixed);
      assert.deepEqual(model.layers.map((l) => [l.layer, l.inputQuantizers]), [["c1", ["image.output"]], ["dw", ["r1.output"]], ["pw", ["r2.output"]], ["fc", ["gap.output"]]]);
      const cost = modelCost(mixed);
      // MACs at batch 1 on 8×8 outputs: c1 3·3·3·4·64 = 6912, dw 3·3·4·1·64 = 2304, pw 1·1·4·4·64 = 1024, fc 4·5 = 20.
      assert.deepEqual(cost.layers.map((l) => l.macs), [6912, 2304, 1024, 20]);
      assert.deepEqual(cost.layers.map((l) => [l.weightBits, l.activationBits]), [[4, 8], [8, 6], [8, 8], [8, 8]]);
      // 6912·4·8 + 2304·8·6 + 1024·8·8 + 20·8·8 = 221184 + 110592 + 65536 + 1280
      assert.equal(cost.bops, 398592);
      // kernels 108·4/8 + 36 + 16 + 20 = 126 bytes; biases 4+4+4+5 = 17 and BatchNorm 3·4·4 = 48 values at 4 bytes = 260
      assert.deepEqual(cost.layers.map((l) => l.bytes), [54, 36, 16, 20]);
      assert.equal(cost.bytes, 386);
      assert.equal(cost.step, "model-cost");
      assert.equal(cost.diagnosis, "0.4 KiB of weights as quantized, 0.000399 G bit operations per example; the largest layer is c1 (14 % of the bytes, 4-bit weights).");
      // A bypassed quantizer counts as float: 32 bits.
      const float = modelCost(mixed.with({ "c1.kernel": { enabled: false } }));
      assert.equal(float.bops, 398592 - 221184 + 6912 * 32 * 8);
      assert.equal(float.bytes, 386 - 54 + 108 * 4);
      mixed.dispose();
    });

    it("raises the layer with the most score per cost first, until the target, scoring each configuration once", async () => {
      calls = 0;
      const rows: number[] = [];
      const tasks = new Set<string>();
      const r = await assertNoLeak("mixedPrecision", async () => {
        const result = await mixedPrecision(sim, { candidates: [8, 4], allowedDrop: 0.015, evaluate, onStep: (row) => rows.push(row.step), onProgress: (e) => tasks.add(e.task) });
        result.sim.dispose();
        return result;
      });
      // Gain when raised alone ÷ BOPs it costs (MACs·4·8): fc 1e-4/640, dw 1e-2/73728, c1 2e-2/221184, pw 1e-3/32768.
      assert.deepEqual(r.table.map((t) => t.changed), ["", "fc", "dw", "c1"]);
      assert.deepEqual(rows, [0, 1, 2, 3]);
      // Step 1 (fc raised alone) was scored in the first pass: no pass of its own.
      assert.deepEqual([...tasks], ["mixed precision: each layer raised alone", "mixed precision: raising layers", "mixed precision: step 2 (dw to W8)", "mixed precision: step 3 (c1 to W8)"]);
      const scoresByHand = [1 - 0.0311, 1 - 0.031, 1 - 0.021, 1 - 0.001];
      r.table.forEach((t, i) => close(t.score, scoresByHand[i], `step ${i} score`));
      // Activations stay at the simulation's 8 bits: BOPs = MACs · w · 8.
      assert.deepEqual(r.table.map((t) => t.cost), [10260 * 32, 10260 * 32 + 640, 10260 * 32 + 640 + 73728, 10260 * 32 + 640 + 73728 + 221184]);
      close(r.table[3].relativeCost, (10260 * 32 + 640 + 73728 + 221184) / (10260 * 64), "relative cost");
      assert.equal(r.costUnit, "BOPs");
      assert.deepEqual(r.costs, { fp32: 10260 * 32 * 32, lowest: 10260 * 32, highest: 10260 * 64, chosen: 623872 });
      assert.ok(r.met);
      close(r.target, 0.985, "target");
      assert.deepEqual(r.chosen, { "c1.kernel": { bitwidth: 8 }, "dw.depthwise_kernel": { bitwidth: 8 }, "pw.kernel": { bitwidth: 4 }, "fc.kernel": { bitwidth: 8 } });
      // FP32, lowest, highest, 4 × one raised (step 1 among them); steps 2 and 3.
      assert.equal(r.evaluations, 9);
      assert.equal(calls, 9);
      assert.equal(r.passes, 3);
      assertTableMonotone(r);
      assertFront(r);
      assert.equal(r.pareto.length, 8);
      assert.deepEqual([...new Set(r.pareto.map((p) => p.kind))].sort(), ["highest", "lowest", "one raised", "step"]);
      assert.equal(r.pareto.filter((p) => p.chosen).length, 1);
      assert.deepEqual(r.layers.map((l) => [l.key, l.chosen.label, l.raisedAt]), [["c1", "W8", [3]], ["dw", "W8", [2]], ["pw", "W4", []], ["fc", "W8", [1]]]);
      assert.match(r.diagnosis, /^Keeping 3 of 4 layers wider than W4 — c1 \(W8\), dw \(W8\), fc \(W8\) — and the other 1 at W4 scores 0\.9990, meeting the target 0\.9850/);
    });

    it("with three candidates raises one level at a time, looking past the next level", async () => {
      const r = await mixedPrecision(sim, { candidates: [4, 6, 8], allowedDrop: 0.003, evaluate });
      r.sim.dispose();
      // Priorities (score per BOP): first raise 0.75·p/(16·MACs), second 0.25·p/(16·MACs); pw's first (4.58e-8) edges c1's second (4.52e-8).
      assert.deepEqual(r.table.map((t) => `${t.changed}:${t.bitwidth}`), [":4", "fc:6", "dw:6", "c1:6", "fc:8", "dw:8", "pw:6", "c1:8"]);
      close(r.score, 1 - 0.00025, "score");
      assert.ok(r.met);
      assert.deepEqual(r.layers.map((l) => l.levels), [["W4", "W6", "W8"], ["W4", "W6", "W8"], ["W4", "W6", "W8"], ["W4", "W6", "W8"]]);
      assertTableMonotone(r);
      assertFront(r);
    });

    it("from the highest candidate (AIMET's phase 1): ranks by the drop when each layer is lowered alone", async () => {
      calls = 0;
      const r = await mixedPrecision(sim, { candidates: [4, 8], allowedDrop: 0.015, evaluate, sensitivity: { from: "highest" } });
      r.sim.dispose();
      assert.deepEqual(r.table.map((t) => t.changed), ["", "fc", "dw", "c1"]);
      assert.deepEqual(r.layers.map((l) => Number(l.gain.toFixed(6))), [0.02, 0.01, 0.001, 0.0001]);
      assert.deepEqual([...new Set(r.pareto.map((p) => p.kind))].sort(), ["highest", "lowest", "one lowered", "step"]);
      assert.equal(r.sensitivity.from, "highest");
      // FP32, lowest, highest, 4 × one lowered; steps 1 and 2; step 3 is "pw lowered", already scored.
      assert.equal(calls, 9);
      assert.equal(r.passes, 3);
    });

    it("can rank layers with a metric of its own (MSE over data) while the target stays in the search's metric", async () => {
      calls = 0;
      const r = await mixedPrecision(sim, { candidates: [4, 8], allowedDrop: 0.015, evaluate, sensitivity: { metric: "mse" }, data: data() });
      r.sim.dispose();
      assert.equal(r.sensitivity.metric.metric, "mse");
      assert.equal(r.metric.metric, "custom");
      // The ranking pass scores MSE (no evaluate calls): evaluate sees FP32, lowest, highest, then one call per step
      // (a step that reaches everything at W8 reuses that score).
      const reachesHighest = r.table[r.table.length - 1].relativeCost === 1 ? 1 : 0;
      assert.equal(calls, 3 + r.table.length - 1 - reachesHighest);
      assert.ok(r.met);
      assert.ok(r.layers.every((l) => l.sensitivity.every((x) => x.score <= 0)), "MSE scores are negated");
      assert.deepEqual([...new Set(r.pareto.map((p) => p.kind))].filter((k) => k.startsWith("one")), [], "MSE-ranked configurations are not on the accuracy chart");
    });

    it("a target out of reach: met is false, the best configuration and why", async () => {
      const offset = (s: QuantSim) => evaluate(s) - (s.settingsOf("c1.kernel").enabled ? 0.01 : 0);
      const r = await mixedPrecision(sim, { candidates: [4, 8], allowedDrop: 0.005, evaluate: offset });
      r.sim.dispose();
      assert.equal(r.met, false);
      assert.equal(r.table.length, 1);
      close(r.score, 0.99, "best score");
      assert.deepEqual(r.chosen, { "c1.kernel": { bitwidth: 8 }, "dw.depthwise_kernel": { bitwidth: 8 }, "pw.kernel": { bitwidth: 8 }, "fc.kernel": { bitwidth: 8 } });
      assert.match(r.diagnosis, /Even with every layer at W8 the score is 0\.9900, below the target 0\.9950/);
    });

    it("says what is wrong with the options", async () => {
      const bad = async (options: Record<string, unknown>, pattern: RegExp) =>
        assert.rejects(() => mixedPrecision(sim, { candidates: [4, 8], allowedDrop: 0.01, evaluate, ...options } as never), pattern);
      await bad({ allowedDrop: -0.01 }, /allowedDrop must be a finite number ≥ 0/);
      await bad({ candidates: [] }, /non-empty list/);
      await bad({ candidates: [8] }, /only one candidate \(W8\)/);
      await bad({ candidates: [8, 8] }, /W8 is given twice/);
      await bad({ candidates: [4, { weights: 8, activations: 8 }] }, /either as numbers .* or as \{ weights, activations \} pairs/);
      await bad({ candidates: [{ weights: 4, activations: 8 }, { weights: 8, activations: 4 }] }, /W4A8 and W8A4 cannot be ranked/);
      await bad({ candidates: [1, 8] }, /candidate 1: invalid bitwidth: 1/);
      await bad({ evaluate: undefined, data: data(), metric: "sqnr" }, /not finite for metric "sqnr"/);
      await bad({ cost: "latency" }, /invalid cost/);
      const uncalibrated = QuantSim.create(graph);
      await assert.rejects(() => mixedPrecision(uncalibrated, { candidates: [4, 8], allowedDrop: 0.01, evaluate }), /not calibrated/);
    });

    it("is deterministic and leaves no tensors with a built-in metric over data", async () => {
      const run = () => assertNoLeak("mixedPrecision (mse)", async () => {
        const r = await mixedPrecision(sim, { candidates: [3, 8], allowedDrop: 1e-6, data: data(), metric: "mse", cost: "size" });
        r.sim.dispose();
        return withoutSim(r);
      });
      const a = await run();
      const b = await run();
      assert.deepEqual(a, b);
      assert.equal(a.costUnit, "bytes");
      assert.equal(a.reference.fp32, 0);
      close(a.target, -1e-6, "target");
      assert.ok(a.table.length >= 2, "the search raised something");
      assert.ok(a.met && a.score >= a.target, `score ${a.score}, target ${a.target}`);
      assert.ok(a.reference.lowest < a.target, "3-bit weights everywhere should miss the target");
      assertTableMonotone(a as MixedPrecisionResult);
      assertFront(a as MixedPrecisionResult);
    });
  });

  describe("layers sharing an input quantizer", () => {
    let graph: Graph;
    let sim: QuantSim;
    let x: tf.Tensor;
    before(async () => {
      const L = tf.layers;
      const input = tf.input({ shape: [6, 6, 2], name: "image" });
      const a = L.conv2d({ filters: 3, kernelSize: 3, padding: "same", name: "a", kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
      const b = L.conv2d({ filters: 3, kernelSize: 1, name: "b", kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(input) as tf.SymbolicTensor;
      const sum = L.add({ name: "sum" }).apply([a, b]) as tf.SymbolicTensor;
      const gap = L.globalAveragePooling2d({ name: "gap" }).apply(sum) as tf.SymbolicTensor;
      const fc = L.dense({ units: 4, name: "fc", kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(gap) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: fc });
      graph = importLayersModel(model);
      model.dispose();
      x = tf.randomUniform([8, 6, 6, 2], 0, 1, "float32", 3);
      sim = await QuantSim.create(graph).calibrate(sliceDataset(x, 8));
    });
    after(() => {
      sim.dispose();
      graph.dispose();
      x.dispose();
    });

    const pairs = [{ weights: 8, activations: 8 }, { weights: 4, activations: 6 }];

    it("searches them together, so their input quantizer has one bit-width; its view shows weights and activations", async () => {
      const r = await mixedPrecision(sim, { candidates: pairs, allowedDrop: 0.5, evaluate: () => 1 });
      r.sim.dispose();
      assert.deepEqual(r.layers.map((l) => [l.key, l.quantizers]), [["a+b", ["a.kernel", "b.kernel", "image.output"]], ["fc", ["fc.kernel", "gap.output"]]]);
      assert.deepEqual(r.candidates, [{ weights: 4, activations: 6 }, { weights: 8, activations: 8 }]);
      assert.equal(r.table.length, 1, "everything at W4A6 already meets the target");
      assert.deepEqual(r.chosen, { "a.kernel": { bitwidth: 4 }, "b.kernel": { bitwidth: 4 }, "image.output": { bitwidth: 6 }, "fc.kernel": { bitwidth: 4 }, "gap.output": { bitwidth: 6 } });
      // BOPs at the lowest: (a 3·3·2·3·36 + b 2·3·36)·4·6 + fc 3·4·4·6.
      assert.equal(r.costs.lowest, (1944 + 216) * 24 + 12 * 24);
      await checkView("bit-width table (pairs)", mixedPrecisionTableView(r), 8);
    });

    it("per quantizer: each weight and each input activation quantizer on its own", async () => {
      const r = await mixedPrecision(sim, { candidates: pairs, allowedDrop: 0.5, evaluate: () => 1, granularity: "quantizer" });
      r.sim.dispose();
      assert.deepEqual(r.layers.map((l) => [l.key, l.levels]), [["image.output", ["A6", "A8"]], ["a.kernel", ["W4", "W8"]], ["b.kernel", ["W4", "W8"]], ["gap.output", ["A6", "A8"]], ["fc.kernel", ["W4", "W8"]]]);
    });
  });

  describe("on the example model (BatchNorm folded, per-tensor, W4A8 or W8A8, 1000 MNIST images)", () => {
    let result: MixedPrecisionResult;
    let all8Bops: number;
    let seconds: number;
    before(async () => {
      const original = await loadGraph(EXAMPLE_MODEL);
      const { graph } = foldBatchNorms(original);
      original.dispose();
      const data = toDataset("mnist:0:1000", { batchSize: 250 });
      const sim = await QuantSim.create(graph, { weights: { bitwidth: 8 }, activations: { bitwidth: 8 } }).calibrate(data);
      all8Bops = modelCost(sim).bops!;
      const start = Date.now();
      let size = 0;
      result = await assertNoLeak("mixedPrecision on the example", async () => {
        const r = await mixedPrecision(sim, { candidates: [4, 8], allowedDrop: 0.005, data, metric: "accuracy" });
        size = modelCost(r.sim).bytes / modelCost(sim).bytes;
        r.sim.dispose();
        return r;
      });
      seconds = (Date.now() - start) / 1000;
      const raised = result.layers.filter((l) => l.chosen.level > 0).map((l) => l.key);
      console.log(
        `      mixed precision on the example: FP32 ${result.reference.fp32}, all W4A8 ${result.reference.lowest}, all W8A8 ${result.reference.highest}, ` +
          `chosen ${result.score} (target ${result.target.toFixed(4)}) at ${(100 * result.table[result.table.length - 1].relativeCost).toFixed(1)} % of the W8A8 BOPs, ` +
          `${(100 * size).toFixed(1)} % of its size; W8 kept for ${raised.join(", ")}; ${result.evaluations} evaluations in ${result.passes} passes, ${seconds.toFixed(1)} s`,
      );
      sim.dispose();
      graph.dispose();
    });

    it("meets a 0.5-point accuracy drop while keeping most layers at 4 bits, below the all-8-bit cost", () => {
      assert.ok(result.met, result.diagnosis);
      assert.ok(result.score >= result.target, `score ${result.score} < target ${result.target}`);
      close(result.target, result.reference.fp32 - 0.005, "target");
      assert.ok(result.costs.chosen < all8Bops, `chosen ${result.costs.chosen} BOPs ≥ all 8-bit ${all8Bops}`);
      assert.equal(result.costs.highest, all8Bops);
      const atFour = result.layers.filter((l) => l.chosen.weights === 4).length;
      assert.ok(atFour > result.layers.length / 2, `only ${atFour} of ${result.layers.length} layers at 4 bits`);
      // All W4A8 misses the target (the search had something to do).
      assert.ok(result.reference.lowest < result.target);
      assert.equal(result.layers.length, 18);
      assert.ok(result.evaluations >= 3 + 18 && result.evaluations <= 3 + 18 + 18);
    });

    it("its table is monotone in cost and its Pareto front is non-dominated", () => {
      assertTableMonotone(result);
      assertFront(result);
      const last = result.table[result.table.length - 1];
      assert.equal(last.score, result.score);
      assert.ok(result.pareto.find((p) => p.chosen)!.score === result.score);
      // Every configuration was scored once, and each is one point: all but FP32.
      assert.equal(result.pareto.length, result.evaluations - 1);
    });

    it("views: the Pareto chart and the bit-width table validate against Vega-Lite v5 and render to SVG", async () => {
      const svg = await checkView("pareto", paretoView(result), result.pareto.length + 2);
      assert.match(svg, /chosen/);
      assert.match(svg, /target/);
      await checkView("bit-width table", mixedPrecisionTableView(result), 18);
    });
  });
});
