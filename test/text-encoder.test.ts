import { strict as assert } from "assert";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { useEngine } from "../src/engine/engine";
import { OnnxProgram } from "../src/engine/onnx/program";
import { Graph } from "../src/graph/graph";
import { loadGraph, loadLayersModelFromFile } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { forward } from "../src/graph/forward";
import { verifyAgainstModel } from "../src/runner/verify";
import { assertNoLeak, setupBackend } from "./helpers";
import { ROOT } from "./fixtures/models";

export const TEXT_ENCODER = path.join(ROOT, "models", "text-encoder", "model.json");

/** Two rank-3 inputs and one Dot per axes pair tfjs-layers accepts for them, each with its own shapes. */
function dotModel(): tf.LayersModel {
  const a = tf.input({ shape: [5, 4], name: "a" }); // [batch, 5, 4]
  const b = tf.input({ shape: [6, 4], name: "b" }); // [batch, 6, 4]
  const c = tf.input({ shape: [4, 6], name: "c" }); // [batch, 4, 6]
  const d = tf.input({ shape: [4, 5], name: "d" }); // [batch, 4, 5]
  const dot = (axes: number | [number, number], name: string) => tf.layers.dot({ axes, name });
  const outputs = [
    dot([2, 2], "a_bT").apply([a, b]), // a·bᵀ: [5, 6]
    dot([2, 1], "a_c").apply([a, c]), // a·c: [5, 6]
    dot([1, 1], "dT_c").apply([d, c]), // dᵀ·c: [5, 6]
    dot([1, 2], "dT_bT").apply([d, b]), // dᵀ·bᵀ: [5, 6]
    dot(-1, "neg_axes").apply([a, b]), // -1 = [2, 2]
  ] as tf.SymbolicTensor[];
  return tf.model({ inputs: [a, b, c, d], outputs, name: "dots" });
}

function seededInputs(graph: Graph, batch: number, seed: number): tf.Tensor[] {
  return graph.inputSpecs.map((spec, i) => {
    const shape = spec.shape.map((d, axis) => (axis === 0 ? batch : (d as number)));
    if (spec.dtype !== "int32") return tf.randomNormal(shape, 0, 1, "float32", seed + i);
    const vocab = graph.consumers(spec.name).map((n) => n.attrs.inputDim as number)[0];
    return tf.randomUniform(shape, 0, vocab, "int32", seed + i);
  });
}

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(1e-12, tf.max(tf.abs(b)).dataSync()[0]));
}

/** The graph on ONNX Runtime, every quantizer bypassed, against `model.predict` on the same inputs. */
async function onnxAgainstPredict(graph: Graph, model: tf.LayersModel, inputs: tf.Tensor[]): Promise<number[]> {
  const sim = QuantSim.create(graph).with({ "**": { enabled: false } });
  const program = new OnnxProgram(graph, sim.sites);
  const predicted = model.predict(inputs.length === 1 ? inputs[0] : inputs);
  const expected = Array.isArray(predicted) ? predicted : [predicted];
  const diffs: number[] = [];
  try {
    await program.run(inputs, [{ key: "fp32", sim }], (_key, outputs) => {
      assert.equal(outputs.length, expected.length);
      outputs.forEach((o, i) => {
        assert.deepEqual(o.shape, expected[i].shape, `output ${i} shape`);
        diffs.push(maxRelDiff(o, expected[i]));
      });
    });
  } finally {
    await program.dispose();
    tf.dispose(expected);
    sim.dispose();
  }
  return diffs;
}

describe("the Dot layer and the text encoder", () => {
  before(setupBackend);

  it("Dot on rank-3 inputs imports as a batched matMul, for every axes pair, matching model.predict exactly on tfjs", async () => {
    const model = dotModel();
    const graph = await loadGraph(model);
    try {
      const nodes = graph.nodes.filter((n) => n.layerClass === "Dot");
      assert.deepEqual(nodes.map((n) => [n.name, n.op, n.attrs.transposeA, n.attrs.transposeB]), [
        ["a_bT", "matMul", false, true],
        ["a_c", "matMul", false, false],
        ["dT_c", "matMul", true, false],
        ["dT_bT", "matMul", true, true],
        ["neg_axes", "matMul", false, true],
      ]);
      const inputs = seededInputs(graph, 3, 5);
      const before = tf.memory().numTensors;
      const ours = forward(graph, inputs);
      assert.equal(tf.memory().numTensors, before + ours.length, "forward keeps only its outputs");
      const theirs = model.predict(inputs) as tf.Tensor[];
      ours.forEach((o, i) => {
        assert.deepEqual(o.shape, [3, 5, 6]);
        assert.equal(maxRelDiff(o, theirs[i]), 0, `output ${i}`);
      });
      tf.dispose([...inputs, ...ours, ...theirs]);
    } finally {
      graph.dispose();
      model.dispose();
    }
  });

  it("Dot refuses what it cannot compute exactly, naming the layer", async () => {
    const a = tf.input({ shape: [4], name: "a" });
    const b = tf.input({ shape: [4], name: "b" });
    const rank2 = tf.model({ inputs: [a, b], outputs: tf.layers.dot({ axes: 1, name: "flat_dot" }).apply([a, b]) as tf.SymbolicTensor });
    await assert.rejects(loadGraph(rank2), /layer "flat_dot" \(Dot\): only two rank-3 inputs/);
    const x = tf.input({ shape: [3, 4], name: "x" });
    const cosine = tf.model({ inputs: x, outputs: tf.layers.dot({ axes: 2, normalize: true, name: "cosine" }).apply([x, x]) as tf.SymbolicTensor });
    await assert.rejects(loadGraph(cosine), /layer "cosine" \(Dot\): normalize/);
    rank2.dispose();
    cosine.dispose();
  });

  describe("the text encoder (models/text-encoder)", () => {
    let model: tf.LayersModel;
    let graph: Graph;
    before(async () => {
      model = await loadLayersModelFromFile(TEXT_ENCODER);
      graph = await loadGraph(model);
    });
    after(() => {
      graph.dispose();
      model.dispose();
    });

    it("imports completely: every layer, attention as matMul and softmax nodes", () => {
      assert.equal(graph.nodes.length, model.layers.length);
      const count = (op: string) => graph.nodes.filter((n) => n.op === op).length;
      assert.equal(count("matMul"), 8);
      assert.equal(graph.nodes.filter((n) => n.op === "activation" && n.attrs.fn === "softmax").length, 4);
      assert.equal(count("layerNorm"), 5);
      assert.equal(graph.paramCount(), 83266);
    });

    it("has quantizers on both inputs of each attention product and on the softmax output", () => {
      const sim = QuantSim.create(graph);
      const sites = new Set(sim.sites.map((s) => s.name));
      for (const n of graph.nodes.filter((x) => x.op === "matMul")) {
        for (const input of n.inputs) assert.ok(sites.has(`${input}.output`), `${n.name} reads ${input}, which has no quantizer`);
        assert.ok(sites.has(`${n.name}.output`), `${n.name}.output`);
      }
      assert.ok(sites.has("block_0_head_0_probs.output"));
      sim.dispose();
    });

    it("reproduces model.predict within 1e-5 on tfjs", () => {
      const r = verifyAgainstModel(graph, model, { batchSize: 8, seed: 3 });
      assert.ok(r.maxRelDiff <= 1e-5, `relative difference ${r.maxRelDiff}`);
    });

    it("reproduces model.predict within 1e-5 on ONNX Runtime", async () => {
      useEngine("onnx");
      try {
        const inputs = seededInputs(graph, 8, 3);
        const diffs = await assertNoLeak("OnnxProgram.run", () => onnxAgainstPredict(graph, model, inputs));
        tf.dispose(inputs);
        assert.equal(diffs.length, 1);
        assert.ok(diffs[0] <= 1e-5, `relative difference ${diffs[0]}`);
      } finally {
        useEngine();
      }
    });

    it("the Dot model reproduces model.predict within 1e-5 on ONNX Runtime", async () => {
      useEngine("onnx");
      const dots = dotModel();
      const g = await loadGraph(dots);
      try {
        const inputs = seededInputs(g, 3, 9);
        const diffs = await onnxAgainstPredict(g, dots, inputs);
        tf.dispose(inputs);
        assert.equal(diffs.length, 5);
        diffs.forEach((d, i) => assert.ok(d <= 1e-5, `output ${i}: relative difference ${d}`));
      } finally {
        g.dispose();
        dots.dispose();
        useEngine();
      }
    });
  });
});
