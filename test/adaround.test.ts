import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { adaround, AdaroundResult, resolveAdaroundOptions } from "../src/fix/adaround";
import { followingActivation, layerOutput, trainingOutput } from "../src/fix/adaround-layer-output";
import {
  annealedBeta,
  initialV,
  inWarmStart,
  reconstructionLoss,
  rectifiedSigmoid,
  rectifiedSigmoidValue,
  roundingLoss,
} from "../src/fix/adaround-loss";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { CurvePoint } from "../src/fix/training-curve";
import { toDataset } from "../src/data/dataset";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph } from "../src/graph/load-model";
import { Encoding } from "../src/quant/encoding";
import { QuantSim } from "../src/quant/quantsim";
import { ProgressEvent } from "../src/progress";
import { registerWasmGradientKernels } from "../src/train/wasm-gradient-kernels";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, setupBackend } from "./helpers";

/**
 * A small two-input model with every kind of layer AdaRound meets: a strided
 * conv with a fused ReLU, a separable conv (depth multiplier 2) followed by a
 * ReLU6 layer, a Conv1D and a Dense on [batch, steps, features], an Embedding
 * (skipped) and a softmax Dense.
 */
function buildMixedModel(): tf.LayersModel {
  const L = tf.layers;
  let s = 11;
  const init = () => tf.initializers.glorotUniform({ seed: s++ });
  const image = tf.input({ shape: [10, 10, 3], name: "image" });
  const tokens = tf.input({ shape: [6], name: "tokens", dtype: "int32" });
  let x = L.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: "same", activation: "relu", kernelInitializer: init(), name: "conv" }).apply(image) as tf.SymbolicTensor;
  x = L.separableConv2d({ filters: 8, kernelSize: 3, padding: "same", depthMultiplier: 2, depthwiseInitializer: init(), pointwiseInitializer: init(), name: "sep" }).apply(x) as tf.SymbolicTensor;
  x = L.reLU({ maxValue: 6, name: "sep_relu6" }).apply(x) as tf.SymbolicTensor;
  x = L.reshape({ targetShape: [25, 8], name: "to_steps" }).apply(x) as tf.SymbolicTensor;
  x = L.conv1d({ filters: 8, kernelSize: 3, padding: "valid", activation: "relu", kernelInitializer: init(), name: "conv1d" }).apply(x) as tf.SymbolicTensor;
  x = L.dense({ units: 6, activation: "relu", kernelInitializer: init(), name: "per_step" }).apply(x) as tf.SymbolicTensor;
  x = L.flatten({ name: "flat" }).apply(x) as tf.SymbolicTensor;
  const t = L.flatten({ name: "tflat" }).apply(L.embedding({ inputDim: 20, outputDim: 4, embeddingsInitializer: init(), name: "embed" }).apply(tokens)) as tf.SymbolicTensor;
  const merged = L.concatenate({ name: "merged" }).apply([x, t]) as tf.SymbolicTensor;
  const out = L.dense({ units: 5, activation: "softmax", kernelInitializer: init(), name: "probs" }).apply(merged) as tf.SymbolicTensor;
  return tf.model({ inputs: [image, tokens], outputs: out, name: "mixed" });
}

/** Every frozen value of a result is a grid point of its encoding: code · scale (float32) with the code an integer in range. */
function assertOnGrid(result: AdaroundResult, sim: QuantSim): void {
  for (const row of result.layers) {
    const frozen = result.sim.frozenWeightOf(row.quantizer);
    assert.ok(frozen, `${row.quantizer} has a frozen weight`);
    const site = sim.sites.find((s) => s.name === row.quantizer)!;
    const encodings: Encoding[] = Array.isArray(frozen!.encoding) ? frozen!.encoding : [frozen!.encoding];
    assert.deepEqual(frozen!.encoding, sim.encodingOf(row.quantizer), `${row.quantizer} keeps the simulation's encoding`);
    const shape = site.channelShape ?? frozen!.shape;
    const inner = encodings.length > 1 ? shape.slice(site.channelAxis! + 1).reduce((a, b) => a * b, 1) : 1;
    frozen!.values.forEach((v, i) => {
      const e = encodings[encodings.length > 1 ? Math.floor(i / inner) % encodings.length : 0];
      const scale = Math.fround(e.scale);
      const code = Math.round(v / scale);
      assert.ok(code >= e.offset && code <= e.offset + e.numSteps, `${row.quantizer}[${i}]: code ${code} outside [${e.offset}, ${e.offset + e.numSteps}]`);
      assert.equal(Math.fround(code * scale), v, `${row.quantizer}[${i}] = ${v} is not on the grid (scale ${scale})`);
    });
  }
}

describe("AdaRound", () => {
  before(async () => {
    await setupBackend();
    registerWasmGradientKernels();
  });

  it("loss pieces follow AIMET's formulas (hand-computed values)", () => {
    // h(0) = sigmoid(0)·1.2 − 0.1 = 0.5; the rectified sigmoid reaches 0 and 1 exactly.
    assert.ok(Math.abs(rectifiedSigmoidValue(0) - 0.5) < 1e-15);
    assert.equal(rectifiedSigmoidValue(10), 1);
    assert.equal(rectifiedSigmoidValue(-10), 0);
    // V starts where h(V) = frac(W/s): AIMET's −log((ζ − γ)/(frac − γ) − 1).
    for (const frac of [0, 0.1, 0.25, 0.5, 0.9, 0.999]) assert.ok(Math.abs(rectifiedSigmoidValue(initialV(frac)) - frac) < 1e-12, `frac ${frac}`);
    assert.ok(Math.abs(initialV(0.5)) < 1e-15);
    const h = tf.tidy(() => rectifiedSigmoid(tf.tensor1d([0, 10, -10, initialV(0.25)])).arraySync() as number[]);
    assert.deepEqual(h.map((v) => Number(v.toFixed(6))), [0.5, 1, 0, 0.25]);
    // β: 20 right after the warm start, 2 at the end, their mean half way (cosine).
    assert.equal(annealedBeta(200, 1000, [20, 2], 0.2), 20);
    assert.ok(Math.abs(annealedBeta(600, 1000, [20, 2], 0.2) - 11) < 1e-12);
    assert.ok(Math.abs(annealedBeta(1000, 1000, [20, 2], 0.2) - 2) < 1e-12);
    assert.ok(inWarmStart(199, 1000, 0.2) && !inWarmStart(200, 1000, 0.2));
    // λ·Σ(1 − |2h − 1|^β): h = 0, 0.5, 1, 0.75 with β = 2 → 0 + 1 + 0 + 0.75, times λ = 0.1.
    const round = tf.tidy(() => roundingLoss(tf.tensor1d([0, 0.5, 1, 0.75]), 0.1, 2).dataSync()[0]);
    assert.ok(Math.abs(round - 0.175) < 1e-7, `${round}`);
    // Squared error summed over channels, averaged over the rest: ((1 + 4) + (9 + 16)) / 2.
    const recon = tf.tidy(() => reconstructionLoss(tf.tensor2d([[1, 2], [3, 4]]), tf.zeros([2, 2])).dataSync()[0]);
    assert.ok(Math.abs(recon - 15) < 1e-6);
  });

  it("trains through a cheaper path that has the layers' values and weight gradients", async () => {
    const model = buildMixedModel();
    const graph = importLayersModel(model);
    model.dispose();
    await assertNoLeak("training path", () => {
      const inputs: Record<string, tf.Tensor> = {
        conv: tf.randomUniform([4, 10, 10, 3], -1, 2, "float32", 1),
        sep: tf.randomUniform([4, 5, 5, 6], -6, 12, "float32", 2),
        conv1d: tf.randomUniform([4, 25, 8], -1, 3, "float32", 3),
        per_step: tf.randomUniform([4, 23, 8], -1, 3, "float32", 4),
        probs: tf.randomUniform([4, 162], -1, 1, "float32", 5),
      };
      const weights: Record<string, string> = { conv: "kernel", sep: "depthwise_kernel", conv1d: "kernel", per_step: "kernel", probs: "kernel" };
      for (const [name, x] of Object.entries(inputs)) {
        const node = graph.node(name);
        const after = followingActivation(graph, node);
        if (name === "sep") assert.equal(after?.name, "sep_relu6", "the ReLU6 layer reading sep is applied");
        const key = weights[name];
        const r = tf.tidy(() => tf.randomNormal(layerOutput(node, after, node.params, x).shape, 0, 1, "float32", 7));
        const run = (f: typeof layerOutput) => (w: tf.Tensor) => tf.sum(tf.mul(f(node, after, { ...node.params, [key]: w }, x), r));
        const [a, b] = [layerOutput(node, after, node.params, x), trainingOutput(node, after, node.params, x)];
        if (name === "sep") {
          const [zero, six] = tf.tidy(() => [tf.sum(tf.equal(a, 0).toInt()).dataSync()[0], tf.sum(tf.equal(a, 6).toInt()).dataSync()[0]]);
          assert.ok(zero > 0 && six > 0, `sep's ReLU6 clips at both ends (${zero} zeros, ${six} sixes)`);
        }
        const valueGap = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
        assert.ok(valueGap < 1e-5, `${name}: values differ by ${valueGap}`);
        const [ga, gb] = [tf.grad(run(layerOutput))(node.params[key]), tf.grad(run(trainingOutput))(node.params[key])];
        const gradGap = tf.tidy(() => tf.max(tf.abs(tf.sub(ga, gb))).dataSync()[0] / tf.max(tf.abs(ga)).dataSync()[0]);
        assert.ok(gradGap < 1e-5, `${name}: weight gradients differ by ${gradGap} (relative)`);
        tf.dispose([a, b, ga, gb, r, x]);
      }
    });
    graph.dispose();
  });

  it("on the example model at 4-bit weights beats rounding to nearest, layer by layer and in accuracy", async function () {
    this.timeout(240000);
    const original = await loadGraph(EXAMPLE_MODEL);
    const { graph } = foldBatchNorms(original);
    original.dispose();
    // W4A8 per tensor; AdaRound data = calibration data = the first 256 images; scored on the 1744 others.
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(toDataset("mnist:0:256"));
    const progress: ProgressEvent[] = [];
    const live: CurvePoint[] = [];
    await assertNoLeak("adaround on the example", async () => {
      const r = await adaround(sim, { data: toDataset("mnist:0:256", { batchSize: 64 }), 
        // A short schedule: 100 steps per layer instead of AIMET's 15 000, with a 10× step size to match.
        iterations: 100,
        learningRate: 1e-2,
        examples: 256,
        seed: 1,
        onProgress: (e) => progress.push(e),
        onCurve: (p) => live.push(p),
        evaluation: { data: toDataset("mnist:256:1744", { batchSize: 250 }), metric: "accuracy" },
      });
      try {
        // Every conv / depthwise / dense weight, in execution order, each lowering its own reconstruction error.
        assert.equal(r.layers.length, 18);
        assert.deepEqual(r.layers.map((l) => l.quantizer), sim.sites.filter((s) => s.kind === "weight").map((s) => s.name));
        assert.deepEqual(r.skipped, []);
        for (const l of r.layers) {
          assert.ok(l.reconstructionAfter <= l.reconstructionBefore, `${l.layer}: reconstruction MSE ${l.reconstructionBefore} → ${l.reconstructionAfter}`);
          assert.ok(l.flippedShare > 0.02 && l.flippedShare < 0.25, `${l.layer}: ${l.flippedShare} of the weights flipped`);
          assert.equal(l.examples, 256);
        }
        const gain = r.layers.filter((l) => l.reconstructionAfter < 0.95 * l.reconstructionBefore).length;
        assert.ok(gain >= 16, `only ${gain} layers lowered their error by 5 % or more`);
        // The accuracy gain is real: several points on held-out images (measured: 94.55 % → 97.88 %; FP32 98.0 %).
        const scores = r.scores!;
        assert.equal(scores.metric.metric, "accuracy");
        assert.ok(scores.before > 0.93 && scores.before < 0.96, `nearest rounding: ${scores.before}`);
        assert.ok(scores.after > scores.before + 0.025, `AdaRound ${scores.after} vs nearest ${scores.before}`);
        assertOnGrid(r, sim);
        // Resolved options, progress per layer, the curve (every iteration here: 100 / 100).
        assert.deepEqual(
          { ...r.options, layers: r.options.layers.length },
          { iterations: 100, regularization: 0.01, betaRange: [20, 2], warmStart: 0.2, learningRate: 1e-2, batchSize: 32, examples: 256, layers: 18, seed: 1, inputs: "weights-quantized", maxCacheMB: 256, curveEvery: 1 },
        );
        assert.deepEqual(progress.map((e) => e.done), Array.from({ length: 18 }, (_, i) => i + 1));
        assert.deepEqual(live, r.curve);
        assert.equal(r.curve.length, 18 * 100 * 3);
        const conv1 = r.curve.filter((p) => p.run === "Conv1.kernel");
        assert.ok(conv1.filter((p) => p.series === "rounding" && p.step < 20).every((p) => p.value === 0), "no rounding loss during the warm start");
        assert.ok(conv1.some((p) => p.series === "rounding" && p.value > 0));
        // The FP32 graph is untouched; the simulation's other settings are kept.
        assert.equal(r.sim.graph, sim.graph);
        assert.deepEqual(r.sim.encodingOf("Conv1_relu.output"), sim.encodingOf("Conv1_relu.output"));
      } finally {
        r.sim.dispose();
      }
      sim.dispose();
    });
    graph.dispose();
  });

  it("gives bit-identical weights for one seed; handles per-channel asymmetric grids, separable, Conv1D, Dense on steps; skips embeddings", async () => {
    const model = buildMixedModel();
    const graph = importLayersModel(model);
    model.dispose();
    const images = tf.randomUniform([48, 10, 10, 3], 0, 1, "float32", 3);
    const tokens = tf.randomUniform([48, 6], 0, 20, "int32", 4);
    const data = toDataset([images, tokens], { batchSize: 16 });
    const sim = QuantSim.create(graph, { weights: { bitwidth: 3, scheme: "asymmetric", perChannel: true } });
    await assertNoLeak("adaround on the mixed model", async () => {
      const run = (seed: number, layers?: string[]) => adaround(sim, { data: data,  iterations: 200, examples: 40, batchSize: 16, learningRate: 1e-2, seed, curveEvery: 50, layers });
      const [a, b, c] = [await run(5), await run(5), await run(6, ["conv"])];
      try {
        assert.deepEqual(a.layers.map((l) => l.quantizer), ["conv.kernel", "sep.depthwise_kernel", "sep.pointwise_kernel", "conv1d.kernel", "per_step.kernel", "probs.kernel"]);
        assert.deepEqual(a.skipped.map((s) => s.quantizer), ["embed.embeddings"]);
        assert.match(a.skipped[0].reason, /lookup table/);
        assert.ok(a.layers.every((l) => l.examples === 40 && l.iterations === 200));
        assert.ok(a.layers.every((l) => l.reconstructionAfter <= l.reconstructionBefore), JSON.stringify(a.layers));
        assertOnGrid(a, sim);
        for (const l of a.layers) {
          assert.deepEqual(a.sim.frozenWeightOf(l.quantizer)!.values, b.sim.frozenWeightOf(l.quantizer)!.values, `${l.quantizer}: same seed, other weights`);
        }
        assert.deepEqual(a.curve, b.curve);
        assert.equal(a.curve.length, 6 * 5 * 3, "points at steps 0, 50, 100, 150 and the last, per layer and series");
        const conv = (r: AdaroundResult) => r.curve.filter((p) => p.run === "conv.kernel");
        assert.deepEqual(conv(c).map((p) => [p.series, p.step]), conv(a).map((p) => [p.series, p.step]));
        assert.notDeepEqual(conv(c), conv(a), "another seed draws other batches");
        // Embeddings keep rounding to nearest: no frozen weight.
        assert.equal(a.sim.frozenWeightOf("embed.embeddings"), undefined);
      } finally {
        for (const r of [a, b, c]) r.sim.dispose();
      }
    });
    sim.dispose();
    tf.dispose([images, tokens]);
    graph.dispose();
  });

  it("optimizes only the layers asked for, from the simulation's own inputs when asked, and bounds the cache", async () => {
    const model = buildMixedModel();
    const graph = importLayersModel(model);
    model.dispose();
    const images = tf.randomUniform([32, 10, 10, 3], 0, 1, "float32", 8);
    const tokens = tf.randomUniform([32, 6], 0, 20, "int32", 9);
    const data = toDataset([images, tokens], { batchSize: 16 });
    const sim = QuantSim.create(graph, { weights: { bitwidth: 4 } });
    await assertNoLeak("adaround options", async () => {
      // An uncalibrated simulation is fine: activation quantizers are off while rounding (AIMET's way).
      const r = await adaround(sim, { data: data,  iterations: 10, layers: ["probs", "conv.kernel"], examples: 32 });
      assert.deepEqual(r.layers.map((l) => l.quantizer), ["conv.kernel", "probs.kernel"]);
      assert.deepEqual(r.layers.map((l) => l.examples), [32, 32]);
      assert.equal(r.sim.frozenWeightOf("sep.depthwise_kernel"), undefined);
      r.sim.dispose();
      // sep reads [5, 5, 6] and, through its ReLU6, writes [5, 5, 8]: room for 16 examples.
      const bounded = await adaround(sim, { data: data,  iterations: 2, layers: ["sep"], examples: 32, maxCacheMB: (16 * 4 * (5 * 5 * 6 + 5 * 5 * 8)) / 2 ** 20 });
      assert.deepEqual(bounded.layers.map((l) => [l.quantizer, l.examples]), [["sep.depthwise_kernel", 16], ["sep.pointwise_kernel", 16]]);
      bounded.sim.dispose();
      await assert.rejects(adaround(sim, { data: data,  iterations: 2, inputs: "simulation" }), /calibrate the simulation first/);
      const calibrated = await sim.with({ "**": { bitwidth: 8 } }).calibrate(data);
      const own = await adaround(calibrated, { data: data,  iterations: 5, layers: ["conv"], inputs: "simulation", examples: 16 });
      assert.equal(own.options.inputs, "simulation");
      own.sim.dispose();
      calibrated.dispose();
    });
    sim.dispose();
    tf.dispose([images, tokens]);
    graph.dispose();
  });

  it("says what is wrong with the simulation, the layers or the hyper-parameters", async () => {
    const model = buildMixedModel();
    const graph = importLayersModel(model);
    model.dispose();
    const data = toDataset([tf.zeros([4, 10, 10, 3]), tf.zeros([4, 6], "int32")]);
    const sim = QuantSim.create(graph, { weights: { bitwidth: 4 } });
    const off = sim.with({ "*.kernel": { enabled: false }, "*_kernel": { enabled: false } });
    const reject = (s: QuantSim, options: Omit<Parameters<typeof adaround>[1], "data">, pattern: RegExp) => assert.rejects(adaround(s, { data, ...options }), pattern);
    await assertNoLeak("adaround errors", async () => {
      await reject(off, {}, /no enabled weight quantizer on a conv2d.*embed\.embeddings/);
      await reject(sim, { layers: ["nope"] }, /no layer or quantizer is named "nope".*layers AdaRound can optimize: conv, sep/);
      await reject(sim, { layers: ["flat"] }, /layer "flat" \(flatten\) has no weight quantizer/);
      await reject(sim, { layers: ["conv.output"] }, /"conv\.output" quantizes an activation, not a weight/);
      await reject(sim, { layers: ["embed"] }, /layer "embed" \(embedding\) is not supported: a lookup table/);
      await reject(off, { layers: ["conv"] }, /layer "conv" has its weight quantizer disabled \(conv\.kernel\) \(no layer has an enabled weight quantizer AdaRound supports\)/);
      await reject(sim.with({ "conv.kernel": { enabled: false } }), { layers: ["conv"] }, /layer "conv" has its weight quantizer disabled/);
      await reject(sim, { layers: ["conv", "conv.kernel"] }, /listed twice/);
      await reject(sim, { layers: [] }, /non-empty list/);
      await reject(sim, { iterations: -1 }, /invalid iterations: -1 \(expected an integer ≥ 0\)/);
      await reject(sim, { iterations: 2.5 }, /invalid iterations/);
      await reject(sim, { betaRange: [2, 20] }, /invalid betaRange: \[2,20\] \(expected a decreasing range/);
      await reject(sim, { betaRange: [20, 0] }, /invalid betaRange/);
      await reject(sim, { warmStart: 1 }, /invalid warmStart/);
      await reject(sim, { regularization: -0.1 }, /invalid regularization/);
      await reject(sim, { learningRate: 0 }, /invalid learningRate/);
      await reject(sim, { batchSize: 0 }, /invalid batchSize/);
      await reject(sim, { examples: 1.5 }, /invalid examples/);
      await reject(sim, { seed: 0.5 }, /invalid seed/);
      await reject(sim, { inputs: "fp32" as "simulation" }, /invalid inputs/);
      await reject(sim, { maxCacheMB: 1e-9, iterations: 1 }, /layer "conv" \(conv\.kernel\): one example's layer input and output take .* MB, more than maxCacheMB/);
    });
    for (const s of [sim, off]) s.dispose();
    graph.dispose();
  });

  it("defaults to AIMET's hyper-parameters; with 0 iterations it is rounding to nearest", async () => {
    const model = buildMixedModel();
    const graph = importLayersModel(model);
    model.dispose();
    const data = toDataset([tf.randomUniform([8, 10, 10, 3], 0, 1, "float32", 1), tf.zeros([8, 6], "int32")]);
    for (const [bits, iterations] of [[4, 15000], [8, 10000]]) {
      const sim = QuantSim.create(graph, { weights: { bitwidth: bits } });
      const { layers, ...defaults } = resolveAdaroundOptions(sim);
      assert.deepEqual(layers, ["conv.kernel", "sep.depthwise_kernel", "sep.pointwise_kernel", "conv1d.kernel", "per_step.kernel", "probs.kernel"]);
      assert.deepEqual(defaults, { iterations, regularization: 0.01, betaRange: [20, 2], warmStart: 0.2, learningRate: 1e-3, batchSize: 32, examples: 512, seed: 0, inputs: "weights-quantized", maxCacheMB: 256, curveEvery: iterations / 100 });
      // V starts at h(V) = frac(W/s): hard rounding without a step rounds to nearest (ties aside).
      const r = await adaround(sim, { data: data,  iterations: 0, examples: 8 });
      assert.ok(r.layers.every((l) => l.flippedShare === 0 && l.reconstructionAfter === l.reconstructionBefore), JSON.stringify(r.layers));
      assert.deepEqual(r.curve, []);
      r.sim.dispose();
      sim.dispose();
    }
    graph.dispose();
  });
});
