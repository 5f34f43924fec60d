import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { outlierDimensions } from "../src/analysis/outlier-dimensions";
import { groupRanges, outlierFixes } from "../src/analysis/outlier-fixes";
import { toDataset } from "../src/data/dataset";
import { Graph } from "../src/graph/graph";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { TEXT_ENCODER_EVAL, TEXT_ENCODER_MODEL } from "../src/text-encoder";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, setupBackend } from "./helpers";
import { assertViewRenders } from "./fixtures/vega-validate";
import { outlierDimensionsView } from "../widgets/outlier-dimensions-view";
import { outlierFixesView } from "../widgets/outlier-fixes-view";
import { viewOf } from "../src/display/show";

const OUTLIER_DIM = 3;
const OUTLIER_SCALE = 40;

/**
 * A one-block post-norm residual model on [batch, 6 tokens, 8 dims] whose
 * residual sum carries one outlier dimension by construction: x + x·K with K
 * the identity except column 3 scaled by 40, so dim 3 of the sum is 41·x₃.
 */
function outlierModel(): tf.LayersModel {
  const x = tf.input({ shape: [6, 8], name: "x" });
  const mix = tf.layers.dense({ units: 8, useBias: false, name: "mix" });
  const sum = tf.layers.add({ name: "residual_add" }).apply([x, mix.apply(x) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const norm = tf.layers.layerNormalization({ name: "norm" }).apply(sum) as tf.SymbolicTensor;
  const pool = tf.layers.globalAveragePooling1d({ name: "pool" }).apply(norm) as tf.SymbolicTensor;
  const head = tf.layers.dense({ units: 3, activation: "softmax", name: "head", kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(pool) as tf.SymbolicTensor;
  const model = tf.model({ inputs: x, outputs: head, name: "outlier-block" });
  const k = tf.tidy(() => tf.mul(tf.eye(8), tf.tensor1d(Array.from({ length: 8 }, (_, i) => (i === OUTLIER_DIM ? OUTLIER_SCALE : 1)))));
  mix.setWeights([k]);
  k.dispose();
  return model;
}

describe("outlier dimensions (per-token and per-embedding views)", () => {
  before(setupBackend);

  it("groupRanges: dimensions sorted by range width, split into equal groups (known answer)", () => {
    const r = groupRanges({ min: [-1, -10, 0, -2, -0.5, 0], max: [1, 10, 0.5, 2, 0.5, 30] }, 3);
    // widths 2, 20, 0.5, 4, 1, 30 → order 2, 4, 0, 3, 1, 5 → groups {2, 4}, {0, 3}, {1, 5}
    assert.deepEqual(r.groupOf, [1, 2, 0, 1, 0, 2]);
    assert.deepEqual(r.ranges, [{ min: -0.5, max: 0.5 }, { min: -2, max: 2 }, { min: -10, max: 30 }]);
  });

  it("finds the outlier dimension a residual sum carries by construction, on the LayerNorm input, and draws it", async () => {
    const model = outlierModel();
    const graph = await loadGraph(model);
    const x = tf.randomNormal([32, 6, 8], 0, 1, "float32", 7);
    const data = toDataset(x, { batchSize: 16 });
    try {
      const r = await assertNoLeak("outlierDimensions", () => outlierDimensions(graph, { data }));
      assert.equal(r.examples, 32);
      assert.deepEqual(r.layerNormInputs, ["residual_add"]);
      assert.deepEqual(r.residualNodes, ["residual_add", "norm"]);
      const add = r.nodes.find((n) => n.node === "residual_add")!;
      assert.equal(add.role, "layerNormInput");
      assert.deepEqual(add.outliers, [OUTLIER_DIM]);
      // |41·x₃| against |2·x_d| for the others: about 20× the median dimension.
      assert.ok(add.ratio > 12 && add.ratio < 30, `ratio ${add.ratio}`);
      // Exact per-dimension ranges: dim d of the sum is (1 + K_dd)·x_d.
      const xs = x.arraySync() as number[][][];
      const dim3 = xs.flat().map((row) => row[OUTLIER_DIM] * (1 + OUTLIER_SCALE));
      const range3 = r.ranges.find((e) => e.node === "residual_add" && e.dim === OUTLIER_DIM)!;
      assert.ok(Math.abs(range3.max - Math.max(...dim3)) < 1e-4 && Math.abs(range3.min - Math.min(...dim3)) < 1e-4);
      assert.equal(r.heatmap.length, 6 * 8);
      const cell = r.heatmap.find((c) => c.token === 2 && c.dim === OUTLIER_DIM)!;
      assert.ok(Math.abs(cell.absMax - Math.max(...xs.map((e) => Math.abs(e[2][OUTLIER_DIM] * 41)))) < 1e-4);
      // The mixing layer's output carries it too (40×), outside the residual stream.
      assert.deepEqual(r.outliers.map((o) => `${o.node}:${o.dim}`).sort(), ["mix:3", "residual_add:3"]);
      assert.match(r.diagnosis, /^2 outlier dimensions in 2 activations, 1 of them on the residual stream: .*residual_add \(dim 3\)/);
      const spec = outlierDimensionsView(r);
      assert.equal((spec as unknown as { vconcat: unknown[] }).vconcat.length, 3, "heat map, ranges, ratios");
      assert.deepEqual(viewOf(r), spec, "qd.show finds the view by the result's step");
      await assertViewRenders("outlier dimensions", spec);
    } finally {
      x.dispose();
      graph.dispose();
      model.dispose();
    }
  });

  it("measures the fixes: per-embedding groups isolate the outlier and beat one per-tensor grid", async () => {
    const model = outlierModel();
    const graph = await loadGraph(model);
    const x = tf.randomNormal([32, 6, 8], 0, 1, "float32", 7);
    const data = toDataset(x, { batchSize: 16 });
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 8 }, activations: { bitwidth: 6 } }).calibrate(data);
    try {
      const r = await assertNoLeak("outlierFixes", () => outlierFixes(sim, { data, metric: "sqnr", groups: 4 }));
      assert.deepEqual(r.rows.map((x) => x.fix), ["as is", "per-embedding-group", "residual stream high bits", "LayerNorm inputs high bits"]);
      const g = r.embeddingGroups.find((e) => e.quantizer === "residual_add.output")!;
      // The widest dimension sits alone at the top of the sort: in the last group.
      assert.equal(g.groupOf[OUTLIER_DIM], 3);
      const [asIs, grouped, residual, ln] = r.rows.map((x) => x.score);
      assert.ok(grouped > asIs + 3, `per-embedding-group ${grouped} dB vs as is ${asIs} dB`);
      assert.ok(residual > asIs && ln > asIs, `16 bits: ${residual}, ${ln} vs ${asIs}`);
      assert.equal(r.rows[1].recovered, null);
      assert.match(r.diagnosis, /The best fix is/);
      const spec = outlierFixesView(r);
      assert.deepEqual(viewOf(r), spec);
      await assertViewRenders("outlier fixes", spec);
    } finally {
      sim.dispose();
      x.dispose();
      graph.dispose();
      model.dispose();
    }
  });

  it("on the text encoder: roles from the graph, heat maps of the five LayerNorm inputs, no outlier dimension", async () => {
    const graph = await loadGraph(TEXT_ENCODER_MODEL);
    try {
      const data = toDataset(TEXT_ENCODER_EVAL, { batchSize: 32, limit: 64 });
      const r = await assertNoLeak("outlierDimensions", () => outlierDimensions(graph, { data }));
      assert.equal(r.examples, 64);
      assert.deepEqual(r.layerNormInputs, ["embeddings", "block_0_attention_add", "block_0_ffn_add", "block_1_attention_add", "block_1_ffn_add"]);
      const role = (n: string) => r.nodes.find((x) => x.node === n)!.role;
      assert.equal(role("block_0_attention_norm"), "residual");
      assert.equal(role("block_0_head_0_scores"), "attention");
      assert.equal(role("block_0_head_0_probs"), "attention");
      assert.equal(role("block_0_ffn_up"), "other");
      assert.equal(r.heatmap.length, 5 * 64 * 32);
      assert.equal(r.ranges.filter((e) => e.node === "embeddings").length, 32);
      assert.equal(r.outliers.length, 0);
      assert.ok(Math.max(...r.nodes.map((n) => n.ratio)) < 3);
      assert.match(r.diagnosis, /^No outlier dimension/);
    } finally {
      graph.dispose();
    }
  });

  it("refuses a model without sequences, and bad options, by name", async () => {
    const graph = await loadGraph(EXAMPLE_MODEL);
    try {
      const data = toDataset("mnist", { batchSize: 8, limit: 8 });
      await assert.rejects(outlierDimensions(graph, { data }), /has no \[batch, tokens, dim\] activation/);
      await assert.rejects(outlierDimensions(graph, { data, threshold: 1 }), /threshold must be a number above 1/);
      await assert.rejects(outlierDimensions(graph as unknown as Graph, {} as never), /options.data is required/);
      const sim = QuantSim.create(graph);
      await assert.rejects(outlierFixes(sim, { data }), /calibrate the simulation first/);
      sim.dispose();
    } finally {
      graph.dispose();
    }
  });
});
