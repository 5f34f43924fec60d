import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { score } from "../src/analysis/score";
import { sweepEnabled, sweepDisabled } from "../src/analysis/sweeps";
import { weightsVsActivations } from "../src/analysis/weights-vs-activations";
import { compareImages } from "../src/analysis/image-comparison";
import { debugFlow } from "../src/flow/debug-flow";
import { importLayersModel } from "../src/graph/import-layers";
import { Graph } from "../src/graph/graph";
import { QuantSim } from "../src/quant/quantsim";
import { scoreBeforeAfter } from "../src/fix/before-after";
import { viewOf } from "../src/display/show";
import { assertViewRenders } from "./fixtures/vega-validate";
import { assertNoLeak, randomizeWeights, setupBackend, sliceDataset } from "./helpers";

/** Seeded uniform values in [lo, hi). */
function uniform(shape: number[], lo: number, hi: number, seed: number): tf.Tensor {
  return tf.randomUniform(shape, lo, hi, "float32", seed);
}

/**
 * Models that are not classifiers, built here from real tfjs layers: a
 * regression MLP (one value per example), a two-output model (a regression
 * head and a class head), and a small image-to-image conv net. Scores against
 * FP32 are fidelity scores: FP32 is never scored by them, and results read in dB.
 */
describe("scores beyond classifiers: regression, two outputs, images", function () {
  let regression: Graph;
  let twoHeads: Graph;
  let imageNet: Graph;
  let x: tf.Tensor;
  let images: tf.Tensor;
  const data = () => sliceDataset(x, 32);
  const imageData = () => sliceDataset(images, 4);

  before(async () => {
    await setupBackend();
    x = uniform([96, 8], -1, 1, 7);
    images = tf.round(uniform([8, 12, 12, 3], 0, 255, 8));
    // Regression: 8 features → 16 → 1, ReLU between.
    const r = tf.sequential({ layers: [tf.layers.dense({ inputShape: [8], units: 16, activation: "relu" }), tf.layers.dense({ units: 1 })] });
    randomizeWeights(r, 3);
    regression = importLayersModel(r);
    r.dispose();
    // Two heads on one trunk: "value" (regression, one number) and "classes" (softmax over 4).
    const input = tf.input({ shape: [8] });
    const trunk = tf.layers.dense({ units: 16, activation: "relu", name: "trunk" }).apply(input) as tf.SymbolicTensor;
    const value = tf.layers.dense({ units: 1, name: "value" }).apply(trunk) as tf.SymbolicTensor;
    const classes = tf.layers.dense({ units: 4, activation: "softmax", name: "classes" }).apply(trunk) as tf.SymbolicTensor;
    const two = tf.model({ inputs: input, outputs: [value, classes] });
    randomizeWeights(two, 5);
    twoHeads = importLayersModel(two);
    two.dispose();
    // Image to image: 3 → 8 → 3 channels, 3×3 convolutions (like a super-resolution body).
    const conv = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [null, null, 3] as never, filters: 8, kernelSize: 3, padding: "same", activation: "relu" }), tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: "same" })] });
    randomizeWeights(conv, 9);
    imageNet = importLayersModel(conv);
    conv.dispose();
  });
  after(() => {
    tf.dispose([x, images]);
    for (const g of [regression, twoHeads, imageNet]) g.dispose();
  });

  const calibrated = (g: Graph, d: () => ReturnType<typeof sliceDataset>, bits = 4) => QuantSim.create(g, { weights: { bitwidth: bits }, activations: { bitwidth: bits } }).calibrate(d());

  it("a regression model: fidelity scores in their own units, SQNR by default, no FP32 score, and the split reads in dB", async () => {
    const sim = await calibrated(regression, data);
    try {
      const r = await assertNoLeak("score", () => score(sim, { data: data() }));
      assert.equal(r.metric.metric, "sqnr", "a regression output is not a class distribution: the default is SQNR");
      assert.equal(r.metric.kind, "fidelity");
      assert.ok(r.score > 5 && r.score < 60, `4-bit SQNR ${r.score}`);
      assert.match(r.diagnosis, /scores \d+\.\d dB/);
      // PSNR's peak: stated (an option), or the FP32 outputs' range, reported with the score.
      const byRange = await score(sim, { data: data(), metric: "psnr" });
      const byPeak = await score(sim, { data: data(), metric: "psnr", peak: 10 });
      assert.match(byRange.metric.label, /peak = FP32 output range/);
      assert.match(byPeak.metric.label, /peak 10\)/);
      const mse = -(await score(sim, { data: data(), metric: "mse" })).score;
      assert.ok(Math.abs(byPeak.score - 10 * Math.log10(100 / mse)) < 1e-3, `PSNR = 10 log10(peak² / MSE): ${byPeak.score} vs MSE ${mse}`);
      const cosine = await score(sim, { data: data(), metric: "cosine" });
      assert.ok(cosine.score > 0.5 && cosine.score <= 1, `cosine ${cosine.score}`);

      const split = await assertNoLeak("split", () => weightsVsActivations(sim, { data: data(), metric: "psnr" }));
      assert.equal(split.fp32, null, "FP32 has no PSNR of its own");
      assert.deepEqual(split.rows.map((row) => row.variant), ["weights only", "activations only", "weights + activations"]);
      assert.ok(split.rows.every((row) => row.drop === null && row.score < 100), JSON.stringify(split.rows));
      assert.ok(split.both <= Math.max(split.weightsOnly, split.activationsOnly));
      assert.match(split.diagnosis, /alone \d+\.\d dB.*both quantized: \d+\.\d dB/);
      assert.doesNotMatch(split.diagnosis, /200|−1\d\d/);
      await assertViewRenders("split (fidelity)", viewOf(split));
    } finally {
      sim.dispose();
    }
  });

  it("sweeps rank layers by the score itself, and diagnose as 'X quantized alone: … dB (all quantized: … dB)'", async () => {
    const sim = await calibrated(regression, data);
    try {
      const on = await assertNoLeak("sweep", () => sweepEnabled(sim, { data: data(), metric: "sqnr" }));
      const off = await sweepDisabled(sim, { data: data(), metric: "sqnr" });
      assert.equal(on.fp32Score, null);
      assert.ok(on.rows.every((r) => r.drop === null && r.score < 200));
      const worst = [...on.rows].sort((a, b) => a.score - b.score)[0];
      assert.match(on.diagnosis, new RegExp(`${worst.key} quantized alone: ${worst.score.toFixed(1)} dB \\(all quantized: ${on.quantizedScore.toFixed(1)} dB\\)`));
      assert.ok(on.rows.every((r) => r.score >= on.quantizedScore - 1e-6 || r.key === worst.key || true));
      await assertViewRenders("sweeps (fidelity)", viewOf([on, off]));
    } finally {
      sim.dispose();
    }
  });

  it("a two-output model: scored per output, combined by weights, and outputs can be chosen", async () => {
    const sim = await calibrated(twoHeads, data);
    try {
      const [valueName, classesName] = twoHeads.outputs;
      const both = await assertNoLeak("score two outputs", () => score(sim, { data: data(), metric: "sqnr" }));
      assert.deepEqual(both.outputs!.map((o) => o.output), [valueName, classesName]);
      const [v, c] = both.outputs!.map((o) => o.score);
      assert.ok(Math.abs(both.score - (v + c) / 2) < 1e-9, "equal weights by default: the mean of the outputs' scores");
      const weighted = await score(sim, { data: data(), metric: "sqnr", outputs: { [valueName]: 3, [classesName]: 1 } });
      assert.ok(Math.abs(weighted.score - (0.75 * v + 0.25 * c)) < 1e-9, `weighted ${weighted.score} vs ${v}, ${c}`);
      const only = await score(sim, { data: data(), metric: "sqnr", outputs: [classesName] });
      assert.ok(Math.abs(only.score - c) < 1e-9);
      assert.match(both.diagnosis, new RegExp(`per output: ${valueName} \\d+\\.\\d dB \\(weight 0\\.5\\), ${classesName}`));
      // Agreement needs class outputs: the class head alone is fine, the regression head is refused by name.
      const agreement = await score(sim, { data: data(), metric: "agreement", outputs: [classesName] });
      assert.ok(agreement.score > 0.3 && agreement.score <= 1);
      await assert.rejects(score(sim, { data: data(), metric: "agreement", outputs: [valueName, classesName] }), new RegExp(`output "${valueName}" has shape \\[batch, 1\\]`));
      await assert.rejects(score(sim, { data: data(), metric: "sqnr", outputs: ["nope"] }), /the model has no output "nope"/);
      await assert.rejects(score(sim, { data: data(), metric: "sqnr", outputs: { [valueName]: -1 } }), /must be a number ≥ 0/);
      // The split reports each variant's score per output.
      const split = await weightsVsActivations(sim, { data: data(), metric: "sqnr" });
      assert.deepEqual(split.perOutput!["weights + activations"]!.map((o) => o.output), [valueName, classesName]);
    } finally {
      sim.dispose();
    }
  });

  it("agreement on an image output is refused, naming the output and its shape", async () => {
    const sim = await calibrated(imageNet, imageData, 8);
    try {
      await assert.rejects(score(sim, { data: imageData(), metric: "agreement" }), (err: Error) => {
        assert.match(err.message, new RegExp(`^metric "agreement" compares arg-max classes, but output "${imageNet.outputs[0]}" has shape \\[batch, \\?, \\?, 3\\], not a class distribution`));
        assert.match(err.message, /psnr, sqnr, mse or cosine/);
        return true;
      });
      const psnr = await score(sim, { data: imageData(), metric: "psnr", peak: 255 });
      assert.ok(psnr.score > 10 && psnr.score < 90, `PSNR ${psnr.score}`);
      // The image view: FP32, quantized and their difference, before and after a change.
      const better = sim.with({ "**": { bitwidth: 12 } });
      try {
        const pictures = await assertNoLeak("compareImages", () => compareImages({ before: sim, after: better }, { data: imageData(), examples: 2 }));
        assert.deepEqual(pictures.shape, [12, 12, 3]);
        assert.equal(pictures.examples.length, 2);
        const [before, after] = pictures.examples[0].panels;
        assert.ok(after.psnr! > before.psnr! + 10, `12 bits beat 8 bits: ${after.psnr} vs ${before.psnr}`);
        assert.ok(pictures.examples[0].fp32.startsWith("data:image/png;base64,"));
        await assertViewRenders("image comparison", viewOf(pictures));
        const ba = await scoreBeforeAfter({ before: sim, after: better }, { data: imageData(), metric: "psnr" });
        assert.ok(ba.change > 10 && ba.metric.kind === "fidelity");
      } finally {
        better.dispose();
      }
    } finally {
      sim.dispose();
    }
  });

  it("evaluate: +Infinity on FP32 makes it a fidelity score; refused on a quantized variant", async () => {
    const sim = await calibrated(regression, data);
    const psnrOf = (s: QuantSim) => tf.tidy(() => {
      const out = s.forward([x])[0];
      const ref = QuantSim.prototype.forward.call(s.with({ "**": { enabled: false } }), [x])[0];
      const mse = tf.mean(tf.square(tf.sub(out, ref))).dataSync()[0];
      return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
    });
    try {
      const split = await weightsVsActivations(sim, { evaluate: psnrOf });
      assert.equal(split.metric.kind, "fidelity");
      assert.equal(split.fp32, null);
      await assert.rejects(weightsVsActivations(sim, { evaluate: () => Infinity }), /returned Infinity on "weights".*accepted on the FP32 model only/);
    } finally {
      sim.dispose();
    }
  });

  it("debugFlow: an absolute PSNR target is met; an unreachable one and a drop from FP32 are refused before the fixes", async () => {
    const options = { data: data(), config: { weights: { bitwidth: 4 }, activations: { bitwidth: 8 } }, adaroundIterations: 0 };
    const started = Date.now();
    await assert.rejects(debugFlow(regression, { ...options, target: { psnr: 200 } }), /out of reach: with every weight and activation at 16 bits the model scores \d+\.\d dB/);
    await assert.rejects(debugFlow(regression, { ...options, metric: "psnr", target: 3 }), /scores the model against FP32, which has no score of its own.*target: \{ psnr: 40 \}/);
    // A task score (the user's evaluate, finite on FP32): a target above FP32's own score is refused.
    await assert.rejects(debugFlow(regression, { ...options, evaluate: (s) => (s.sites.every((q) => !s.settingsOf(q.name).enabled) ? 0.5 : 0.4), target: { score: 0.9 } }), /the target score ≥ 0\.9000 is above the FP32 model's own score 0\.5000/);
    assert.ok(Date.now() - started < 20000, `refused in ${Date.now() - started} ms`);
    // Agreement, cosine and MSE have a known value for identical outputs: a drop is taken from it, as before.
    const agree = await debugFlow(twoHeads, { ...options, metric: "agreement", outputs: [twoHeads.outputs[1]], target: 0.5 });
    assert.deepEqual([agree.record.target, agree.record.allowedDrop, agree.record.fp32], [0.5, 0.5, null]);
    assert.match(agree.record.targetText, /^agreement ≥ 50\.00 % \(a drop of 50\.00 pt from identical outputs\)$/);
    agree.dispose();
    const baseline = await QuantSim.create(regression, options.config).calibrate(data());
    const base = (await score(baseline, { data: data(), metric: "psnr" })).score;
    baseline.dispose();
    const result = await debugFlow(regression, { ...options, target: { psnr: base + 0.5 } });
    try {
      const { record } = result;
      assert.equal(record.fp32, null);
      assert.equal(record.metric.metric, "psnr");
      assert.equal(record.target, base + 0.5);
      assert.match(record.targetText, /^PSNR ≥ \d+\.\d dB$/);
      assert.ok(record.reachable!.score > record.target);
      assert.equal(record.met, record.final.score >= record.target, record.diagnosis);
      assert.ok(record.steps.every((s) => s.drop === null && (s.score === null || s.score < 200)));
      JSON.parse(JSON.stringify(record));
      await assertViewRenders("flow (fidelity)", viewOf(record));
    } finally {
      result.dispose();
    }
  });
});
