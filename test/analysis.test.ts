import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { QuantSim } from "../src/quant/quantsim";
import { sweepDisabled, sweepEnabled } from "../src/analysis/sweeps";
import { weightsVsActivations } from "../src/analysis/weights-vs-activations";
import { layerError } from "../src/analysis/layer-error";
import { weightChannelStats } from "../src/analysis/weight-channels";
import { encodingRanges } from "../src/analysis/ranges";
import { activationHistograms } from "../src/analysis/histograms";
import { activationAxes } from "../src/analysis/activation-axes";
import { buildOutlierModel } from "./fixtures/small-models";
import { sweepView } from "../widgets/sweep-view";
import { assertNoLeak, setupBackend, sliceDataset } from "./helpers";

describe("debugging analyses", () => {
  let model: tf.LayersModel;
  let graph: Graph;
  let x: tf.Tensor;
  let sim: QuantSim;
  const data = () => sliceDataset(x, 32);

  before(async () => {
    await setupBackend();
    model = buildOutlierModel();
    graph = importLayersModel(model);
    x = tf.randomNormal([96, 8], 0, 1, "float32", 2);
    // 6-bit per-tensor weights, 16-bit activations: weight grids decide the scores.
    sim = await QuantSim.create(graph, { weights: { bitwidth: 6 }, activations: { bitwidth: 16 } }).calibrate(data());
  });
  after(() => {
    sim.dispose();
    graph.dispose();
    model.dispose();
    x.dispose();
  });

  it("weights vs activations: the weights cause the drop, and the diagnosis says what to try", async () => {
    const r = await assertNoLeak("split", () => weightsVsActivations(sim, { data: data(), metric: "mse" }));
    assert.equal(r.fp32, null, "MSE against FP32 is a fidelity score: FP32 is its reference and has no score of its own");
    assert.deepEqual(r.rows.map((row) => row.variant), ["weights only", "activations only", "weights + activations"]);
    assert.ok(-r.weightsOnly > 100 * -r.activationsOnly, `MSE weights-only ${-r.weightsOnly}, activations-only ${-r.activationsOnly}`);
    assert.equal(r.culprit, "weights");
    assert.match(r.diagnosis, /Fix weights first/);
    assert.equal(r.metric.metric, "mse");
    JSON.parse(JSON.stringify(r));
  });

  it("enable-one sweep singles out the layer with the outlier channel; cached == naive", async () => {
    const rows: string[] = [];
    const cached = await assertNoLeak("cached sweep", () => sweepEnabled(sim, { data: data(), metric: "sqnr", onRow: (r) => rows.push(r.key) }));
    const partial: [number, number][] = [];
    const naive = await sweepEnabled(sim, { data: data(), metric: "sqnr", cache: false, onPartial: (r, examples) => partial.push([examples, r.rows.length]) });
    // Running scores of every row after each pass: tfjs passes one batch at a time, ONNX Runtime as many as fit in memory.
    assert.ok(partial.length >= 1 && partial.every(([n, rows], i) => rows === 5 && (i === 0 || n > partial[i - 1][0])) && partial.at(-1)![0] === 96, `running scores: ${JSON.stringify(partial)}`);
    assert.equal(cached.cached, true);
    assert.equal(naive.cached, false);
    assert.deepEqual(cached.rows.map((r) => r.score), naive.rows.map((r) => r.score), "identical scores");
    assert.deepEqual(cached.rows.map((r) => r.key), ["features", "d1", "d2", "d3", "logits"]);
    const worst = [...cached.rows].sort((a, b) => a.score - b.score)[0];
    assert.equal(worst.key, "d2");
    assert.match(cached.diagnosis, /^Quantized alone, d2/);
    assert.deepEqual(rows, ["features", "d1", "d2", "d3", "logits"]);
  });

  it("sweep rows, view and diagnosis name a layer by the graph's short label where it has one", async () => {
    // Graph-model nodes carry labels ("conv2d_9" for "StatefulPartitionedCall/…/conv2d_9/BiasAdd"); here d2 gets one.
    const labelled = sim.graph.edit({ by: "test", attrs: new Map([["d2", { label: "second_dense" }]]) });
    const lsim = sim.withGraph(labelled, { keepStats: true });
    try {
      const r = await sweepEnabled(lsim, { data: data(), metric: "sqnr" });
      assert.equal(r.rows.find((row) => row.key === "d2")!.label, "second_dense");
      assert.equal(r.rows.find((row) => row.key === "d1")!.label, undefined, "no label, no field");
      assert.match(r.diagnosis, /^Quantized alone, second_dense/);
      const spec = JSON.stringify(sweepView(r));
      assert.ok(spec.includes('"layer":"second_dense"') && !spec.includes('"layer":"d2"'), "the view's rows are named by the label");
      const q = await sweepDisabled(lsim, { data: data(), metric: "sqnr", granularity: "quantizer" });
      assert.equal(q.rows.find((row) => row.key === "d2.kernel")!.label, "second_dense.kernel");
    } finally {
      lsim.dispose();
      labelled.dispose();
    }
  });

  it("disable-one sweep: leaving d2 in float recovers the most", async () => {
    const r = await assertNoLeak("disable sweep", () => sweepDisabled(sim, { data: data(), metric: "sqnr", granularity: "quantizer" }));
    const best = [...r.rows].sort((a, b) => b.score - a.score)[0];
    assert.equal(best.key, "d2.kernel");
    assert.ok(r.rows.every((row) => row.quantizers.length === 1));
  });

  it("per-layer error: d3's own error is small while the error it inherits from d2 is large", async () => {
    // Only d2's weights are coarse (3 bits); everything else at 16 bits.
    const onlyD2 = sim.with({ "**": { bitwidth: 16 }, "d2.kernel": { bitwidth: 3 } });
    const r = await assertNoLeak("layer error", () => layerError(onlyD2, { data: data() }));
    onlyD2.dispose();
    const d2 = r.rows.find((row) => row.node === "d2")!;
    const d3 = r.rows.find((row) => row.node === "d3")!;
    assert.ok(d3.local!.sqnrDb! > d3.propagated.sqnrDb! + 30, `d3 local ${d3.local!.sqnrDb} dB vs propagated ${d3.propagated.sqnrDb} dB`);
    assert.ok(d2.local!.sqnrDb! < d3.local!.sqnrDb!, "d2 makes more error than d3");
    const input = r.rows.find((row) => row.node === "features")!;
    // A 16-bit quantizer on the input: close to pure rounding noise, rmse/step ≈ 0.289.
    assert.ok(Math.abs(input.local!.rmseOverStep! - 1 / Math.sqrt(12)) < 0.03, `rmse/step ${input.local!.rmseOverStep}`);
  });

  it("per-channel statistics and ranges point at d2's channel 3", () => {
    const r = weightChannelStats(sim);
    const d2 = r.layers.find((l) => l.node === "d2")!;
    assert.equal(d2.widestChannel, 3);
    assert.ok(d2.rangeRatio > 20, `ratio ${d2.rangeRatio}`);
    assert.ok(r.layers.filter((l) => l.node !== "d2").every((l) => l.rangeRatio < d2.rangeRatio));
    assert.match(r.diagnosis, /d2\.kernel has the most uneven channels: channel 3/);
    const boxes = r.rows.filter((row) => row.quantizer === "d2.kernel");
    assert.equal(boxes.length, 16);
    assert.ok(boxes.every((b) => b.min <= b.q1 && b.q1 <= b.median && b.median <= b.q3 && b.q3 <= b.max));
    const ranges = encodingRanges(sim);
    const k2 = ranges.rows.find((row) => row.quantizer === "d2.kernel")!;
    assert.ok(k2.max > 5 * ranges.rows.find((row) => row.quantizer === "d1.kernel")!.max);
  });

  it("activation histograms carry the range and the clipped share", () => {
    const r = activationHistograms(sim);
    const h = r.histograms.find((x) => x.quantizer === "d2.output")!;
    assert.equal(h.bins.reduce((s, b) => s + b.count, 0), 96 * 16);
    assert.ok(h.bins.length <= 128);
    assert.equal(h.clippedFraction, 0);
    const clipped = activationHistograms(sim.with({ "d2.output": { range: { min: 0, max: h.observedMax / 4 } } }));
    assert.ok(clipped.histograms.find((x) => x.quantizer === "d2.output")!.clippedFraction > 0);
  });

  it("per-channel activation statistics find the outlier channel", async () => {
    const r = await assertNoLeak("activation axes", () => activationAxes(graph, { data: data(), nodes: ["d2"] }));
    assert.equal(r.rows.length, 16);
    assert.deepEqual(r.outliers[0], { ...r.outliers[0], node: "d2", axis: "channel", index: 3 });
  });

  it("evaluate that throws or returns NaN names the step and the layer; nothing to quantize says so", async () => {
    await assert.rejects(sweepEnabled(sim, { evaluate: () => { throw new Error("boom"); } }), /sweep-enabled: evaluate\(\) threw on the FP32 model: boom$/);
    let calls = 0;
    await assert.rejects(sweepEnabled(sim, { evaluate: () => (++calls === 4 ? NaN : 1) }), /sweep-enabled: evaluate\(\) returned NaN on "d1"/);
    const none = sim.with({ "**": { enabled: false } });
    await assert.rejects(sweepEnabled(none, { data: data() }), /nothing to quantize/);
    await assert.rejects(layerError(none, { data: data() }), /nothing to quantize/);
  });
});
