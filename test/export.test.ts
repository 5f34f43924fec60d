import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { exportQuantizedModel, ExportResult } from "../src/export/tfjs-quantized";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { Graph } from "../src/graph/graph";
import { loadGraph } from "../src/graph/load-model";
import { importLayersModel } from "../src/graph/import-layers";
import { loadMnist } from "../src/data/mnist";
import { Encoding } from "../src/quant/encoding";
import { fakeQuant } from "../src/quant/fake-quant";
import { QuantSim } from "../src/quant/quantsim";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, randomizeWeights, setupBackend } from "./helpers";

interface ModelFile {
  modelTopology: { config: { layers: { name: string; class_name: string; config: Record<string, unknown>; inbound_nodes: unknown }[] } };
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, "utf8")) as ModelFile;

/** An IOHandler reading model.json and its shards from disk, so the real tf.loadLayersModel decodes the manifest. */
function fileHandler(modelJson: string): tf.io.IOHandler {
  return {
    load: async () =>
      tf.io.getModelArtifactsForJSON(JSON.parse(fs.readFileSync(modelJson, "utf8")) as tf.io.ModelJSON, async (manifest) => {
        const shards = manifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelJson), p))));
        const data = Buffer.concat(shards);
        return [manifest.flatMap((g) => g.weights), data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer];
      }),
  };
}

/** Equal value by value, up to the sign of zero (q·scale + min cannot write −0). */
function assertSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const bad = Array.from(actual).findIndex((v, i) => v !== expected[i]);
  assert.equal(bad, -1, `${what}: value ${bad} is ${actual[bad]}, expected ${expected[bad]}`);
}

const maxRelDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0]);

/** The simulation's quantized value of one weight, as the export must write it. */
function simWeight(sim: QuantSim, node: string, param: string): Float32Array {
  const enc = sim.encodingOf(`${node}.${param}`)!;
  return tf.tidy(() => fakeQuant(sim.graph.node(node).params[param], enc).dataSync() as Float32Array);
}

describe("exportQuantizedModel (TF.js layers model, quantized weights)", () => {
  let root: string;
  let original: Graph;
  let folded: Graph;
  let cle: ReturnType<typeof crossLayerEqualization>;
  let images: tf.Tensor;

  before(async () => {
    await setupBackend();
    root = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-export-"));
    original = await loadGraph(EXAMPLE_MODEL);
    folded = foldBatchNorms(original).graph;
    cle = crossLayerEqualization(folded);
    const mnist = loadMnist("mnist", { limit: 64 });
    images = tf.tensor4d(mnist.images, mnist.shape);
  });

  after(() => {
    tf.dispose(images);
    cle?.graph.dispose();
    folded?.dispose();
    original?.dispose();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  /** Exports, loads the result with tf.loadLayersModel and compares its predictions with the sim's. */
  async function exportAndCompare(sim: QuantSim, dir: string, options = {}): Promise<{ result: ExportResult; diff: number; loaded: tf.LayersModel }> {
    const result = await assertNoLeak(`export to ${dir}`, () => exportQuantizedModel(sim, EXAMPLE_MODEL, path.join(root, dir), options));
    const loaded = await tf.loadLayersModel(fileHandler(result.modelJson));
    // Outside any tidy: the sim keeps the quantized weights it makes on first use.
    const [expected] = sim.forward(images);
    const diff = tf.tidy(() => maxRelDiff(loaded.predict(images) as tf.Tensor, expected));
    expected.dispose();
    return { result, diff, loaded };
  }

  it("writes hand-computed codes: q = round(w/Δ) − offset, scale Δ, min offset·Δ (Sequential source, float32 bias)", async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [2], name: "d" })] });
    const kernel = tf.tensor2d([[0.3, -0.7], [1.1, 2.0]]);
    const bias = tf.tensor1d([0.25, -1]);
    model.getLayer("d").setWeights([kernel, bias]);
    tf.dispose([kernel, bias]);
    const graph = importLayersModel(model);
    // 8-bit symmetric, Δ = 0.01: grid [-1.28, 1.27]; 2.0 clamps to 1.27.
    const enc: Encoding = { bitwidth: 8, scheme: "symmetric", min: -1.28, max: 1.27, scale: 0.01, offset: -128, numSteps: 255 };
    const sim = QuantSim.create(graph).with({ "**.output": { enabled: false } }).withEncodings(new Map([["d.kernel", enc]]));
    const result = await assertNoLeak("export of a Sequential", () => exportQuantizedModel(sim, model, path.join(root, "hand")));
    const bin = fs.readFileSync(result.weightsFiles[0]);
    // 0.3 → 30 + 128, −0.7 → −70 + 128, 1.1 → 110 + 128, 2.0 → clamp(200, 127) + 128; then the bias as 2 float32.
    assert.deepEqual([...bin.subarray(0, 4)], [158, 58, 238, 255]);
    assert.equal(bin.byteLength, 4 + 8);
    assert.deepEqual([...new Float32Array(bin.buffer.slice(bin.byteOffset + 4, bin.byteOffset + 12))], [0.25, -1]);
    const spec = readJson(result.modelJson).weightsManifest[0].weights.find((w) => w.name === "d/kernel")!;
    assert.deepEqual(spec.quantization, { dtype: "uint8", scale: Math.fround(0.01), min: -128 * Math.fround(0.01) });
    const [k, b] = result.weights;
    assert.deepEqual([k.name, k.quantizer, k.dtype, k.exactGrid, b.name, b.quantizer, b.dtype], ["d/kernel", "d.kernel", "uint8", true, "d/bias", null, "float32"]);
    assert.deepEqual(result.bytes, { float32: 24, quantized: 12 });
    // TF.js decodes exactly the simulation's values.
    const loaded = await tf.loadLayersModel(fileHandler(result.modelJson));
    const decoded = loaded.getLayer("d").getWeights()[0].dataSync();
    assertSameValues(decoded, simWeight(sim, "d", "kernel"), "d/kernel");
    assert.deepEqual([...decoded], [30, -70, 110, 127].map((q) => Math.fround(q * Math.fround(0.01))));
    loaded.dispose();

    // uint16 storage on request; a 12-bit grid is uint16 anyway; an 8-bit bias quantizer makes the bias uint8.
    const wide = await exportQuantizedModel(sim, model, path.join(root, "hand-uint16"), { dtype: "uint16" });
    const wideBin = fs.readFileSync(wide.weightsFiles[0]);
    assert.deepEqual([0, 2, 4, 6].map((i) => wideBin.readUInt16LE(i)), [158, 58, 238, 255]);
    assert.equal(wideBin.byteLength, 8 + 8);
    const sim12 = QuantSim.create(graph, { weights: { bitwidth: 12 }, biases: { bitwidth: 8 } }).with({ "**.output": { enabled: false } });
    const r12 = await assertNoLeak("12-bit export", () => exportQuantizedModel(sim12, model, path.join(root, "hand-12bit")));
    assert.deepEqual(r12.weights.map((w) => [w.name, w.dtype, w.bitwidth, w.exactGrid]), [["d/kernel", "uint16", 12, true], ["d/bias", "uint8", 8, true]]);
    const loaded12 = await tf.loadLayersModel(fileHandler(r12.modelJson));
    assertSameValues(loaded12.getLayer("d").getWeights()[0].dataSync(), simWeight(sim12, "d", "kernel"), "12-bit kernel");
    assertSameValues(loaded12.getLayer("d").getWeights()[1].dataSync(), simWeight(sim12, "d", "bias"), "8-bit bias");
    loaded12.dispose();
    [sim, sim12].forEach((s) => s.dispose());
    graph.dispose();
    model.dispose();
  });

  it("a layer called twice is written once; a model without folding keeps its layers as they were", async () => {
    const x = tf.input({ shape: [4], name: "x" });
    const shared = tf.layers.dense({ units: 4, activation: "relu", name: "shared", kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) });
    const y = shared.apply(shared.apply(x)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: y, name: "twice" });
    const graph = importLayersModel(model);
    assert.deepEqual(graph.nodes.map((n) => n.name), ["x", "shared", "shared_call1"]);
    const sim = QuantSim.create(graph).with({ "**.output": { enabled: false } });
    const result = await assertNoLeak("shared-layer export", () => exportQuantizedModel(sim, model, path.join(root, "shared")));
    assert.deepEqual(result.weights.map((w) => [w.name, w.dtype]), [["shared/kernel", "uint8"], ["shared/bias", "float32"]]);
    assert.deepEqual(result.topologyChanges, []);
    const loaded = await tf.loadLayersModel(fileHandler(result.modelJson));
    const input = tf.randomNormal([5, 4], 0, 1, "float32", 3);
    const [expected] = sim.forward(input);
    const actual = loaded.predict(input) as tf.Tensor;
    assert.ok(maxRelDiff(actual, expected) <= 1e-6, `shared layer: ${maxRelDiff(actual, expected)}`);
    tf.dispose([input, expected, actual]);
    loaded.dispose();
    sim.dispose();
    graph.dispose();
    model.dispose();
    shared.dispose(); // tfjs-layers keeps a reference per call: model.dispose() dropped one of two
  });

  it("a BatchNorm folded into the layer it feeds (after a ReLU) is dropped and its reader rewired", async () => {
    const x = tf.input({ shape: [6, 6, 2], name: "img" });
    let y = tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: "relu", name: "c1" }).apply(x) as tf.SymbolicTensor;
    y = tf.layers.batchNormalization({ name: "bn" }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.conv2d({ filters: 2, kernelSize: 1, useBias: false, name: "c2" }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: y, name: "bn_before" });
    randomizeWeights(model, 4);
    const graph = importLayersModel(model);
    const fold = foldBatchNorms(graph);
    assert.deepEqual(fold.folded.map((f) => f.position), ["before"]);
    const sim = QuantSim.create(fold.graph).with({ "**.output": { enabled: false } });
    const result = await assertNoLeak("BN-before export", () => exportQuantizedModel(sim, model, path.join(root, "bn-before")));
    assert.ok(result.topologyChanges.some((c) => /bn: dropped/.test(c)), result.topologyChanges.join("; "));
    const loaded = await tf.loadLayersModel(fileHandler(result.modelJson));
    const input = tf.randomUniform([3, 6, 6, 2], 0, 1, "float32", 2);
    const [expected] = sim.forward(input);
    const actual = loaded.predict(input) as tf.Tensor;
    assert.ok(maxRelDiff(actual, expected) <= 1e-5, `BN before c2: ${maxRelDiff(actual, expected)}`);
    tf.dispose([input, expected, actual]);
    loaded.dispose();
    sim.dispose();
    fold.graph.dispose();
    graph.dispose();
    model.dispose();
  });

  for (const bitwidth of [8, 4]) {
    it(`example model, BN folded + CLE, W${bitwidth} per tensor: TF.js loads it, predictions match the sim, kernels uint8 (4x smaller)`, async () => {
      const sim = QuantSim.create(cle.graph, { weights: { bitwidth } }).with({ "**.output": { enabled: false } });
      const { result, diff, loaded } = await exportAndCompare(sim, `w${bitwidth}`);
      assert.ok(diff <= 1e-5, `exported vs sim: max relative difference ${diff}`);

      const file = readJson(result.modelJson);
      const specs = file.weightsManifest[0].weights;
      const kernels = specs.filter((w) => /\/(kernel|depthwise_kernel)$/.test(w.name));
      assert.equal(kernels.length, 18);
      assert.ok(kernels.every((w) => w.quantization?.dtype === "uint8"), "every kernel is uint8");
      assert.ok(specs.filter((w) => w.name.endsWith("/bias")).every((w) => w.quantization === undefined), "biases stay float32");
      const kernelRows = result.weights.filter((w) => /\/(kernel|depthwise_kernel)$/.test(w.name));
      const kernelValues = kernels.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
      assert.equal(kernelRows.reduce((s, w) => s + w.bytes, 0), kernelValues, "kernels: 1 byte a value instead of float32's 4");
      assert.ok(kernelRows.every((w) => w.exactGrid && w.bitwidth === bitwidth && w.maxError === 0));
      assert.equal(fs.statSync(result.weightsFiles[0]).size, result.bytes.quantized);

      // Topology: BatchNorms gone, biases added, the ReLU6s CLE replaced are ReLUs.
      const layers = file.modelTopology.config.layers;
      assert.equal(layers.filter((l) => l.class_name === "BatchNormalization").length, 0);
      assert.equal(layers.length, 53 - 17);
      assert.equal(layers.find((l) => l.name === "Conv1")!.config.use_bias, true);
      const relus = layers.filter((l) => l.class_name === "ReLU");
      assert.deepEqual(relus.filter((l) => l.config.max_value === null).map((l) => l.name).sort(), [...cle.relu6Replaced].sort());
      assert.ok(relus.filter((l) => !cle.relu6Replaced.includes(l.name)).every((l) => l.config.max_value === 6));
      assert.equal(result.topologyChanges.filter((c) => c.includes("dropped")).length, 17);

      // Decoded weights are the sim's, bit for bit; 4-bit codes stay within 0..15.
      for (const layer of ["Conv1", "block_3_depthwise", "predictions"]) {
        const param = layer.includes("depthwise") ? "depthwise_kernel" : "kernel";
        assertSameValues(loaded.getLayer(layer).getWeights()[0].dataSync(), simWeight(sim, layer, param), layer);
      }
      if (bitwidth === 4) assert.ok(Math.max(...fs.readFileSync(result.weightsFiles[0]).subarray(0, 144)) <= 15, "Conv1 codes 0..15");
      // encodings.json holds the same grids (AIMET's float64 Δ; the manifest stores it as float32).
      const aimet = JSON.parse(fs.readFileSync(result.encodings, "utf8")) as { param_encodings: Record<string, { scale: number; offset: number }[]> };
      const conv1 = specs.find((w) => w.name === "Conv1/kernel")!.quantization!;
      assert.equal(Math.fround(aimet.param_encodings["Conv1/kernel"][0].scale), conv1.scale);
      assert.equal(aimet.param_encodings["Conv1/kernel"][0].offset * conv1.scale!, conv1.min);
      assert.match(result.notes[0], /0 of \d+ activation quantizers.*encodings\.json/);
      const float32Kernels = kernelValues * 4;
      console.log(
        `      W${bitwidth}: weights ${result.bytes.float32} B as float32 → ${result.bytes.quantized} B (${(result.bytes.float32 / result.bytes.quantized).toFixed(2)}x); ` +
          `kernels ${float32Kernels} → ${kernelValues} B; max |exported − sim| / max |sim| = ${diff.toExponential(2)}`,
      );
      loaded.dispose();
      sim.dispose();
    });
  }

  it("per-channel weights: float32 holding the sim's values (exact), reason stated; perChannel 'requantize' gives uint8 per tensor", async () => {
    const sim = QuantSim.create(cle.graph, { weights: { bitwidth: 4, perChannel: true } }).with({ "**.output": { enabled: false } });
    const exact = await exportAndCompare(sim, "per-channel");
    assert.ok(exact.diff <= 1e-5, `exported vs sim: ${exact.diff}`);
    const conv1 = exact.result.weights.find((w) => w.name === "Conv1/kernel")!;
    assert.equal(conv1.dtype, "float32");
    assert.equal(conv1.exactGrid, true);
    assert.match(conv1.reason!, /per-channel encoding \(16 channels\).*float32/);
    assertSameValues(exact.loaded.getLayer("Conv1").getWeights()[0].dataSync(), simWeight(sim, "Conv1", "kernel"), "Conv1/kernel");
    exact.loaded.dispose();

    const requantized = await exportAndCompare(sim, "requantize", { perChannel: "requantize" });
    const row = requantized.result.weights.find((w) => w.name === "Conv1/kernel")!;
    assert.equal(row.dtype, "uint8");
    assert.equal(row.exactGrid, false);
    assert.ok(row.maxError > 0 && row.maxError <= row.scale! / 2 + 1e-7, `requantization moved values by ${row.maxError} (Δ ${row.scale})`);
    assert.match(row.reason!, /requantized/);
    assert.ok(requantized.result.bytes.quantized < exact.result.bytes.quantized / 3);
    console.log(`      per-channel W4: float32 ${exact.result.bytes.quantized} B, diff ${exact.diff.toExponential(2)}; requantized ${requantized.result.bytes.quantized} B, diff ${requantized.diff.toExponential(2)}`);
    requantized.loaded.dispose();
    sim.dispose();
  });

  it("exports a frozen (AdaRound-style) weight as it is, and an off-grid one as float32", async () => {
    const sim = QuantSim.create(cle.graph, { weights: { bitwidth: 8 } }).with({ "**.output": { enabled: false } });
    const name = "block_1_project.kernel";
    const enc = sim.encodingOf(name) as Encoding;
    const nearest = simWeight(sim, "block_1_project", "kernel");
    const delta = Math.fround(enc.scale);
    // Move every 7th value one grid step up (down when it is on the top code), as AdaRound's choices would.
    const moved = nearest.map((v, i) => {
      if (i % 7 !== 0) return v;
      const r = Math.round(v / delta);
      return Math.fround((r < enc.offset + enc.numSteps ? r + 1 : r - 1) * delta);
    });
    const shape = [...cle.graph.node("block_1_project").params.kernel.shape];
    const frozenSim = sim.withFrozenWeights(new Map([[name, { encoding: enc, values: moved, shape }]]));
    const { result, diff, loaded } = await exportAndCompare(frozenSim, "frozen");
    assert.ok(diff <= 1e-5, `exported vs frozen sim: ${diff}`);
    const decoded = loaded.getLayer("block_1_project").getWeights()[0].dataSync();
    assertSameValues(decoded, moved, "the frozen values are what got exported");
    assert.notDeepEqual([...decoded], [...nearest]);
    const row = result.weights.find((w) => w.name === "block_1_project/kernel")!;
    assert.deepEqual([row.dtype, row.exactGrid], ["uint8", true]);
    assert.match(row.reason!, /frozen/);
    loaded.dispose();

    // Values off the grid cannot be codes: stored as float32, still exactly the sim's.
    const offGrid = moved.map((v, i) => (i === 3 ? v + delta / 3 : v));
    const offSim = sim.withFrozenWeights(new Map([[name, { encoding: enc, values: offGrid, shape }]]));
    const off = await exportAndCompare(offSim, "off-grid");
    const offRow = off.result.weights.find((w) => w.name === "block_1_project/kernel")!;
    assert.deepEqual([offRow.dtype, offRow.exactGrid], ["float32", true]);
    assert.match(offRow.reason!, /index 3 \(frozen weight\) is not on the 8-bit grid/);
    assertSameValues(off.loaded.getLayer("block_1_project").getWeights()[0].dataSync(), offGrid, "off-grid frozen weight");
    off.loaded.dispose();
    [sim, frozenSim, offSim].forEach((s) => s.dispose());
  });

  it("refuses what it cannot export, naming the layer, and writes nothing", async () => {
    const sim = QuantSim.create(cle.graph).with({ "**.output": { enabled: false } });
    await assertNoLeak("failed exports", async () => {
      // A source whose layer names do not match the graph.
      const renamed = readJson(EXAMPLE_MODEL);
      const text = JSON.stringify(renamed).replace(/"Conv1"/g, '"stem_conv"');
      const badDir = path.join(root, "renamed-source");
      fs.mkdirSync(badDir);
      fs.writeFileSync(path.join(badDir, "model.json"), text);
      const out = path.join(root, "renamed-out");
      await assert.rejects(exportQuantizedModel(sim, path.join(badDir, "model.json"), out), /graph node "Conv1" is not a layer of the source model/);
      assert.ok(!fs.existsSync(out), "nothing written");

      // Another model altogether (an in-memory source).
      const other = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], name: "d" })] });
      await assert.rejects(exportQuantizedModel(sim, other, out), /is not a layer of the source model/);
      other.dispose();

      // Missing or unreadable source, unwritable outDir.
      await assert.rejects(exportQuantizedModel(sim, path.join(root, "nowhere", "model.json"), out), /source model not found/);
      const notJson = path.join(root, "broken.json");
      fs.writeFileSync(notJson, "{ not json");
      await assert.rejects(exportQuantizedModel(sim, notJson, out), /cannot read the source model/);
      await assert.rejects(exportQuantizedModel(sim, EXAMPLE_MODEL, path.join(notJson, "inside")), /cannot write the export to/);

      // A nested model: the export writes flat models only.
      const inner = tf.sequential({ name: "inner", layers: [tf.layers.dense({ units: 2, inputShape: [3], name: "inner_dense" })] });
      const input = tf.input({ shape: [3], name: "x" });
      const nested = tf.model({ inputs: input, outputs: inner.apply(input) as tf.SymbolicTensor, name: "outer" });
      const nestedGraph = importLayersModel(nested);
      const nestedSim = QuantSim.create(nestedGraph).with({ "**.output": { enabled: false } });
      await assert.rejects(exportQuantizedModel(nestedSim, nested, out), /layer "inner" is a nested Sequential model: the export writes flat models only/);
      nestedSim.dispose();
      nestedGraph.dispose();
      nested.dispose();

      // A per-channel ReLU clip (CLE's relu6 "per-channel") has no Keras form.
      const relu = cle.relu6Replaced[0];
      const channels = cle.graph.node(relu).outputShape[3] as number;
      const clipped = cle.graph.edit({ by: "test", attrs: new Map([[relu, { maxValue: new Array<number>(channels).fill(6) }]]) });
      const clippedSim = QuantSim.create(clipped).with({ "**.output": { enabled: false } });
      await assert.rejects(exportQuantizedModel(clippedSim, EXAMPLE_MODEL, out), new RegExp(`layer "${relu}" \\(ReLU\\) clips each channel`));
      clippedSim.dispose();
      clipped.dispose();

      // The export reads what changed from the graph's edit record: a change made around Graph.edit is refused.
      const padded = cle.graph.nodes.find((n) => n.attrs.padding === "same")!;
      const byHand = new Graph({
        name: cle.graph.name,
        nodes: cle.graph.nodes.map((n) => (n === padded ? { ...n, attrs: { ...n.attrs, padding: "valid" } } : n)),
        inputs: [...cle.graph.inputs],
        outputs: [...cle.graph.outputs],
        edits: cle.graph.edits,
      });
      const byHandSim = QuantSim.create(byHand).with({ "**.output": { enabled: false } });
      await assert.rejects(exportQuantizedModel(byHandSim, EXAMPLE_MODEL, out), new RegExp(`layer "${padded.name}" .*attribute padding is "valid" in the graph but "same" in the source model, and the graph's edit record does not say what changed it`));
      byHandSim.dispose(); // the graph shares cle.graph's tensors: not disposed here

      // A graph from which a layer other than a folded BatchNorm is missing.
      await assert.rejects(exportWithoutDropout(), /layer "\w+" \(Dropout\) was removed by test; only a BatchNormalization folded/);
    });
    sim.dispose();

    async function exportWithoutDropout(): Promise<void> {
      const dropout = cle.graph.nodes.find((n) => n.layerClass === "Dropout")!;
      const g = cle.graph.edit({ by: "test", remove: new Map([[dropout.name, dropout.inputs[0]]]) });
      const s = QuantSim.create(g).with({ "**.output": { enabled: false } });
      try {
        await exportQuantizedModel(s, EXAMPLE_MODEL, path.join(root, "no-dropout"));
      } finally {
        s.dispose();
        g.dispose();
      }
    }
  });
});
