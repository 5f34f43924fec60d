import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { activationAwareCle, awareScales, spread } from "../src/fix/activation-aware-cle";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { toDataset } from "../src/data/dataset";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { forward } from "../src/graph/forward";
import { activationAwareCleView } from "../widgets/activation-aware-cle-view";
import { viewOf } from "../src/display/show";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, setupBackend, sliceDataset } from "./helpers";

const relDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0]);
const close = (a: readonly number[], b: readonly number[], tol: number, what: string) =>
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${v} vs ${b[i]}`));

/**
 * dense "w1" (2 → 2, kernel diag(4, 1), no bias) → ReLU or ReLU6 "act" → dense "w2" (2 → 1, kernel [1, 4]).
 * On the inputs below, w1's channels peak at 4·0.5 = 2 and 1·8 = 8.
 */
function twoLayerGraph(act: "relu" | "relu6"): Graph {
  const w1 = tf.layers.dense({ units: 2, useBias: false, inputShape: [2], name: "w1" });
  const a = tf.layers.reLU({ maxValue: act === "relu6" ? 6 : undefined, name: "act" });
  const w2 = tf.layers.dense({ units: 1, useBias: false, name: "w2" });
  const model = tf.sequential({ layers: [w1, a, w2] });
  tf.tidy(() => {
    w1.setWeights([tf.tensor2d([[4, 0], [0, 1]])]);
    w2.setWeights([tf.tensor2d([[1], [4]])]);
  });
  const graph = importLayersModel(model);
  model.dispose();
  return graph;
}
const twoLayerInputs = () => tf.tensor2d([[0.5, 8], [0.25, 2], [0, 0], [0.1, 5]]);

/** Per-channel max |x| of each named node's output over a tensor of inputs. */
function measuredRanges(graph: Graph, x: tf.Tensor, nodes: string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const ys = forward(graph, x, {
    hook: (node, y) => {
      if (nodes.includes(node.name)) out.set(node.name, Array.from(tf.max(tf.abs(y), y.shape.slice(0, -1).map((_, i) => i)).dataSync()));
    },
  });
  tf.dispose(ys);
  return out;
}

describe("activation-aware CLE", () => {
  before(setupBackend);

  it("scales by hand: r1 = (4, 1), r2 = (1, 4), activation ranges (2, 8)", () => {
    // Vanilla CLE c = sqrt(r1/r2) = (2, 1/2); activation after it ρ = (1, 16); geometric mean G = 4.
    assert.deepEqual(awareScales([4, 1], [1, 4], [2, 8], 0), [2, 0.5], "α = 0 is vanilla CLE");
    close(awareScales([4, 1], [1, 4], [2, 8], 0.5), [1, 1], 1e-12, "α = 0.5: c·(ρ/G)^½ = (2·¼^½, ½·4^½)");
    close(awareScales([4, 1], [1, 4], [2, 8], 1), [0.5, 2], 1e-12, "α = 1: every activation channel at G");
    // A channel never active has no activation term: it keeps vanilla CLE's scale.
    close(awareScales([4, 1, 9], [1, 4, 1], [2, 8, 0], 1), [0.5, 2, 3], 1e-12, "dead activation channel");
    assert.equal(spread([4, 4, 4]), 1);
    assert.equal(spread([0, 1, 2, 8]), 4, "largest over median of the non-zero ranges");
    assert.equal(spread([1, 2, 3, 8]), 4, "an even count takes the lower median");
  });

  it("on a dense → ReLU → dense pair: the scales, the weights and the activation ranges computed by hand, FP32 unchanged", async () => {
    const graph = twoLayerGraph("relu");
    const x = twoLayerInputs();
    await assertNoLeak("activationAwareCle on the pair", async () => {
      for (const [alpha, s, act] of [[0, [2, 0.5], [1, 16]], [0.5, [1, 1], [2, 8]], [1, [0.5, 2], [4, 4]]] as const) {
        const r = await activationAwareCle(graph, { data: sliceDataset(x, 2), alpha });
        assert.equal(r.step, "activation-aware-cle");
        assert.deepEqual(r.pairs, [{ first: "w1", second: "w2" }]);
        close(r.scales.w1, s, 1e-9, `α=${alpha} scales`);
        const row = r.activations[0];
        assert.equal(row.activation, "act");
        close(row.original, [2, 8], 1e-9, "original ranges");
        close(row.cle, [1, 16], 1e-9, "after vanilla CLE");
        close(row.aware, act, 1e-9, `α=${alpha} activation ranges`);
        // The spread after is (1 − α) times vanilla CLE's, in log: 16^(1−α).
        assert.ok(Math.abs(row.ratio.aware - 16 ** (1 - alpha)) < 1e-9, `ratio ${row.ratio.aware}`);
        // The weights: W1 out-channel i divided by s_i, W2 in-channel i multiplied by it.
        close(Array.from(r.graph.node("w1").params.kernel.dataSync()), [4 / s[0], 0, 0, 1 / s[1]], 1e-6, "w1");
        close(Array.from(r.graph.node("w2").params.kernel.dataSync()), [s[0], 4 * s[1]], 1e-6, "w2");
        // What the graph really computes: the activation ranges predicted, and the same outputs.
        close(measuredRanges(r.graph, x, ["act"]).get("act")!, act as unknown as number[], 1e-6, "measured activation");
        const [a] = forward(r.graph, x);
        const [b] = forward(graph, x);
        assert.ok(relDiff(a, b) < 1e-6, `FP32 changed by ${relDiff(a, b)}`);
        tf.dispose([a, b]);
        assert.match(r.diagnosis, /Vanilla CLE leaves the activations/);
        JSON.stringify({ ...r, graph: undefined });
        r.graph.dispose();
      }
    });
    x.dispose();
    graph.dispose();
  });

  it("ReLU6 kept: a channel that reaches the clip keeps scale 1, the other may be amplified only up to the clip", async () => {
    const graph = twoLayerGraph("relu6");
    const x = twoLayerInputs();
    // Channel 1 peaks at 8 > 6: pinned. Channel 0 (peak 2) wants 2/sqrt(12) ≈ 0.577 at α = 1, above the bound 2/6.
    const r = await activationAwareCle(graph, { data: sliceDataset(x, 4), alpha: 1, relu6: "keep" });
    close(r.scales.w1, [2 / Math.sqrt(12), 1], 1e-6, "kept-ReLU6 scales");
    assert.deepEqual(r.relu6Bound, [{ activation: "act", pinned: 1, capped: 0 }]);
    assert.equal(r.graph.node("act").attrs.maxValue, 6, "ReLU6 stays: the graph is still a TF.js layers model");
    const [a] = forward(r.graph, x);
    const [b] = forward(graph, x);
    assert.ok(relDiff(a, b) < 1e-6, `FP32 on the calibration data changed by ${relDiff(a, b)}`);
    tf.dispose([a, b]);
    r.graph.dispose();
    // With per-channel clips nothing binds: the clipped ranges (2, 6) give c = (2, ½), ρ = (1, 12), s = c·(ρ/√12).
    const r2 = await activationAwareCle(graph, { data: sliceDataset(x, 4), alpha: 1, relu6: "per-channel" });
    close(r2.scales.w1, [2 / Math.sqrt(12), 0.5 * Math.sqrt(12)], 1e-6, "per-channel scales");
    r2.graph.dispose();
    x.dispose();
    graph.dispose();
  });

  it("on the example model (BatchNorm folded): α = 0 is vanilla CLE; α = 0.5 keeps FP32, predicts the measured activation ranges and evens them", async () => {
    const original = await loadGraph(EXAMPLE_MODEL);
    const { graph } = foldBatchNorms(original);
    original.dispose();
    const data = toDataset("mnist:0:128", { batchSize: 64 });
    const x = tf.tidy(() => tf.randomUniform([8, 28, 28, 1], 0, 1, "float32", 3));
    await assertNoLeak("activationAwareCle on the example", async () => {
      const vanilla = crossLayerEqualization(graph, { relu6: "per-channel" });
      const zero = await activationAwareCle(graph, { data, alpha: 0 });
      for (const [first, s] of Object.entries(vanilla.scales)) close(zero.scales[first], s, 1e-9, `α = 0 scales of ${first}`);
      vanilla.graph.dispose();
      zero.graph.dispose();

      const r = await activationAwareCle(graph, { data, alpha: 0.5 });
      assert.equal(r.pairs.length, 10);
      assert.equal(r.relu6Rescaled.length, 10);
      assert.equal(r.examples, 128);
      // Built with Graph.edit: the new graph records what it scaled (both layers of every pair, and each ReLU6's clips).
      const edited = r.graph.edits.filter((e) => e.by === "activation-aware-cle");
      for (const p of r.pairs) {
        assert.ok(edited.some((e) => e.kind === "params" && e.node === p.first), `${p.first} not recorded`);
        assert.ok(edited.some((e) => e.kind === "params" && e.node === p.second), `${p.second} not recorded`);
      }
      assert.equal(edited.filter((e) => e.kind === "attrs" && r.relu6Rescaled.includes(e.node)).length, 10);
      const [a] = forward(r.graph, x);
      const [b] = forward(graph, x);
      assert.ok(relDiff(a, b) < 1e-5, `FP32 changed by ${relDiff(a, b)}`);
      tf.dispose([a, b]);
      // The ranges the result reports are the ones the new graph produces on the same data.
      const images: tf.Tensor[] = [];
      for await (const batch of data.batches()) {
        images.push(batch.inputs[0]);
        batch.labels?.dispose();
      }
      const all = tf.concat(images);
      tf.dispose(images);
      const measured = measuredRanges(r.graph, all, r.activations.map((row) => row.activation));
      all.dispose();
      for (const row of r.activations) close(measured.get(row.activation)!, row.aware, 1e-4, `${row.activation} measured vs reported`);
      // Activation channel ranges more even than vanilla CLE leaves them: the worst layer and the typical one.
      const median = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1];
      const worst = (key: "cle" | "aware") => Math.max(...r.activations.map((row) => row.ratio[key]));
      const typical = (key: "cle" | "aware") => median(r.activations.map((row) => row.ratio[key]));
      assert.ok(worst("aware") < worst("cle"), `worst ratio ${worst("cle")} → ${worst("aware")}`);
      assert.ok(typical("aware") < typical("cle"), `median ratio ${typical("cle")} → ${typical("aware")}`);
      // The view draws every pair in the three states.
      const view = activationAwareCleView(r) as unknown as { hconcat: { layer: { data: { values: { state: string; ratio: number }[] } }[] }[] };
      const drawn = view.hconcat.map((panel) => panel.layer[1].data.values);
      assert.deepEqual(drawn.map((v) => v.length), [3 * r.activations.length, 3 * r.activations.length]);
      assert.equal(drawn[0][2].ratio, r.activations[0].ratio.aware);
      assert.equal(drawn[1][1].ratio, r.activations[0].weightRatio.cle);
      assert.deepEqual(viewOf(r as never), view, "qd.show finds the view by the result's step");
      r.graph.dispose();
    });
    x.dispose();
    graph.dispose();
  });

  it("given a simulation: returns one over the new graph, calibrated, and its score before and after", async () => {
    const original = await loadGraph(EXAMPLE_MODEL);
    const { graph } = foldBatchNorms(original);
    original.dispose();
    const data = toDataset("mnist:0:128", { batchSize: 64 });
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 8 }, activations: { bitwidth: 6 } }).calibrate(data);
    await assertNoLeak("activationAwareCle on a simulation", async () => {
      const r = await activationAwareCle(sim, { data, alpha: 0.5, evaluation: { data, metric: "agreement" } });
      assert.ok(r.sim && r.sim.calibrated && r.sim.graph === r.graph);
      assert.ok(r.scores && r.scores.before > 0.5 && r.scores.after > 0.5, JSON.stringify(r.scores));
      assert.ok(Math.abs(r.scores!.change - (r.scores!.after - r.scores!.before)) < 1e-12);
      r.sim!.dispose();
      r.graph.dispose();
    });
    sim.dispose();
    graph.dispose();
  });

  it("refuses bad options by name, and frees everything when the data is wrong", async () => {
    const graph = twoLayerGraph("relu");
    const x = twoLayerInputs();
    const data = sliceDataset(x, 4);
    await assert.rejects(activationAwareCle(graph, { data, alpha: 1.5 }), /alpha must be a number in \[0, 1\], got 1.5/);
    await assert.rejects(activationAwareCle(graph, { data, relu6: "clip" as "relu" }), /relu6 must be "per-channel", "relu" or "keep"/);
    await assert.rejects(activationAwareCle(graph, { data, iterations: 0 }), /iterations must be a positive integer/);
    await assert.rejects(activationAwareCle(graph, {} as never), /options.data must be a dataset/);
    const wrong = tf.zeros([4, 3]);
    await assertNoLeak("a batch of the wrong shape", () => assert.rejects(activationAwareCle(graph, { data: sliceDataset(wrong, 4) })));
    wrong.dispose();
    const single = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [2], name: "only" })] });
    const lone = importLayersModel(single);
    single.dispose();
    await assert.rejects(activationAwareCle(lone, { data }), /found no layer pair to scale/);
    lone.dispose();
    x.dispose();
    graph.dispose();
  });
});
