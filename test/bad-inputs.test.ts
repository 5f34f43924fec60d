import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync, spawnSync } from "child_process";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { PNG } from "pngjs";
import { sweepEnabled } from "../src/analysis/sweeps";
import { main } from "../src/cli/main";
import { toDataset } from "../src/data/dataset";
import { writeNpy } from "../src/data/npy";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { ROOT } from "./fixtures/models";
import { buildBlockModel } from "./fixtures/small-models";
import { saveModel } from "./fixtures/save-model";
import { randomizeWeights, setupBackend } from "./helpers";

/**
 * Every bad input the reliability probe found (issue 15), as a table: what is
 * given, and the message expected. Each case must also leave no tensor, no lock
 * and no output folder behind, and its message must hold no control character.
 */
interface Case {
  name: string;
  run: () => Promise<unknown>;
  expected: RegExp;
  /** Paths a case must never open or read (the weight-path escapes). */
  neverRead?: () => string[];
  then?: () => void;
}

const fsModule = require("fs") as typeof fs;

/** Runs `fn` while recording every path handed to fs's open and read calls. */
async function recordingReads<T>(fn: () => Promise<T>): Promise<{ result: Promise<T>; paths: string[] }> {
  const paths: string[] = [];
  const saved = { openSync: fsModule.openSync, readFileSync: fsModule.readFileSync };
  fsModule.openSync = ((p: fs.PathLike, ...rest: unknown[]) => (paths.push(String(p)), (saved.openSync as (...a: unknown[]) => number)(p, ...rest))) as typeof fs.openSync;
  fsModule.readFileSync = ((p: fs.PathOrFileDescriptor, ...rest: unknown[]) => (paths.push(String(p)), (saved.readFileSync as (...a: unknown[]) => unknown)(p, ...rest))) as typeof fs.readFileSync;
  try {
    const result = fn();
    await result.catch(() => undefined);
    return { result, paths };
  } finally {
    Object.assign(fsModule, saved);
  }
}

describe("bad inputs: each refused with a message that says what is wrong", function () {
  this.timeout(120000);
  let dir: string;
  let block: string;
  let dense: string;
  let x: string;
  let outs = 0;
  const out = () => path.join(dir, `out-${++outs}`);
  const run = (argv: string[]) => main(argv, () => undefined);
  /** A command line with working --data, --out (and --target) unless `extra` gives its own. */
  const command = (name: string, model: string, extra: string[], defaults: Record<string, string>) =>
    run([name, model, ...Object.entries(defaults).flatMap(([k, v]) => (extra.includes(`--${k}`) ? [] : [`--${k}`, v])), ...extra]);
  const quantize = (extra: string[], model = block) => command("quantize", model, extra, { data: x, out: out() });
  const debug = (extra: string[]) => command("debug", block, extra, { data: x, out: out(), target: "0.01" });
  const file = (name: string, content: string | Buffer) => {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    return p;
  };
  /** A copy of the dense model whose manifest (and folder) `edit` changes; returns its model.json. */
  const tampered = (name: string, edit: (json: { weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[] }, folder: string) => void) => {
    const folder = path.join(dir, "models", name);
    fs.cpSync(path.dirname(dense), folder, { recursive: true });
    const modelJson = path.join(folder, "model.json");
    const json = JSON.parse(fs.readFileSync(modelJson, "utf8"));
    edit(json, folder);
    fs.writeFileSync(modelJson, JSON.stringify(json));
    return modelJson;
  };
  const secret = () => path.join(dir, "outside", "secret.bin");

  before(async () => {
    await setupBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-bad-"));
    const model = buildBlockModel();
    randomizeWeights(model, 4);
    block = await saveModel(model, path.join(dir, "block"));
    model.dispose();
    const d = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [8], name: "d" })], name: "dense" });
    dense = await saveModel(d, path.join(dir, "dense"));
    d.dispose();
    const images = tf.randomUniform([8, 8, 8, 3], 0, 1, "float32", 3);
    x = path.join(dir, "x.npy");
    writeNpy(x, images.dataSync() as Float32Array, images.shape);
    images.dispose();
    writeNpy(path.join(dir, "y.npy"), Float32Array.from([0, 1, 7.5, 2, 3, 4, 0, 1]), [8]);
    writeNpy(path.join(dir, "x5.npy"), new Float32Array(20), [4, 5]);
    fs.mkdirSync(path.join(dir, "images"));
    fs.mkdirSync(path.join(dir, "models"));
    fs.mkdirSync(path.join(dir, "configs"));
    const png = new PNG({ width: 4, height: 4 });
    fs.writeFileSync(path.join(dir, "images", "a.png"), PNG.sync.write(png));
    // The secret a manifest tries to reach: exactly the size of the dense model's weights, so only the confinement refuses it.
    file("outside/secret.bin", Buffer.alloc(fs.statSync(path.join(dir, "dense", "weights.bin")).size));
    file("a-file.txt", "not a folder");
    file("analyze-out/results.json", "{}");
    file("analyze-out/qdebug-set.json", JSON.stringify({ command: "analyze", files: ["results.json"] }));
    file("foreign/notes.txt", "mine");
    fs.mkdirSync(path.join(dir, "busy"));
    file(".busy.qdebug-lock", `${process.pid}\n`);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const config = (name: string, content: unknown) => () => quantize(["--config", file(`configs/${name}`, typeof content === "string" || Buffer.isBuffer(content) ? content : JSON.stringify(content))]);

  const cases: Case[] = [
    // --out, checked before any model work.
    { name: "--out is an existing regular file", run: () => run(["analyze", block, "--data", x, "--out", path.join(dir, "a-file.txt")]), expected: /--out .*a-file\.txt is an existing file, not a folder/ },
    { name: "--out below a regular file", run: () => run(["analyze", block, "--data", x, "--out", path.join(dir, "a-file.txt", "sub")]), expected: /--out .*sub: .*a-file\.txt is a file, so no folder can be made there/ },
    { name: "--out under /proc", run: () => run(["analyze", block, "--data", x, "--out", "/proc/qdebug_out"]), expected: /--out \/proc\/qdebug_out is under \/proc, a virtual file system/ },
    { name: "--out under /sys", run: () => run(["debug", block, "--data", x, "--target", "0.01", "--out", "/sys/qdebug_out"]), expected: /--out \/sys\/qdebug_out is under \/sys/ },
    {
      name: "debug --out into an analyze folder",
      run: () => run(["debug", block, "--data", x, "--target", "0.01", "--out", path.join(dir, "analyze-out")]),
      expected: /--out .*analyze-out holds the output of qdebug analyze; debug keeps its files apart/,
      then: () => assert.deepEqual(fs.readdirSync(path.join(dir, "analyze-out")).sort(), ["qdebug-set.json", "results.json"], "analyze's files are untouched"),
    },
    { name: "--out is a folder of someone else's files", run: () => quantize(["--out", path.join(dir, "foreign")]), expected: /--out .*foreign is a folder holding other files \(notes\.txt\)/ },
    {
      name: "--out is being written by another run",
      run: () => quantize(["--out", path.join(dir, "busy")]),
      expected: /--out .*busy is being written by another qdebug run \(pid \d+\)/,
      then: () => assert.ok(fs.existsSync(path.join(dir, ".busy.qdebug-lock")), "the other run's lock is left alone"),
    },
    // Weight paths in model.json: refused before any read.
    {
      name: "weight path with ..",
      run: () => loadGraph(tampered("dotdot", (j) => (j.weightsManifest[0].paths = ["../../outside/secret.bin"]))),
      expected: /refused weight path "\.\.\/\.\.\/outside\/secret\.bin" in the weightsManifest of .*: "\.\." would leave the model's folder/,
      neverRead: () => [secret()],
    },
    { name: "absolute weight path /etc/passwd", run: () => loadGraph(tampered("passwd", (j) => (j.weightsManifest[0].paths = ["/etc/passwd"]))), expected: /refused weight path "\/etc\/passwd" .*: weight paths must be relative to the model's folder$/, neverRead: () => ["/etc/passwd"] },
    { name: "absolute weight path /dev/zero", run: () => loadGraph(tampered("zero", (j) => (j.weightsManifest[0].paths = ["/dev/zero"]))), expected: /refused weight path "\/dev\/zero" .*must be relative/, neverRead: () => ["/dev/zero"] },
    {
      name: "weight file linking outside the folder",
      run: () => loadGraph(tampered("link", (_, folder) => (fs.rmSync(path.join(folder, "weights.bin")), fs.symlinkSync(secret(), path.join(folder, "weights.bin"))))),
      expected: /refused weight path "weights\.bin" .*: it links outside the model's folder/,
      neverRead: () => [secret()],
    },
    {
      name: "weight file that is a fifo",
      run: () => loadGraph(tampered("fifo", (_, folder) => (fs.rmSync(path.join(folder, "weights.bin")), execFileSync("mkfifo", [path.join(folder, "weights.bin")])))),
      expected: /refused weight path "weights\.bin" .*: not a regular file/,
      neverRead: () => [path.join(dir, "models", "fifo", "weights.bin")],
    },
    { name: "weight shard shorter than the manifest", run: () => loadGraph(tampered("short", (_, folder) => fs.truncateSync(path.join(folder, "weights.bin"), 20))), expected: /weight shards of .* hold 20 bytes but the manifest describes 108/ },
    { name: "manifest dtype differs from the model's", run: () => loadGraph(tampered("dtype", (j) => (j.weightsManifest[0].weights[0].dtype = "int32"))), expected: /weight "d\/kernel" is int32 in the manifest but the model's variable is float32/ },
    { name: "manifest shape differs from the model's", run: () => loadGraph(tampered("shape", (j) => (j.weightsManifest[0].weights[0].shape = [3, 8]))), expected: /weight "d\/kernel" has shape \[3, 8\] in the manifest but \[8, 3\] in the model/ },
    {
      // TF.js has built (and keeps) the variables of the layers before the add when it fails there.
      name: "a topology that breaks after some layers were built",
      run: () => {
        const folder = path.join(dir, "models", "broken-add");
        fs.cpSync(path.dirname(block), folder, { recursive: true });
        const json = fs.readFileSync(path.join(folder, "model.json"), "utf8");
        const at = json.indexOf('"name":"pw"');
        fs.writeFileSync(path.join(folder, "model.json"), json.slice(0, at) + json.slice(at).replace('"filters":4', '"filters":5'));
        return loadGraph(path.join(folder, "model.json"));
      },
      expected: /TensorFlow\.js could not build the model: Operands could not be broadcast together with shapes \[8,8,4\] \[8,8,5\]/,
    },
    { name: "a layer class TF.js does not know", run: () => loadGraph(tampered("unknown-layer", (j) => Object.assign(j, JSON.parse(JSON.stringify(j).replace('"class_name":"Dense"', '"class_name":"Densely"'))))), expected: /layer class Densely is unknown to TensorFlow\.js/ },
    { name: "model.json is /dev/zero", run: () => run(["info", "/dev/zero"]), expected: /model file \/dev\/zero is not a regular file/ },
    // The config file, checked against schema/qdebug-config.schema.json.
    { name: "misspelled top-level config key", run: config("wieghts.json", { wieghts: { bitwidth: 4 } }), expected: /unknown key "wieghts" at the top level \(allowed: \$schema, weights, activations, biases, overrides, seed\)/ },
    { name: "misspelled setting", run: config("bitwdth.json", { weights: { bitwdth: 4 } }), expected: /unknown key "bitwdth" in weights \(allowed: bitwidth, scheme, perChannel, rounding, enabled, rangeMethod, percentile, range\)/ },
    { name: "misspelled setting in an override", run: config("override.json", { overrides: { "c*": { bitwdth: 4 } } }), expected: /unknown key "bitwdth" in overrides\["c\*"\] \(allowed: bitwidth/ },
    { name: "unknown key in a fixed range", run: config("range.json", { weights: { range: { min: 0, max: 1, mid: 0 } } }), expected: /unknown key "mid" in weights\.range \(allowed: min, max\)/ },
    { name: "fractional bit-width in the config", run: config("float-bits.json", { activations: { bitwidth: 7.5 } }), expected: /activations\.bitwidth must be an integer, got 7\.5/ },
    { name: "biases neither boolean nor settings", run: config("biases.json", { biases: "yes" }), expected: /biases must be a boolean or an object, got "yes"/ },
    { name: "binary config file", run: config("binary.json", Buffer.from([0x7b, 0x00, 0xff, 0xfe, 0x1b, 0x5b, 0x32, 0x4a])), expected: /quantization config .*binary\.json is not valid JSON: it holds binary data$/ },
    { name: "config file that is not JSON", run: config("text.json", "{ weights: 4 }"), expected: /quantization config .*text\.json is not valid JSON \(/ },
    { name: "config file that is /dev/zero", run: () => quantize(["--config", "/dev/zero"]), expected: /quantization config \/dev\/zero is not a regular file/ },
    // Every flag's range, with the flag named.
    { name: "--target 2 (a drop of 200 %)", run: () => debug(["--target", "2"]), expected: /--target is the largest acceptable drop from FP32 and must be from 0 to below 1 for the default metric \(accuracy or agreement\) \(0\.01 = 1 point\), got "2"/ },
    { name: "--target negative", run: () => debug(["--metric", "sqnr", "--target", "-1"]), expected: /--target .* must be ≥ 0, got "-1"/ },
    { name: "--max-raised -3", run: () => debug(["--max-raised", "-3"]), expected: /--max-raised must be a whole number ≥ 0, got "-3"/ },
    { name: "--w-bits 7.5", run: () => quantize(["--w-bits", "7.5"]), expected: /--w-bits must be a whole number from 2 to 32, got "7\.5"/ },
    { name: "--a-bits 1", run: () => quantize(["--a-bits", "1"]), expected: /--a-bits must be a whole number from 2 to 32, got "1"/ },
    { name: "--calib 0", run: () => quantize(["--calib", "0"]), expected: /--calib must be a whole number ≥ 1, got "0"/ },
    { name: "--batch-size 2.5", run: () => quantize(["--batch-size", "2.5"]), expected: /--batch-size must be a whole number ≥ 1, got "2\.5"/ },
    { name: "--eval empty", run: () => run(["analyze", block, "--data", x, "--out", out(), "--eval", ""]), expected: /--eval needs a value, got ""/ },
    { name: "--percentile 0", run: () => quantize(["--percentile", "0"]), expected: /--percentile must be a number in \(0, 100\], got "0"/ },
    { name: "--scheme unknown", run: () => quantize(["--scheme", "max"]), expected: /--scheme must be one of minmax, percentile, sqnr, mse, got "max"/ },
    { name: "--metric unknown", run: () => debug(["--metric", "top1"]), expected: /--metric must be one of accuracy, agreement, sqnr, mse, psnr, cosine, got "top1"/ },
    { name: "--granularity unknown", run: () => run(["analyze", block, "--data", x, "--out", out(), "--granularity", "node"]), expected: /--granularity must be layer or quantizer, got "node"/ },
    { name: "--backend unknown", run: () => quantize(["--backend", "gpu"]), expected: /--backend: invalid backend: "gpu"/ },
    { name: "-w 4 (one dash)", run: () => quantize(["-w", "4"]), expected: /unknown flag -w: flags start with two dashes \(flags: --per-channel, --data/ },
    { name: "a flag given twice", run: () => quantize(["--w-bits", "4", "--w-bits", "8"]), expected: /--w-bits is given twice/ },
    { name: "--per-channel with --no-per-channel", run: () => debug(["--per-channel", "--no-per-channel"]), expected: /--per-channel and --no-per-channel contradict each other/ },
    {
      name: "SOURCE_DATE_EPOCH that is not a number",
      run: async () => {
        process.env.SOURCE_DATE_EPOCH = "yesterday";
        try {
          return await quantize([]);
        } finally {
          delete process.env.SOURCE_DATE_EPOCH;
        }
      },
      expected: /SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01, got "yesterday"/,
    },
    // Data and messages.
    { name: "float class labels like 7.5", run: () => quantize(["--labels", path.join(dir, "y.npy")]), expected: /labels must be class indices \(whole numbers ≥ 0\); example 2 of the batch has 7\.5/ },
    { name: "an image folder for a model whose input is not an image", run: () => quantize(["--data", path.join(dir, "images")], dense), expected: /the model input "\w+" has shape \[\?, 8\]; images need \[batch, height, width, channels\]/ },
    { name: "data of the wrong shape", run: () => quantize(["--data", path.join(dir, "x5.npy")], dense), expected: /expected shape \[\?, 8\], got \[4, 5\]/ },
    {
      name: "evaluate() returning NaN on the FP32 model",
      run: async () => {
        const graph = await loadGraph(dense);
        const xs = tf.randomUniform([4, 8], 0, 1, "float32", 1);
        let sim: QuantSim | undefined;
        try {
          sim = await QuantSim.create(graph, {}).calibrate(toDataset(xs));
          return await sweepEnabled(sim, { evaluate: () => NaN });
        } finally {
          sim?.dispose();
          xs.dispose();
          graph.dispose();
        }
      },
      expected: /sweep-enabled: evaluate\(\) returned NaN on the FP32 model \(expected a finite number\)/,
    },
  ];

  for (const c of cases) {
    it(`${c.name}`, async () => {
      const tensors = tf.memory().numTensors;
      const before = new Set(fs.readdirSync(dir));
      const { result, paths } = await recordingReads(c.run);
      await assert.rejects(result, (err: Error) => {
        assert.match(err.message, c.expected);
        // eslint-disable-next-line no-control-regex
        assert.doesNotMatch(err.message, /[\u0000-\u0009\u000b-\u001f\u007f]/, "no control character in the message");
        return true;
      });
      assert.equal(tf.memory().numTensors, tensors, "every tensor made on the way is freed");
      assert.deepEqual(fs.readdirSync(dir).filter((f) => !before.has(f)), [], "no output folder, lock or staging folder is left behind");
      for (const p of c.neverRead?.() ?? []) assert.ok(!paths.includes(p), `${p} was opened`);
      c.then?.();
    });
  }

  it("--out problems fail in a fresh process in under a second, before any model work", () => {
    for (const bad of [path.join(dir, "a-file.txt"), "/proc/qdebug_out", path.join(dir, "analyze-out")]) {
      const started = Date.now();
      const r = spawnSync(process.execPath, [path.join(ROOT, "bin", "qdebug.js"), "debug", block, "--data", "mnist", "--target", "0.01", "--out", bad], { encoding: "utf8" });
      const ms = Date.now() - started;
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^qdebug: --out /);
      assert.ok(ms < 1000, `${bad}: ${ms} ms`);
      console.log(`      --out ${bad}: refused in ${ms} ms`);
    }
  });
});
