import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { batchNormStatsOf, foldBatchNorms } from "../src/fix/fold-batch-norm";
import { loadGraph } from "../src/graph/load-model";
import { importLayersModel } from "../src/graph/import-layers";
import { forward } from "../src/graph/forward";
import { EXAMPLE_MODEL, buildZooModel, nsfwjsMobileNetV2 } from "./fixtures/models";
import { assertNoLeak, randomizeWeights, setupBackend } from "./helpers";

function maxRelDiff(a: tf.Tensor[], b: tf.Tensor[]): number {
  return Math.max(...a.map((t, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(t, b[i]))).dataSync()[0] / tf.max(tf.abs(b[i])).dataSync()[0])));
}

describe("BatchNorm folding", () => {
  before(setupBackend);

  it("folds every conv/depthwise → BN pair of the example model; FP32 outputs unchanged", async () => {
    const graph = await loadGraph(EXAMPLE_MODEL);
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, "float32", 3);
    const r = foldBatchNorms(graph);
    const folded = forward(r.graph, x);
    const original = forward(graph, x);
    // The folded BN's description of the layer output travels with the node: mean β, std |γ|.
    const { into, batchNorm } = r.folded[0];
    const bn = graph.node(batchNorm);
    const stats = batchNormStatsOf(r.graph.node(into))!;
    assert.deepEqual(stats.mean, Array.from(bn.params.beta.dataSync()));
    assert.deepEqual(stats.std, Array.from(bn.params.gamma.dataSync(), Math.abs));
    assert.equal(batchNormStatsOf(graph.node(into)), undefined, "the source graph's node is unchanged");
    const result = { bn: r.graph.nodes.filter((n) => n.op === "batchNorm").length, folded: r.folded.length, nodes: r.graph.nodes.length, diff: maxRelDiff(folded, original) };
    // The graph records what folding changed: each BN removed (its readers rewired to the layer), the layer's parameters and statistics.
    assert.deepEqual(r.graph.edits.filter((e) => e.kind === "remove").map((e) => e.node), r.folded.map((f) => f.batchNorm));
    assert.deepEqual(r.graph.edits.find((e) => e.kind === "remove" && e.node === batchNorm), { by: "fold-batch-norm", kind: "remove", node: batchNorm, rewiredTo: into });
    assert.deepEqual(r.graph.edits.find((e) => e.kind === "params" && e.node === into), { by: "fold-batch-norm", kind: "params", node: into, params: Object.keys(r.graph.node(into).params) });
    assert.deepEqual(graph.edits, []);
    assert.equal(r.step, "fold-batch-norm");
    assert.match(r.diagnosis, /^Folded 17 BatchNorm layers into the layer before them/);
    tf.dispose([...folded, ...original]);
    r.dispose();
    r.dispose(); // idempotent
    assert.ok(r.graph.node(into).params.kernel.isDisposed, "dispose() freed the new graph");
    assert.equal(result.bn, 0, "no BatchNorm left");
    assert.equal(result.folded, 17);
    assert.equal(result.nodes, graph.nodes.length - 17);
    assert.ok(result.diff <= 1e-5, `rel diff ${result.diff}`);
    x.dispose();
    graph.dispose();
  });

  it("folds a BatchNorm into the layer it feeds (conv 3x3 valid, depthwise valid, dense) when no zero padding meets it; FP32 unchanged", async () => {
    const L = tf.layers;
    const input = tf.input({ shape: [9, 9, 3] });
    let x = L.conv2d({ filters: 4, kernelSize: 3, activation: "relu", name: "c1" }).apply(input) as tf.SymbolicTensor;
    x = L.batchNormalization({ name: "bn1" }).apply(x) as tf.SymbolicTensor;
    x = L.conv2d({ filters: 5, kernelSize: 3, padding: "valid", useBias: false, name: "c2" }).apply(x) as tf.SymbolicTensor;
    x = L.reLU({ name: "r2" }).apply(x) as tf.SymbolicTensor;
    x = L.batchNormalization({ name: "bn2" }).apply(x) as tf.SymbolicTensor;
    x = L.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2, name: "dw" }).apply(x) as tf.SymbolicTensor;
    x = L.reLU({ name: "r3" }).apply(x) as tf.SymbolicTensor;
    x = L.batchNormalization({ name: "bn3" }).apply(x) as tf.SymbolicTensor;
    x = L.conv2d({ filters: 3, kernelSize: 3, padding: "same", name: "c3" }).apply(x) as tf.SymbolicTensor;
    x = L.activation({ activation: "relu", name: "r4" }).apply(x) as tf.SymbolicTensor;
    x = L.flatten({ name: "flat" }).apply(x) as tf.SymbolicTensor;
    x = L.batchNormalization({ name: "bn4" }).apply(x) as tf.SymbolicTensor;
    x = L.dense({ units: 2, name: "out" }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: x });
    randomizeWeights(model, 9);
    const graph = importLayersModel(model);
    model.dispose();
    const images = tf.randomUniform([4, 9, 9, 3], 0, 1, "float32", 5);
    await assertNoLeak("fold before", () => {
      const r = foldBatchNorms(graph);
      assert.deepEqual(r.folded.map((f) => `${f.batchNorm}→${f.into}:${f.position}`), ["bn1→c2:before", "bn2→dw:before", "bn4→out:before"]);
      assert.equal(r.notFolded.length, 1);
      assert.match(r.notFolded[0].reason, /"c3" pads with zeros/);
      assert.ok(r.graph.has("bn3") && !r.graph.has("bn1"));
      assert.ok(r.graph.node("c2").params.bias, "a bias is added where the layer had none");
      const a = forward(r.graph, images);
      const b = forward(graph, images);
      assert.ok(maxRelDiff(a, b) <= 1e-5, `rel diff ${maxRelDiff(a, b)}`);
      tf.dispose([...a, ...b]);
      r.graph.dispose();
    });
    images.dispose();
    graph.dispose();
  });

  it("leaves the source graph intact and leaks nothing", async () => {
    const graph = await loadGraph(EXAMPLE_MODEL);
    const before = graph.nodes.length;
    await assertNoLeak("fold + dispose", () => foldBatchNorms(graph).graph.dispose());
    assert.equal(graph.nodes.length, before);
    assert.ok(graph.nodes.some((n) => n.op === "batchNorm"));
    graph.dispose();
  });

  it("on MobileNetV2 (nsfwjs) and a model with every layer kind: same outputs, BNs after activations kept", async () => {
    for (const load of [() => loadGraph(nsfwjsMobileNetV2()), async () => {
      const m = buildZooModel();
      randomizeWeights(m, 3);
      const g = importLayersModel(m);
      m.dispose();
      return g;
    }]) {
      const graph = await load();
      const r = foldBatchNorms(graph);
      const inputs = graph.inputSpecs.map((s, i) => (s.dtype === "int32" ? tf.randomUniform([2, ...s.shape.slice(1).map((d) => d ?? 16)] as number[], 0, 20, "int32", i) : tf.randomUniform([2, ...s.shape.slice(1).map((d) => d ?? 16)] as number[], -1, 1, "float32", i)));
      const a = forward(r.graph, inputs);
      const b = forward(graph, inputs);
      assert.ok(maxRelDiff(a, b) <= 1e-5, `${graph.name}: ${maxRelDiff(a, b)}`);
      if (graph.name === "zoo") assert.deepEqual(r.folded, [], "bn_a follows a conv with a fused ReLU: not foldable");
      else assert.equal(r.graph.nodes.filter((n) => n.op === "batchNorm").length, 0);
      tf.dispose([...a, ...b, ...inputs]);
      r.graph.dispose();
      graph.dispose();
    }
  });
});
