import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { Graph } from "../src/graph/graph";
import { importLayersModel } from "../src/graph/import-layers";
import { forward } from "../src/graph/forward";
import { QuantSim } from "../src/quant/quantsim";
import { exportEncodings, importEncodings, quantizerArgs } from "../src/quant/aimet-encodings";
import { fp32SanityCheck } from "../src/quant/sanity-check";
import { Encoding } from "../src/quant/encoding";
import { buildBlockModel } from "./fixtures/small-models";
import { assertNoLeak, randomizeWeights, setupBackend, sliceDataset } from "./helpers";

describe("quantization simulation", () => {
  let model: tf.LayersModel;
  let graph: Graph;
  let images: tf.Tensor;
  before(async () => {
    await setupBackend();
    model = buildBlockModel();
    randomizeWeights(model, 11);
    graph = importLayersModel(model);
    images = tf.randomUniform([24, 8, 8, 3], 0, 1, "float32", 5);
  });
  after(() => {
    graph.dispose();
    model.dispose();
    images.dispose();
  });

  it("places quantizers as runtimes fuse ops, with readable names", () => {
    const sim = QuantSim.create(graph);
    assert.deepEqual(sim.sites.map((s) => s.name), [
      "image.output",
      "c1.kernel",
      "r1.output",
      "dw.depthwise_kernel",
      "r2.output",
      "pw.kernel",
      "bn3.output",
      "r3.output",
      "gap.output",
      "fc.kernel",
      "fc.output",
    ]);
    const withBias = QuantSim.create(graph, { biases: true });
    assert.ok(withBias.sites.some((s) => s.name === "c1.bias" && s.kind === "bias"));
  });

  it("defaults like AIMET and applies overrides by glob and by name, later ones winning", () => {
    const sim = QuantSim.create(graph, { overrides: { "r*": { bitwidth: 16 }, "r2.output": { enabled: false }, pw: { perChannel: true } } });
    assert.equal(sim.settingsOf("c1.kernel").scheme, "symmetric");
    assert.equal(sim.settingsOf("c1.kernel").bitwidth, 8);
    assert.equal(sim.settingsOf("image.output").scheme, "asymmetric");
    assert.equal(sim.settingsOf("r1.output").bitwidth, 16);
    assert.equal(sim.settingsOf("r3.output").bitwidth, 16);
    assert.equal(sim.settingsOf("r2.output").enabled, false);
    assert.equal(sim.settingsOf("pw.kernel").perChannel, true);
  });

  it("rejects bad settings and unknown names with a clear error", () => {
    // The config is checked against the shipped schema first, so the messages name the key path.
    assert.throws(() => QuantSim.create(graph, { weights: { bitwidth: 7.5 } }), /weights\.bitwidth must be an integer, got 7\.5/);
    assert.throws(() => QuantSim.create(graph, { activations: { bitwidth: 33 } }), /activations\.bitwidth must be at most 32, got 33/);
    assert.throws(() => QuantSim.create(graph, { weights: { bitwidth: 1 } }), /weights\.bitwidth must be at least 2, got 1/);
    assert.throws(() => QuantSim.create(graph, { wieghts: { bitwidth: 4 } } as never), /unknown key "wieghts" at the top level \(allowed: .*weights/);
    assert.throws(() => QuantSim.create(graph, { overrides: { "no_such_layer.*": { bitwidth: 4 } } }), /override "no_such_layer\.\*" matches no quantizer/);
    assert.throws(() => QuantSim.create(graph, { activations: { rangeMethod: "best" as never } }), /activations\.rangeMethod must be one of minmax, percentile, sqnr, mse, got "best"/);
    assert.throws(() => QuantSim.create(graph).encodingOf("r1.output"), /calibrate the simulation first/);
  });

  it("calibrates, and its 8-bit forward is close to FP32 but not equal; nothing leaks", async () => {
    await assertNoLeak("calibrate + forward + dispose", async () => {
      const sim = await QuantSim.create(graph).calibrate(sliceDataset(images, 8));
      const enc = sim.encodingOf("r1.output") as Encoding;
      // ReLU6 outputs: the calibrated range starts at 0 and ends at most at 6.
      assert.equal(enc.min, 0);
      assert.ok(enc.max > 0 && enc.max <= 6 + 1e-6);
      const [q] = sim.forward(images);
      const [f] = forward(graph, images);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(q, f))).dataSync()[0]);
      assert.ok(diff > 0, "8-bit quantization changes the outputs");
      assert.ok(diff < 0.05, `8-bit outputs stay close to FP32 (max diff ${diff})`);
      tf.dispose([q, f]);
      sim.dispose();
    });
  });

  it("passes the FP32 sanity check: 32-bit within tolerance, bypassed exact", async () => {
    const sim = await QuantSim.create(graph).calibrate(sliceDataset(images, 8));
    const result = await assertNoLeak("sanity check", () => fp32SanityCheck(sim, { data: sliceDataset(images, 8) }));
    sim.dispose();
    assert.equal(result.pass, true, result.diagnosis);
    const [at32, bypassed] = result.checks;
    assert.equal(bypassed.maxAbsError, 0);
    assert.ok(at32.maxRelError < 1e-4 && at32.maxRelError > 0, `32-bit error ${at32.maxRelError}`);
    assert.equal(at32.top1Agreement, 1);
  });

  it("the sanity check can fail: a 32-bit simulation calibrated on other data clips", async () => {
    const sim = await QuantSim.create(graph).calibrate(sliceDataset(images, 8));
    const big = tf.mul(images, 4);
    const result = await fp32SanityCheck(sim, { data: sliceDataset(big, 8) });
    sim.dispose();
    big.dispose();
    assert.equal(result.pass, false);
    assert.equal(result.roundingNoise, false);
    const [at32, , opened] = result.checks;
    assert.equal(opened.variant, "32-bit, ranges opened", "beyond the tolerance, the check reruns with ranges opened");
    // Data 4 times the calibration data still overflows ranges opened to 3 times their width, but less.
    assert.ok(opened.maxRelError < at32.maxRelError && !opened.pass, `opening the ranges clips less: ${opened.maxRelError} vs ${at32.maxRelError}`);
    assert.match(result.diagnosis, /far outside the calibrated ranges/);
    // 1.5 times: the calibrated ranges clip, the opened ones hold everything.
    const sim2 = await QuantSim.create(graph).calibrate(sliceDataset(images, 8));
    const wider = tf.mul(images, 1.5);
    const clipped = await assertNoLeak("sanity check", () => fp32SanityCheck(sim2, { data: sliceDataset(wider, 8) }));
    sim2.dispose();
    wider.dispose();
    const [c32, , open] = clipped.checks;
    assert.deepEqual([clipped.pass, c32.pass, open.pass, clipped.roundingNoise], [false, false, true, false]);
    assert.ok(open.maxRelError < 1e-5 && c32.maxRelError > 1e-3, `clipped ${c32.maxRelError}, opened ${open.maxRelError}`);
    assert.match(clipped.diagnosis, /the calibrated ranges clip values/);
  });

  it("the sanity check tells float rounding from clipping: beyond the tolerance, opened ranges give the same error", async () => {
    const sim = await QuantSim.create(graph).calibrate(sliceDataset(images, 8));
    // A tolerance below float32's rounding: the 32-bit error exceeds it although nothing is clipped.
    const result = await assertNoLeak("sanity check", () => fp32SanityCheck(sim, { data: sliceDataset(images, 8), tolerance: 1e-12 }));
    sim.dispose();
    const [at32, bypassed, opened] = result.checks;
    assert.ok(at32.maxRelError > 1e-12 && at32.maxRelError < 1e-5, `32-bit error ${at32.maxRelError}`);
    assert.equal(opened.variant, "32-bit, ranges opened");
    assert.ok(opened.maxRelError > 0 && at32.maxRelError <= 2 * opened.maxRelError, `the same rounding noise: ${at32.maxRelError} vs ${opened.maxRelError}`);
    assert.ok(opened.sqnrDb !== null && opened.sqnrDb > 100, `opened SQNR ${opened.sqnrDb}`);
    assert.equal(bypassed.maxAbsError, 0);
    assert.deepEqual([result.roundingNoise, result.pass, at32.pass], [true, true, true]);
    assert.match(result.diagnosis, /sound.*nothing can be clipped/);
  });

  it("exports AIMET encodings and importing them reproduces the simulation exactly", async () => {
    const sim = await QuantSim.create(graph, { weights: { perChannel: true }, overrides: { "gap.output": { enabled: false } } }).calibrate(sliceDataset(images, 8));
    const file = exportEncodings(sim);
    assert.deepEqual(Object.keys(file.activation_encodings).sort(), ["bn3", "fc", "image", "r1", "r2", "r3"]);
    assert.equal(file.param_encodings["c1/kernel"].length, 4, "per-channel: one entry per output channel");
    // Keys and values as AIMET's extract_global_quantizer_args writes them.
    assert.deepEqual(file.quantizer_args, { activation_bitwidth: 8, param_bitwidth: 8, dtype: "int", is_symmetric: true, per_channel_quantization: true, quant_scheme: "post_training_tf" });
    const other = QuantSim.create(graph, { weights: { bitwidth: 4, scheme: "asymmetric" }, activations: { bitwidth: 16, rangeMethod: "sqnr" } });
    assert.deepEqual(quantizerArgs(other), { activation_bitwidth: 16, param_bitwidth: 4, dtype: "int", is_symmetric: false, per_channel_quantization: false, quant_scheme: "post_training_tf_enhanced" });
    other.dispose();
    const entry = file.activation_encodings.r1[0];
    assert.deepEqual(Object.keys(entry).sort(), ["bitwidth", "dtype", "is_symmetric", "max", "min", "offset", "scale"]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-enc-"));
    const jsonPath = path.join(dir, "encodings.json");
    fs.writeFileSync(jsonPath, JSON.stringify(file));
    const fresh = importEncodings(QuantSim.create(graph), jsonPath);
    const [a] = sim.forward(images);
    const [b] = fresh.forward(images);
    assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
    assert.equal(fresh.settingsOf("gap.output").enabled, false);
    tf.dispose([a, b]);
    sim.dispose();
    fresh.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("frozen weights replace rounding to nearest while their bit-width holds; withGraph keeps the settings", async () => {
    await assertNoLeak("frozen weights", async () => {
      const sim = (await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(sliceDataset(images, 8))).with({ "**.output": { enabled: false } });
      const name = sim.sites.find((s) => s.kind === "weight")!.name;
      const site = sim.sites.find((s) => s.name === name)!;
      const enc = sim.encodingOf(name) as Encoding;
      const w = graph.node(site.node).params[site.param!];
      // Move every value one grid step up (clamped): a visibly different choice on the same grid.
      const values = tf.tidy(() => {
        const q = tf.clipByValue(tf.add(tf.round(tf.div(w, enc.scale)), 1), enc.offset, enc.offset + enc.numSteps);
        return tf.mul(q, enc.scale).dataSync() as Float32Array;
      });
      const frozen = sim.withFrozenWeights(new Map([[name, { encoding: enc, values, shape: [...w.shape] }]]));
      assert.ok(frozen.frozenWeightOf(name));
      const [a] = sim.forward(images);
      const [b] = frozen.forward(images);
      const frozen8 = frozen.with({ [name]: { bitwidth: 8 } });
      const sim8 = sim.with({ [name]: { bitwidth: 8 } });
      const [c] = frozen8.forward(images);
      const [d] = sim8.forward(images);
      const diff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]);
      assert.ok(diff(a, b) > 1e-3, "the frozen values are used");
      assert.equal(diff(c, d), 0, "another bit-width ignores them");
      assert.equal(frozen8.frozenWeightOf(name), undefined);
      assert.throws(() => sim.withFrozenWeights(new Map([[name, { encoding: enc, values: values.slice(1), shape: [...w.shape] }]])), /shape/);
      // Same settings on another graph with the same names: same encodings for weights, not calibrated.
      const moved = sim.withGraph(graph);
      assert.equal(moved.calibrated, false);
      assert.deepEqual(moved.encodingOf(name), enc);
      assert.equal(sim.withGraph(graph, { keepStats: true }).calibrated, true);
      tf.dispose([a, b, c, d]);
      sim.dispose();
      for (const x of [frozen, frozen8, sim8, moved]) x.dispose();
    });
  });

  it("changing a bit-width reuses calibration statistics", async () => {
    const sim = await QuantSim.create(graph).calibrate(sliceDataset(images, 8));
    const low = sim.with({ "**": { bitwidth: 4 } });
    const e8 = sim.encodingOf("r1.output") as Encoding;
    const e4 = low.encodingOf("r1.output") as Encoding;
    assert.equal(e4.bitwidth, 4);
    assert.ok(Math.abs(e4.scale * 15 - e8.scale * 255) < 1e-6, "same range, coarser grid");
    sim.dispose();
    low.dispose();
  });

  it("calibration errors: an empty dataset, NaN met in an activation", async () => {
    const empty = { name: "empty", batches: async function* () {} };
    await assert.rejects(QuantSim.create(graph).calibrate(empty as never), /empty/);
    const broken = importLayersModel(model);
    const kernel = broken.node("pw").params.kernel;
    const nan = tf.fill(kernel.shape, NaN);
    (broken.node("pw").params as Record<string, tf.Tensor>).kernel = nan;
    kernel.dispose();
    await assert.rejects(QuantSim.create(broken, { weights: { enabled: false } }).calibrate(sliceDataset(images, 8)), /quantizer "bn3.output".*NaN/);
    broken.dispose();
  });
});
