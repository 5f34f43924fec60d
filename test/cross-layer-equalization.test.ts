import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { crossLayerEqualization, equalizingScales } from "../src/fix/cross-layer-equalization";
import { batchNormStatsOf, foldBatchNorms } from "../src/fix/fold-batch-norm";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph } from "../src/graph/load-model";
import { forward } from "../src/graph/forward";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { buildOutlierModel } from "./fixtures/small-models";
import { assertNoLeak, setupBackend } from "./helpers";

const relDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0]);

describe("cross-layer equalization", () => {
  before(setupBackend);

  it("equalizes the outlier channel away: same FP32 function, equal channel ranges across each pair", async () => {
    const model = buildOutlierModel();
    const graph = importLayersModel(model);
    model.dispose();
    const x = tf.randomNormal([16, 8], 0, 1, "float32", 4);
    await assertNoLeak("CLE + dispose", () => {
      const r = crossLayerEqualization(graph);
      assert.deepEqual(r.pairs, [{ first: "d1", second: "d2" }, { first: "d2", second: "d3" }, { first: "d3", second: "logits" }]);
      assert.deepEqual(r.relu6Replaced, []);
      const [a] = forward(r.graph, x);
      const [b] = forward(graph, x);
      assert.ok(relDiff(a, b) < 1e-5, `FP32 changed by ${relDiff(a, b)}`);
      // d2's outlier output channel 3 (50x) is no longer 50x the others.
      const ratio = (g: Graph) => tf.tidy(() => {
        const r2 = tf.max(tf.abs(g.node("d2").params.kernel), 0).dataSync();
        return Math.max(...r2) / Math.min(...r2);
      });
      assert.ok(ratio(r.graph) < ratio(graph) / 5, `channel-range ratio ${ratio(graph)} -> ${ratio(r.graph)}`);
      tf.dispose([a, b]);
      r.graph.dispose();
    });
    x.dispose();
    graph.dispose();
  });

  it("on the example model (BatchNorm folded) replaces the ReLU6s inside pairs and keeps that function", async () => {
    const original = await loadGraph(EXAMPLE_MODEL);
    const { graph } = foldBatchNorms(original);
    original.dispose();
    const r = crossLayerEqualization(graph);
    assert.equal(r.pairs.length, 10);
    assert.equal(r.relu6Replaced.length, 10);
    assert.ok(r.relu6Replaced.every((name) => r.graph.node(name).attrs.maxValue === null));
    // BatchNorm statistics follow the channels: divided by the accumulated scale of each first layer.
    const first = r.pairs[0].first;
    const before = batchNormStatsOf(graph.node(first))!;
    const after = batchNormStatsOf(r.graph.node(first))!;
    r.scales[first].forEach((s, i) => {
      assert.ok(Math.abs(after.mean[i] - before.mean[i] / s) <= 1e-9 * Math.max(1, Math.abs(before.mean[i])), `mean ${i}`);
      assert.ok(Math.abs(after.std[i] - before.std[i] / s) <= 1e-9 * Math.max(1, before.std[i]), `std ${i}`);
    });
    assert.ok(r.scales[first].some((s) => Math.abs(s - 1) > 1e-3), "some channel was rescaled");
    // The reference: the same graph with the same ReLU6s made ReLU, no scaling.
    const reluGraph = new Graph({
      name: graph.name,
      nodes: graph.nodes.map((n) => (r.relu6Replaced.includes(n.name) ? { ...n, attrs: { ...n.attrs, maxValue: null } } : n)),
      inputs: [...graph.inputs],
      outputs: [...graph.outputs],
    });
    const x = tf.randomUniform([8, 28, 28, 1], 0, 1, "float32", 1);
    const [a] = forward(r.graph, x);
    const [b] = forward(reluGraph, x);
    assert.ok(relDiff(a, b) < 1e-5, `${relDiff(a, b)}`);
    tf.dispose([a, b, x]);
    r.graph.dispose();
    graph.dispose();
  });

  it("scales a dead channel (all-zero weights in the first layer) to the median range, not leaving it an outlier", () => {
    // Equalized ranges sqrt(r1·r2): 2, 2, 4 → median 2; the dead channel 3 gets s = 2 / 8.
    const s = equalizingScales([4, 1, 16, 0], [1, 4, 1, 8]);
    assert.deepEqual(s, [2, 0.5, 4, 0.25]);
    assert.deepEqual(equalizingScales([1, 0], [1, 0]), [1, 1], "a channel zero on both sides keeps scale 1");
  });

  it("with relu6: 'per-channel' keeps ReLU6 as per-channel clips, so the example's FP32 outputs are unchanged", async () => {
    const original = await loadGraph(EXAMPLE_MODEL);
    const { graph } = foldBatchNorms(original);
    original.dispose();
    const x = tf.randomUniform([8, 28, 28, 1], 0, 1, "float32", 2);
    await assertNoLeak("CLE per-channel ReLU6", () => {
      const r = crossLayerEqualization(graph, { relu6: "per-channel" });
      assert.deepEqual(r.relu6Replaced, []);
      assert.equal(r.relu6Rescaled.length, 10);
      const clip = r.graph.node(r.relu6Rescaled[0]).attrs.maxValue as number[];
      assert.ok(Array.isArray(clip) && clip.some((v) => Math.abs(v - 6) > 1e-3));
      const [a] = forward(r.graph, x);
      const [b] = forward(graph, x);
      assert.ok(relDiff(a, b) < 1e-5, `FP32 changed by ${relDiff(a, b)}`);
      tf.dispose([a, b]);
      r.graph.dispose();
    });
    assert.throws(() => crossLayerEqualization(graph, { relu6: "clip" as "relu" }), /relu6 must be/);
    x.dispose();
    graph.dispose();
  });

  it("names each pair it cannot scale and why: a sigmoid between them, a residual branch, a channel multiplier", () => {
    const input = tf.input({ shape: [6, 6, 2] });
    const a = tf.layers.conv2d({ filters: 4, kernelSize: 1, name: "a" }).apply(input) as tf.SymbolicTensor;
    const s = tf.layers.activation({ activation: "sigmoid", name: "s" }).apply(a) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 4, kernelSize: 1, name: "b" }).apply(s) as tf.SymbolicTensor;
    const c = tf.layers.conv2d({ filters: 4, kernelSize: 1, name: "c" }).apply(b) as tf.SymbolicTensor;
    const sum = tf.layers.add({ name: "sum" }).apply([b, c]) as tf.SymbolicTensor;
    const d = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: "same", name: "d" }).apply(sum) as tf.SymbolicTensor;
    const e = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: "e" }).apply(d) as tf.SymbolicTensor;
    const f = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: "f" }).apply(e) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: f });
    const graph = importLayersModel(model);
    model.dispose();
    const r = crossLayerEqualization(graph);
    assert.deepEqual(r.pairs, [{ first: "e", second: "f" }]);
    const reasons = Object.fromEntries(r.rejected.map((x) => [`${x.first}→${x.second}`, x.reason]));
    assert.match(reasons["a→b"], /"s" \(sigmoid\) between them does not commute/);
    assert.match(reasons["b→c"], /also feeds "sum"/);
    assert.match(reasons["d→e"], /channel multiplier 2/);
    r.graph.dispose();
    graph.dispose();
  });

  it("says why when there is nothing to equalize", () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4], name: "only" })] });
    const graph = importLayersModel(model);
    model.dispose();
    assert.throws(() => crossLayerEqualization(graph), /found no layer pair to scale/);
    graph.dispose();
  });
});
