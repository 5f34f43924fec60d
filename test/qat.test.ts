import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { toDataset } from "../src/data/dataset";
import { scoreBeforeAfter } from "../src/fix/before-after";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { learnedRangeFakeQuant } from "../src/fix/learned-range";
import { qat } from "../src/fix/qat";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph } from "../src/graph/load-model";
import { Encoding } from "../src/quant/encoding";
import { fakeQuant } from "../src/quant/fake-quant";
import { QuantSim } from "../src/quant/quantsim";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { buildBlockModel } from "./fixtures/small-models";
import { assertNoLeak, setupBackend, sliceDataset } from "./helpers";

/** Every parameter of a graph as plain numbers, by "node.param". */
function paramValues(graph: Graph): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const n of graph.nodes) for (const [k, t] of Object.entries(n.params)) out.set(`${n.name}.${k}`, t.dataSync() as Float32Array);
  return out;
}

/** Conv with a fused ReLU6, depthwise with a fused ReLU6, dense with a fused ELU (none has a fused gradient in tfjs), linear output. */
function buildFusedModel(): tf.LayersModel {
  const L = tf.layers;
  let s = 11;
  const init = () => tf.initializers.glorotUniform({ seed: s++ });
  const x = tf.input({ shape: [6, 6, 2], name: "image" });
  let y = L.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu6", kernelInitializer: init(), biasInitializer: "ones", name: "conv" }).apply(x) as tf.SymbolicTensor;
  y = L.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: "same", activation: "relu6", depthwiseInitializer: init(), name: "dw" }).apply(y) as tf.SymbolicTensor;
  y = L.flatten({ name: "flat" }).apply(y) as tf.SymbolicTensor;
  y = L.dense({ units: 6, activation: "elu", kernelInitializer: init(), name: "hidden" }).apply(y) as tf.SymbolicTensor;
  y = L.dense({ units: 3, kernelInitializer: init(), name: "out" }).apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y, name: "fused" });
}

async function graphOf(build: () => tf.LayersModel): Promise<Graph> {
  const model = build();
  const graph = importLayersModel(model);
  model.dispose();
  return graph;
}

describe("quantization-aware training", () => {
  before(setupBackend);

  it("learned-range gradients (asymmetric, 2 bits): hand-computed", () => {
    // [-1, 2] at 2 bits: δ = 1, offset -1, grid {-1, 0, 1, 2}. r = round(x/δ) = [-2, 0, 0, 0, 3]:
    // below, on grid ×3, above. dy = w = [1..5].
    // dx = [0, 2, 3, 4, 0]; on-grid sum Σ w·(r - x/δ) = 2·0.3 + 3·(-0.1) + 4·(-0.45) = -1.5, /numSteps = -0.5;
    // dmin = below (1) - (-0.5) = 1.5; dmax = above (5) + (-0.5) = 4.5.
    const x = tf.tensor1d([-1.7, -0.3, 0.1, 0.45, 2.6]);
    const w = tf.tensor1d([1, 2, 3, 4, 5]);
    const range = tf.tensor1d([-1, 2]);
    const current = { min: -1, max: 2, bitwidth: 2, scheme: "asymmetric" as const };
    const [dx, dr] = tf.grads((a: tf.Tensor, r: tf.Tensor) => tf.sum(tf.mul(learnedRangeFakeQuant(a, r, current), w)))([x, range]);
    const y = learnedRangeFakeQuant(x, range, current);
    assert.deepEqual(Array.from(y.dataSync(), (v) => v + 0), [-1, 0, 0, 0, 2]);
    assert.deepEqual(Array.from(dx.dataSync()), [0, 2, 3, 4, 0]);
    const [dmin, dmax] = dr.dataSync();
    assert.ok(Math.abs(dmin - 1.5) < 1e-5 && Math.abs(dmax - 4.5) < 1e-5, `dmin ${dmin}, dmax ${dmax}`);
    tf.dispose([x, w, range, dx, dr, y]);
  });

  it("learned-range gradients (symmetric, 3 bits): hand-computed, given to the side that sets the scale", () => {
    // [-1, 2] symmetric at 3 bits: s = 2, δ = s/3, offset -4, grid [-4δ, 3δ]. x/δ = [-4.65, -0.45, 0.15, 0.675, 3.9],
    // r = [-5, 0, 0, 1, 4]: below, on grid ×3, above. On-grid sum: 2·0.45 + 3·(-0.15) + 4·0.325 = 1.75.
    // dq/ds = (δ/s)·(1.75 + 1·(-4) + 5·3) = 12.75 / 3 = 4.25, all to max (2 > |-1|).
    const x = tf.tensor1d([-3.1, -0.3, 0.1, 0.45, 2.6]);
    const w = tf.tensor1d([1, 2, 3, 4, 5]);
    const range = tf.tensor1d([-1, 2]);
    const grads = (current: { min: number; max: number }) =>
      tf.tidy(() => {
        const c = { ...current, bitwidth: 3, scheme: "symmetric" as const };
        const [dx, dr] = tf.grads((a: tf.Tensor, r: tf.Tensor) => tf.sum(tf.mul(learnedRangeFakeQuant(a, r, c), w)))([x, range]);
        return [Array.from(dx.dataSync()), Array.from(dr.dataSync())];
      });
    const [dx, dr] = grads({ min: -1, max: 2 });
    assert.deepEqual(dx, [0, 2, 3, 4, 0]);
    assert.ok(Math.abs(dr[0]) === 0 && Math.abs(dr[1] - 4.25) < 1e-5, `d[min, max] = ${dr}`);
    // When the negative side is the larger one, it sets the scale and takes the gradient, sign flipped.
    const [, flipped] = grads({ min: -2, max: 1 });
    assert.ok(Math.abs(flipped[0] + 4.25) < 1e-5 && flipped[1] === 0, `d[min, max] = ${flipped}`);
    tf.dispose([x, w, range]);
  });

  it("trains through the simulation's own forward: with the simulation's outputs as targets the first loss is 0", async () => {
    const graph = await graphOf(buildFusedModel);
    const x = tf.randomUniform([16, 6, 6, 2], -1, 2, "float32", 3);
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4, perChannel: true }, activations: { bitwidth: 5 }, biases: { bitwidth: 8 } }).calibrate(sliceDataset(x, 8));
    const [simulated] = sim.forward(x);
    const [fp32] = QuantSim.create(graph, { weights: { enabled: false }, activations: { enabled: false } }).forward(x);
    const firstLoss = async (targets: tf.Tensor) => {
      const r = await qat(sim, { data: sliceDataset(x, 16, targets), loss: "mse", batchSize: 16, learningRate: 1e-9, curveEvery: 1 });
      r.graph.dispose();
      r.sim.dispose();
      return r.curve.find((p) => p.series === "loss")!.value;
    };
    const vsSim = await firstLoss(simulated);
    const vsFp32 = await firstLoss(fp32);
    assert.ok(vsSim < 1e-10, `loss against the simulation's own outputs: ${vsSim}`);
    assert.ok(vsFp32 > 1e-3, `loss against FP32 outputs should show the quantization error: ${vsFp32}`);
    tf.dispose([x, simulated, fp32]);
    sim.dispose();
    graph.dispose();
  });

  it("gradients pass straight through where a weight is on the grid and are zero where it is clipped (one Adam step, hand-computed)", async () => {
    // features (8-bit) → dense softmax. The kernel's grid is fixed to [-0.3, 0.3]: weights outside are clipped.
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: "softmax", kernelInitializer: tf.initializers.randomNormal({ stddev: 0.4, seed: 7 }), biasInitializer: "zeros", name: "d" })] });
    const graph = importLayersModel(model);
    model.dispose();
    const x = tf.randomNormal([12, 4], 0, 1, "float32", 8);
    const labels = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], "int32");
    const sim = await QuantSim.create(graph, { overrides: { "d.kernel": { range: { min: -0.3, max: 0.3 } } } }).calibrate(sliceDataset(x, 12));
    const lr = 1e-3;
    const r = await qat(sim, { data: sliceDataset(x, 12, labels), batchSize: 12, learningRate: lr });
    assert.equal(r.loss, "crossentropy");
    assert.equal(r.steps, 1);
    // The STE gradient by hand: logits z = x_q·W_q + b (the softmax output's quantizer is not in the loss),
    // dL/dW = x_qᵀ (softmax(z) - onehot) / n, masked where W is clipped.
    const inputName = graph.inputs[0];
    const inputEnc = sim.encodingOf(`${inputName}.output`) as Encoding;
    const kernelEnc = sim.encodingOf("d.kernel") as Encoding;
    const [g, inside] = tf.tidy(() => {
      const W = graph.node("d").params.kernel;
      const xq = fakeQuant(x, inputEnc);
      const z = tf.add(tf.matMul(xq, fakeQuant(W, kernelEnc)), graph.node("d").params.bias);
      const d = tf.div(tf.sub(tf.softmax(z), tf.oneHot(labels, 3)), 12);
      const mask = tf.logicalAnd(tf.greaterEqual(W, kernelEnc.min - kernelEnc.scale / 2), tf.lessEqual(W, kernelEnc.max + kernelEnc.scale / 2));
      return [tf.mul(tf.matMul(xq, d, true, false), tf.cast(mask, "float32")).dataSync(), mask.dataSync()];
    });
    const before = graph.node("d").params.kernel.dataSync();
    const after = r.graph.node("d").params.kernel.dataSync();
    let clipped = 0;
    for (let i = 0; i < before.length; i++) {
      const step = (after[i] - before[i]) / lr;
      if (!inside[i]) {
        clipped++;
        assert.equal(after[i], before[i], `clipped weight ${i} (${before[i]}) must not move`);
      } else {
        // Adam's first step is lr · g / (|g| + ε): -lr · sign(g).
        assert.ok(Number.isFinite(g[i]) && g[i] !== 0, `weight ${i}: gradient ${g[i]}`);
        assert.ok(Math.abs(step + Math.sign(g[i])) < 0.01, `weight ${i}: moved ${step}·lr, gradient ${g[i]}`);
      }
    }
    assert.ok(clipped >= 1 && clipped < before.length, `${clipped} of ${before.length} weights clipped: the case needs both kinds`);
    assert.deepEqual(r.graph.edits, [{ by: "qat", kind: "params", node: "d", params: ["kernel", "bias"] }], "the trained graph records the weights QAT changed");
    r.graph.dispose();
    r.sim.dispose();
    sim.dispose();
    graph.dispose();
    tf.dispose([x, labels]);
  });

  it("recovers most of the W4A4 drop of the example model (BatchNorms folded; train on mnist 0–511, evaluate on 1500–1999)", async () => {
    const loaded = await loadGraph(EXAMPLE_MODEL);
    const { graph } = foldBatchNorms(loaded);
    loaded.dispose();
    const train = toDataset("mnist:0:512");
    const heldOut = toDataset("mnist:1500:500");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 4 } }).calibrate(train);
    const fp32Sim = sim.with({ "**": { bitwidth: 32 } });
    const { before: fp32 } = await scoreBeforeAfter("fp32", fp32Sim, sim, { data: heldOut, metric: "accuracy" });
    fp32Sim.dispose();
    const paramsBefore = paramValues(graph);
    sim.dispose(); // frees the quantized weights scoring made, so the count below is what QAT leaves
    const tensorsBefore = tf.memory().numTensors;
    const steps: number[] = [];
    const r = await qat(sim, {
      data: train,
      learningRate: 3e-4,
      validation: heldOut,
      evaluation: { data: heldOut, metric: "accuracy" },
      onProgress: (e) => steps.push(e.done),
    });
    const { before, after } = r.scores!;
    const recovered = (after - before) / (fp32 - before);
    console.log(`      FP32 ${fp32}, W4A4 ${before} → QAT ${after} (${(100 * recovered).toFixed(0)} % of the drop recovered) in ${(r.elapsedMs / 1000).toFixed(1)} s`);
    assert.ok(fp32 - before > 0.1, `W4A4 should cost accuracy here: FP32 ${fp32}, W4A4 ${before}`);
    assert.ok(recovered > 0.6, `QAT recovered ${(100 * recovered).toFixed(0)} % of the drop (${before} → ${after}, FP32 ${fp32})`);
    // The validation curve's last point is the returned simulation, scored on the same data.
    assert.equal(r.validation!.before, before);
    assert.equal(r.validation!.after, after);
    assert.deepEqual(steps.slice(0, 3), [1, 2, 3]);
    assert.equal(r.steps, 16);
    assert.equal(r.curve.filter((p) => p.series === "accuracy").length, 2);
    assert.ok(r.curve.filter((p) => p.series === "loss").every((p) => Number.isFinite(p.value) && p.value > 0));
    assert.match(r.diagnosis, /QAT helped/);
    // The input graph is untouched; the trained one differs.
    for (const [name, values] of paramValues(graph)) assert.deepEqual(values, paramsBefore.get(name), `${name} changed`);
    assert.ok([...paramValues(r.graph)].some(([name, v]) => v.some((x, i) => x !== paramsBefore.get(name)![i])));
    // Nothing leaks: what is left is the new graph, the new simulation's and the scored simulation's quantized weights.
    r.sim.dispose();
    r.graph.dispose();
    sim.dispose();
    assert.equal(tf.memory().numTensors, tensorsBefore);
    graph.dispose();
  });

  it("same seed, same model; another seed, another model (unfolded BatchNorm, softmax classifier)", async () => {
    const graph = await graphOf(buildBlockModel);
    const x = tf.randomUniform([24, 8, 8, 3], 0, 1, "float32", 5);
    const labels = tf.tensor1d(Array.from({ length: 24 }, (_, i) => i % 5), "int32");
    const data = () => sliceDataset(x, 10, labels);
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 6 } }).calibrate(data());
    const run = async (seed: number) => {
      const r = await qat(sim, { data: data(), seed, epochs: 2, batchSize: 8, learningRate: 1e-2 });
      const values = paramValues(r.graph);
      r.graph.dispose();
      r.sim.dispose();
      return { values, curve: r.curve };
    };
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    assert.deepEqual(b.curve, a.curve);
    for (const [name, v] of a.values) assert.deepEqual(b.values.get(name), v, `${name} differs with the same seed`);
    assert.ok([...a.values].some(([name, v]) => v.some((value, i) => value !== c.values.get(name)![i])), "another seed shuffles differently");
    // BatchNorm's moving statistics are not trained; γ is.
    const original = paramValues(graph);
    assert.deepEqual(a.values.get("bn1.moving_mean"), original.get("bn1.moving_mean"));
    assert.notDeepEqual(a.values.get("bn1.gamma"), original.get("bn1.gamma"));
    sim.dispose();
    graph.dispose();
    tf.dispose([x, labels]);
  });

  it("learnRanges learns activation ranges, and the returned simulation uses them", async () => {
    const graph = await graphOf(buildBlockModel);
    const x = tf.randomUniform([32, 8, 8, 3], 0, 1, "float32", 6);
    const labels = tf.tensor1d(Array.from({ length: 32 }, (_, i) => (i * 3) % 5), "int32");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 4 } }).calibrate(sliceDataset(x, 16));
    await assertNoLeak("qat with learnRanges, then disposing its graph and simulation", async () => {
      const r = await qat(sim, { data: sliceDataset(x, 16, labels), learnRanges: true, epochs: 3, batchSize: 8, learningRate: 1e-3, rangeLearningRate: 0.05 });
      const activations = sim.sites.filter((s) => s.kind === "activation").map((s) => s.name);
      assert.deepEqual(r.learnedRanges!.map((row) => row.quantizer), activations);
      const moved = r.learnedRanges!.filter((row) => Math.abs(row.after.max - row.before.max) > 1e-3);
      assert.ok(moved.length >= activations.length / 2, `${moved.length} of ${activations.length} ranges moved`);
      for (const row of r.learnedRanges!) {
        const enc = r.sim.encodingOf(row.quantizer) as Encoding;
        assert.ok(row.after.min <= 0 && row.after.max > 0, `${row.quantizer}: [${row.after.min}, ${row.after.max}]`);
        assert.equal(enc.min, row.after.min, `${row.quantizer} uses its learned range`);
        assert.equal(enc.max, row.after.max, `${row.quantizer} uses its learned range`);
      }
      r.sim.dispose();
      r.graph.dispose();
    });
    sim.dispose();
    graph.dispose();
    tf.dispose([x, labels]);
  });

  it("distillation needs no labels; against an FP32-exact simulation its loss is 0", async () => {
    const graph = await graphOf(buildBlockModel);
    const x = tf.randomUniform([16, 8, 8, 3], 0, 1, "float32", 7);
    const calibrated = await QuantSim.create(graph).calibrate(sliceDataset(x, 16));
    const exact = calibrated.with({ "**": { bitwidth: 32 } });
    const low = calibrated.with({ "**": { bitwidth: 4 } });
    await assertNoLeak("distillation with validation and recalibration", async () => {
      for (const [sim, expectZero] of [[exact, true], [low, false]] as const) {
        const r = await qat(sim, { data: sliceDataset(x, 16), batchSize: 16, curveEvery: 1, learningRate: 1e-3, validation: sliceDataset(x, 16), recalibrate: true });
        assert.equal(r.loss, "distillation");
        const first = r.curve.find((p) => p.series === "loss")!.value;
        // Float32 noise (~3e-9) against the quantization error of 4 bits (~5e-5 on this near-uniform classifier).
        if (expectZero) assert.ok(Math.abs(first) < 1e-7, `KL(FP32 || 32-bit simulation) = ${first}`);
        else assert.ok(first > 1e-6, `KL(FP32 || 4-bit simulation) = ${first}`);
        assert.deepEqual(r.curve.filter((p) => p.series === "agreement").map((p) => p.step), [0, 1], "agreement with FP32 before and after");
        assert.ok(r.sim.calibrated);
        r.sim.dispose();
        r.graph.dispose();
      }
    });
    tf.dispose([x]);
    graph.dispose();
  });

  it("clear errors: no labels for crossentropy, nothing to train, bad options, no calibration, labels that are not classes", async () => {
    const graph = await graphOf(buildBlockModel);
    const x = tf.randomUniform([8, 8, 8, 3], 0, 1, "float32", 9);
    const sim = await QuantSim.create(graph).calibrate(sliceDataset(x, 8));
    await assert.rejects(qat(sim, { data: sliceDataset(x, 8), loss: "crossentropy" }), /loss "crossentropy" needs labels.*use loss "distillation"/);
    await assert.rejects(qat(sim, sliceDataset(x, 8) as never), /^Error: qat: give the data in the options, as qat\(subject, \{ data \}\)$/);
    await assert.rejects(qat(sim, {} as never), /^Error: qat: options\.data is required/);
    await assert.rejects(qat(sim, { data: x } as never), /^Error: qat: options\.data is not a dataset/);
    await assert.rejects(qat(sim, { data: sliceDataset(x, 8), epochs: 0 }), /invalid epochs: 0 \(expected a positive integer\)/);
    await assert.rejects(qat(sim, { data: sliceDataset(x, 8), learningRate: -1 }), /invalid learningRate: -1/);
    await assert.rejects(qat(sim, { data: sliceDataset(x, 8), loss: "hinge" as never }), /invalid loss: "hinge" \(expected one of crossentropy, mse, distillation\)/);
    await assert.rejects(qat(QuantSim.create(graph), { data: sliceDataset(x, 8) }), /qat: quantizer ".*" has no range yet: calibrate the simulation first/);
    const badLabels = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], "int32");
    await assert.rejects(qat(sim, { data: sliceDataset(x, 8, badLabels) }), /label 5 of example 5 is not a class index of "fc" \(0 to 4\)/);
    await assert.rejects(qat(sim, { data: sliceDataset(x, 8, badLabels), loss: "mse" }), /loss "mse" needs targets shaped like the output "fc" \[batch, 5\]/);
    const relu = tf.sequential({ layers: [tf.layers.reLU({ inputShape: [4], name: "r" })] });
    const paramless = importLayersModel(relu);
    relu.dispose();
    const v = tf.randomNormal([4, 4], 0, 1, "float32", 1);
    const paramlessSim = await QuantSim.create(paramless).calibrate(sliceDataset(v, 4));
    await assert.rejects(qat(paramlessSim, { data: sliceDataset(v, 4) }), /has no trainable weights/);
    tf.dispose([x, badLabels, v]);
    sim.dispose();
    graph.dispose();
    paramless.dispose();
  });
});
