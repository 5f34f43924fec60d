import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { loadMnist } from "../src/data/mnist";
import { Encoding } from "../src/quant/encoding";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { batchNormStatsOf, foldBatchNorms } from "../src/fix/fold-batch-norm";
import { highBiasAbsorption } from "../src/fix/high-bias-absorption";
import { kernelTimesInputConstant } from "../src/fix/kernel-math";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { forward } from "../src/graph/forward";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, setupBackend, sliceDataset } from "./helpers";

const values = (t: tf.Tensor) => Array.from(t.dataSync());
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/** The same graph with BatchNorm statistics attached to some nodes (sharing the tensors: dispose only one of the two). */
function withStats(graph: Graph, stats: Record<string, { mean: number[]; std: number[] }>): Graph {
  return new Graph({
    name: graph.name,
    nodes: graph.nodes.map((n) => (stats[n.name] ? { ...n, attrs: { ...n.attrs, batchNormStats: stats[n.name] } } : n)),
    inputs: [...graph.inputs],
    outputs: [...graph.outputs],
  });
}

/** Top-1 agreement of two graphs on the examples of `x`. */
function agreement(a: Graph, b: Graph, x: tf.Tensor): number {
  const [ya, yb] = [forward(a, x)[0], forward(b, x)[0]];
  const same = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(ya, -1), tf.argMax(yb, -1)), "float32")).dataSync()[0]);
  tf.dispose([ya, yb]);
  return same;
}

describe("high-bias absorption", () => {
  before(setupBackend);

  it("W · c is the layer's output on an input holding c per channel ('valid' padding): dense, conv1d, conv2d, depthwise with multiplier 2", () => {
    const c = [0.5, -2, 1.5];
    const check = (op: string, kernel: tf.Tensor, run: (x: tf.Tensor) => tf.Tensor, inputShape: number[]) => {
      const x = tf.mul(tf.ones(inputShape), tf.tensor1d(c));
      const y = run(x);
      const expected = tf.reshape(y, [-1, y.shape[y.rank - 1]]).arraySync() as number[][];
      const got = values(kernelTimesInputConstant(op, kernel, c));
      expected.forEach((row) => row.forEach((v, j) => assert.ok(Math.abs(v - got[j]) < 1e-5, `${op} channel ${j}: ${got[j]} vs ${v}`)));
      tf.dispose([x, y]);
    };
    tf.tidy(() => {
      const dense = tf.randomNormal([3, 4], 0, 1, "float32", 1);
      check("dense", dense, (x) => tf.matMul(x as tf.Tensor2D, dense as tf.Tensor2D), [2, 3]);
      const k1 = tf.randomNormal([2, 3, 4], 0, 1, "float32", 2);
      check("conv1d", k1, (x) => tf.conv1d(x as tf.Tensor3D, k1 as tf.Tensor3D, 1, "valid"), [1, 5, 3]);
      const k2 = tf.randomNormal([3, 2, 3, 4], 0, 1, "float32", 3);
      check("conv2d", k2, (x) => tf.conv2d(x as tf.Tensor4D, k2 as tf.Tensor4D, 1, "valid"), [1, 4, 4, 3]);
      const dw = tf.randomNormal([3, 3, 3, 2], 0, 1, "float32", 4);
      check("depthwiseConv2d", dw, (x) => tf.depthwiseConv2d(x as tf.Tensor4D, dw as tf.Tensor4D, 1, "valid"), [1, 4, 4, 3]);
    });
  });

  it("dense → relu → dense: absorbs c = max(0, β − 3σ) by hand, FP32 unchanged where every pre-activation is ≥ c", async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 3, inputShape: [2], name: "d1" }),
        tf.layers.reLU({ name: "r" }),
        tf.layers.dense({ units: 2, name: "d2" }),
      ],
    });
    const weights = [
      tf.tensor2d([[1, 0, 0.5], [0, 1, 0.5]]), tf.tensor1d([5, 1, 4]),
      tf.tensor2d([[1, 2], [3, 4], [-1, 0.5]]), tf.tensor1d([0.5, -0.5]),
    ];
    model.getLayer("d1").setWeights(weights.slice(0, 2));
    model.getLayer("d2").setWeights(weights.slice(2));
    tf.dispose(weights);
    const imported = importLayersModel(model);
    model.dispose();
    // c = max(0, [5 − 3, 1 − 3, 4 − 1.5]) = [2, 0, 2.5]; with x in [0, 1]² the pre-activations are ≥ [5, 1, 4].
    const graph = withStats(imported, { d1: { mean: [5, 1, 4], std: [1, 1, 0.5] } });
    const x = tf.randomUniform([64, 2], 0, 1, "float32", 7);
    await assertNoLeak("high-bias absorption + dispose", () => {
      const r = highBiasAbsorption(graph);
      assert.deepEqual(r.absorbed, [{ first: "d1", activation: "r", second: "d2", channels: 2, meanAbsorbed: 2.25, maxAbsorbed: 2.5 }]);
      assert.deepEqual(r.approximate, []);
      assert.deepEqual(r.skipped, []);
      // b1 − c = [3, 1, 1.5]; b2 + W2ᵀc = [0.5 + 1·2 + 3·0 − 1·2.5, −0.5 + 2·2 + 4·0 + 0.5·2.5] = [0, 4.75].
      values(r.graph.node("d1").params.bias).forEach((v, i) => assert.ok(Math.abs(v - [3, 1, 1.5][i]) < 1e-6, `b1[${i}] = ${v}`));
      values(r.graph.node("d2").params.bias).forEach((v, i) => assert.ok(Math.abs(v - [0, 4.75][i]) < 1e-6, `b2[${i}] = ${v}`));
      assert.deepEqual(batchNormStatsOf(r.graph.node("d1")), { mean: [3, 1, 1.5], std: [1, 1, 0.5] });
      const [a] = forward(r.graph, x);
      const [b] = forward(graph, x);
      // Float32 rounding only: outputs are ~10, so relative to their size.
      const rel = maxAbsDiff(a, b) / tf.tidy(() => tf.max(tf.abs(b)).dataSync()[0]);
      assert.ok(rel < 1e-6, `FP32 changed by ${rel} (relative)`);
      // The input graph is left as it was.
      assert.deepEqual(values(graph.node("d1").params.bias), [5, 1, 4]);
      assert.deepEqual(values(graph.node("d2").params.bias), [0.5, -0.5]);
      tf.dispose([a, b]);
      r.graph.dispose();
    });
    x.dispose();
    imported.dispose();
  });

  it("conv → conv without activation absorbs all of β: exact inside, approximate at 'same'-padded borders (listed)", async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ filters: 2, kernelSize: 1, inputShape: [6, 6, 1], name: "c1", kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: "same", name: "c2", kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    const imported = importLayersModel(model);
    model.dispose();
    const graph = withStats(imported, { c1: { mean: [1.5, -0.5], std: [0.1, 0.1] } });
    const x = tf.randomUniform([4, 6, 6, 1], -1, 1, "float32", 3);
    await assertNoLeak("linear pair", () => {
      const r = highBiasAbsorption(graph);
      assert.equal(r.absorbed[0].channels, 2);
      assert.equal(r.absorbed[0].activation, undefined);
      assert.deepEqual(r.approximate, ["c1 → c2"]);
      values(r.graph.node("c1").params.bias).forEach((v, i) => assert.ok(Math.abs(v - [-1.5, 0.5][i]) < 1e-6));
      const [a] = forward(r.graph, x);
      const [b] = forward(graph, x);
      const inside = (t: tf.Tensor) => tf.slice(t, [0, 1, 1, 0], [4, 4, 4, 3]);
      const [ia, ib] = [inside(a), inside(b)];
      assert.ok(maxAbsDiff(ia, ib) < 1e-5, `inside changed by ${maxAbsDiff(ia, ib)}`);
      // At the borders the padded zeros never carried β: the output moves there.
      assert.ok(maxAbsDiff(a, b) > 1e-2, "border outputs changed");
      tf.dispose([a, b, ia, ib]);
      r.graph.dispose();
      const skipping = highBiasAbsorption(graph, { zeroPadded: "skip" });
      assert.deepEqual(skipping.absorbed, []);
      assert.match(skipping.skipped[0].reason, /"c2" zero-pads its input/);
      skipping.graph.dispose();
    });
    x.dispose();
    imported.dispose();
  });

  it("says what to run first: no BatchNorm statistics, or a ReLU6 left inside a pair", async () => {
    const original = await loadGraph(EXAMPLE_MODEL);
    assert.throws(() => highBiasAbsorption(original), /fold BatchNorm first with foldBatchNorms, then run crossLayerEqualization/);
    const { graph } = foldBatchNorms(original);
    original.dispose();
    const r = highBiasAbsorption(graph); // ReLU6 still there: nothing absorbed, each pair says why
    assert.equal(r.absorbed.length, 0);
    assert.equal(r.skipped.length, 10);
    assert.match(r.skipped[0].reason, /ReLU6.*run crossLayerEqualization first/);
    r.graph.dispose();
    graph.dispose();
  });

  it("on the example model after CLE: FP32 top-1 unchanged; its BatchNorm biases all lie below 3σ, so nothing is absorbed", async () => {
    const original = await loadGraph(EXAMPLE_MODEL);
    const { graph: folded } = foldBatchNorms(original);
    original.dispose();
    const cle = crossLayerEqualization(folded);
    folded.dispose();
    const mnist = loadMnist("mnist", { limit: 300 });
    const x = tf.tensor4d(mnist.images, mnist.shape);
    await assertNoLeak("example", async () => {
      const r = highBiasAbsorption(cle.graph);
      assert.equal(r.absorbed.length, 10);
      // Trained for 2 epochs, its BatchNorms have β/|γ| ≤ 0.3: no channel reaches β > 3|γ|.
      assert.ok(r.absorbed.every((a) => a.channels === 0), JSON.stringify(r.absorbed));
      assert.ok(agreement(cle.graph, r.graph, x) >= 0.99);
      r.graph.dispose();
    });
    x.dispose();
    cle.graph.dispose();
  });

  it("conv-BN-ReLU-conv with high BatchNorm biases (statistics true to the data): the ReLU's calibrated range shrinks, FP32 top-1 stays", async () => {
    const L = tf.layers;
    const input = tf.input({ shape: [8, 8, 3], name: "image" });
    let y = L.conv2d({ filters: 4, kernelSize: 3, padding: "same", name: "c1", kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }) }).apply(input) as tf.SymbolicTensor;
    y = L.batchNormalization({ name: "bn1" }).apply(y) as tf.SymbolicTensor;
    y = L.reLU({ name: "r1" }).apply(y) as tf.SymbolicTensor;
    y = L.conv2d({ filters: 6, kernelSize: 1, name: "c2", kernelInitializer: tf.initializers.glorotUniform({ seed: 12 }) }).apply(y) as tf.SymbolicTensor;
    y = L.globalAveragePooling2d({ name: "gap" }).apply(y) as tf.SymbolicTensor;
    y = L.dense({ units: 5, name: "fc", kernelInitializer: tf.initializers.glorotUniform({ seed: 13 }) }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: y });
    const x = tf.randomUniform([128, 8, 8, 3], 0, 1, "float32", 5);
    // BatchNorm's moving statistics are the data's, so its output really is N(β, γ²) per channel.
    const conv = model.getLayer("c1").apply(x) as tf.Tensor;
    const { mean, variance } = tf.moments(conv, [0, 1, 2]);
    const bnWeights = [tf.tensor1d([1, 0.5, 1, 0.2]), tf.tensor1d([0.2, 3, -1, 2]), mean, variance];
    model.getLayer("bn1").setWeights(bnWeights);
    tf.dispose([conv, ...bnWeights]);
    const original = importLayersModel(model);
    model.dispose();
    const { graph: folded } = foldBatchNorms(original);
    original.dispose();
    const cle = crossLayerEqualization(folded);
    folded.dispose();
    const data = sliceDataset(x, 64);
    await assertNoLeak("range shrink", async () => {
      const r = highBiasAbsorption(cle.graph);
      // c = max(0, β − 3γ) = [0, 1.5, 0, 1.4] before CLE's scaling.
      assert.equal(r.absorbed[0].channels, 2);
      assert.deepEqual(r.approximate, []);
      const before = await QuantSim.create(cle.graph).calibrate(data);
      const after = await QuantSim.create(r.graph).calibrate(data);
      const range = (s: QuantSim) => s.encodingOf("r1.output") as Encoding;
      assert.ok(range(after).max < 0.9 * range(before).max, `r1 range ${range(before).max} -> ${range(after).max}`);
      assert.ok(agreement(cle.graph, r.graph, x) >= 0.99);
      before.dispose();
      after.dispose();
      r.graph.dispose();
    });
    x.dispose();
    cle.graph.dispose();
  });
});
