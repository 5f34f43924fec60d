import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { importLayersModel } from "../src/graph/import-layers";
import { loadGraph, loadLayersModelFromFile } from "../src/graph/load-model";
import { verifyAgainstModel } from "../src/runner/verify";
import { forward } from "../src/graph/forward";
import { supportedLayerClasses } from "../src/graph/registry";
import { buildZooModel, esrganSlim, nsfwjsMobileNetV2 } from "./fixtures/models";
import { saveModel } from "./fixtures/save-model";
import { assertNoLeak, randomizeWeights, setupBackend } from "./helpers";

describe("model graph", () => {
  before(setupBackend);

  describe("a model using every supported layer (3 inputs, 3 outputs, nested models, a shared layer)", () => {
    let model: tf.LayersModel;
    before(() => {
      model = buildZooModel();
      randomizeWeights(model, 7);
    });
    after(() => model.dispose());

    it("imports into nodes in execution order, nested models flattened with a prefix", async () => {
      const graph = await assertNoLeak("import + dispose", () => {
        const g = importLayersModel(model);
        const names = g.nodes.map((n) => n.name);
        g.dispose();
        return { names, inputs: [...g.inputs], outputs: [...g.outputs], g };
      });
      assert.deepEqual(graph.inputs, ["image", "vector", "tokens"]);
      assert.deepEqual(graph.outputs, ["probs", "gap_t", "side_softmax"]);
      assert.ok(graph.names.includes("head/inner_dense"), "nested functional layer prefixed");
      assert.ok(graph.names.includes("side/side_dense"), "nested Sequential layer prefixed");
      assert.ok(graph.names.includes("shared") && graph.names.includes("shared_call1"), "both calls of the shared layer");
      const g = importLayersModel(model);
      try {
        g.nodes.forEach((n, i) => n.inputs.forEach((src) => assert.ok(g.nodes.findIndex((m) => m.name === src) < i)));
        assert.equal(g.node("bn_a").op, "batchNorm");
        assert.deepEqual(Object.keys(g.node("bn_a").params).sort(), ["beta", "gamma", "moving_mean", "moving_variance"]);
        assert.deepEqual(g.node("dw_a").params.depthwise_kernel.shape, [3, 3, 4, 2]);
        assert.deepEqual(g.node("conv_a").attrs, { strides: [1, 1], padding: "same", dilations: [1, 1], activation: "relu" });
        assert.deepEqual(g.node("pad_a").attrs.pads, [[1, 0], [0, 1]]);
        assert.deepEqual(g.node("side/side_reshape").attrs.targetShape, [-1, 6]);
        assert.equal(g.node("relu6_a").attrs.maxValue, 6);
        assert.deepEqual(g.inputSpecs.map((s) => s.dtype), ["float32", "float32", "int32"]);
        assert.deepEqual(g.node("conv_b").outputShape, [null, 7, 7, 6]);
        assert.equal(g.paramCount(), model.countParams() + g.paramCount("shared_call1"), "params match, shared layer counted per call");
      } finally {
        g.dispose();
      }
    });

    it("reproduces model.predict on every output (rel. diff <= 1e-5) without leaking", async () => {
      const g = importLayersModel(model);
      try {
        const result = await assertNoLeak("verify", () => verifyAgainstModel(g, model, { batchSize: 3, seed: 5 }));
        assert.equal(result.outputs.length, 3);
        for (const o of result.outputs) assert.ok(o.maxRelDiff <= 1e-5, `${o.output}: ${o.maxRelDiff}`);
        // The check itself can fail: a perturbed weight shows up as a difference.
        const kernel = g.node("dense_v").params.kernel;
        const perturbed = tf.add(kernel, 0.05);
        (g.node("dense_v").params as Record<string, tf.Tensor>).kernel = perturbed;
        const bad = verifyAgainstModel(g, model, { batchSize: 3, seed: 5 });
        assert.ok(bad.maxRelDiff > 1e-3, `perturbation not detected: ${bad.maxRelDiff}`);
        (g.node("dense_v").params as Record<string, tf.Tensor>).kernel = kernel;
        perturbed.dispose();
      } finally {
        g.dispose();
      }
    });

    it("runs only what is needed downstream of cached intermediates, with the same result", async () => {
      const g = importLayersModel(model);
      try {
        const inputs = [tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 1), tf.randomUniform([2, 8], 0, 1, "float32", 2), tf.randomUniform([2, 6], 0, 20, "int32", 3)];
        const full = forward(g, inputs);
        const cache = new Map<string, tf.Tensor>();
        const ran: string[] = [];
        const [concat] = forward(g, inputs, { outputs: ["concat"] });
        cache.set("concat", concat);
        await assertNoLeak("partial forward", () => {
          const [probs] = forward(g, inputs, {
            outputs: ["probs"],
            cached: cache,
            hook: (node) => void ran.push(node.name),
          });
          assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(probs, full[0]))).dataSync()[0]) < 1e-6);
          probs.dispose();
        });
        assert.deepEqual(ran, ["head/inner_dense", "head/inner_logits", "shared", "shared_call1", "add_shared", "probs"]);
        tf.dispose([...inputs, ...full, concat]);
      } finally {
        g.dispose();
      }
    });

    it("lets a hook replace a node's output, and the change flows downstream", () => {
      const g = importLayersModel(model);
      try {
        const inputs = [tf.ones([1, 16, 16, 3]), tf.ones([1, 8]), tf.zeros([1, 6], "int32")];
        const [, , side] = forward(g, inputs, { hook: (node, out) => (node.name === "side/side_dense" ? tf.onesLike(out) : undefined) });
        // softmax of [1, 1] is [0.5, 0.5]
        assert.deepEqual(Array.from(side.dataSync()).map((v) => +v.toFixed(6)), [0.5, 0.5]);
        tf.dispose([...inputs, side]);
      } finally {
        g.dispose();
      }
    });

    it("names the input at fault when given the wrong number or rank of inputs", () => {
      const g = importLayersModel(model);
      try {
        const x = tf.zeros([1, 16, 16, 3]);
        assert.throws(() => forward(g, [x]), /takes 3 input\(s\) \(image, vector, tokens\) but 1 were given/);
        const flat = tf.zeros([1, 8]);
        assert.throws(() => forward(g, [flat, flat, flat]), /model input "image" expects rank 4/);
        tf.dispose([x, flat]);
      } finally {
        g.dispose();
      }
    });
  });

  describe("errors", () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-graph-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("missing model.json", async () => {
      await assert.rejects(loadGraph(path.join(dir, "nope", "model.json")), /model file not found: .*nope/);
    });

    it("corrupt model.json", async () => {
      const file = path.join(dir, "corrupt.json");
      fs.writeFileSync(file, "{ not json");
      await assert.rejects(loadGraph(file), /model file .*corrupt.json is not valid JSON/);
      fs.writeFileSync(file, JSON.stringify({ hello: 1 }));
      await assert.rejects(loadGraph(file), /has no modelTopology/);
    });

    it("a missing or truncated weight shard", async () => {
      const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4], name: "d" })] });
      const file = await saveModel(model, path.join(dir, "shard"));
      model.dispose();
      const bin = path.join(dir, "shard", "weights.bin");
      const bytes = fs.readFileSync(bin);
      fs.writeFileSync(bin, bytes.subarray(0, 20));
      await assert.rejects(loadGraph(file), /hold 20 bytes but the manifest describes 60/);
      fs.rmSync(bin);
      await assert.rejects(loadGraph(file), /missing weight shard: .*weights.bin/);
    });

    it("an unsupported layer is named with its class and the supported list", async () => {
      const model = tf.sequential({
        layers: [tf.layers.dense({ units: 3, inputShape: [4], name: "d" }), tf.layers.repeatVector({ n: 2, name: "repeat_me" })],
      });
      const before = tf.memory().numTensors;
      assert.throws(() => importLayersModel(model), (err: Error) => {
        assert.match(err.message, /unsupported layer "repeat_me" \(class RepeatVector\)/);
        assert.match(err.message, /supports: .*Conv2D.*DepthwiseConv2D/);
        return true;
      });
      assert.equal(tf.memory().numTensors, before, "a failed import frees what it copied");
      model.dispose();
    });

    it("an unsupported option is named, never approximated", () => {
      const bad = tf.sequential({ layers: [tf.layers.conv2d({ filters: 2, kernelSize: 1, inputShape: [2, 8, 8], dataFormat: "channelsFirst", name: "cf" })] });
      assert.throws(() => importLayersModel(bad), /layer "cf" \(Conv2D\): dataFormat "channelsFirst" is not supported/);
      bad.dispose();
    });

    it("lists what is supported", () => {
      const classes = supportedLayerClasses();
      for (const c of ["Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "Softmax", "Add", "Multiply", "Concatenate", "ZeroPadding2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalAveragePooling1D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Dropout", "UpSampling2D", "LayerNormalization", "Embedding"]) {
        assert.ok(classes.includes(c), c);
      }
    });
  });

  describe("real models shipped in npm packages", function () {
    this.timeout(300000);

    it("nsfwjs MobileNetV2 (uint8-quantized weights) matches model.predict", async () => {
      const file = nsfwjsMobileNetV2();
      const model = await loadLayersModelFromFile(file);
      const graph = await loadGraph(file);
      try {
        assert.equal(graph.nodes.filter((n) => n.op === "batchNorm").length, 52);
        assert.equal(graph.nodes.filter((n) => n.op === "add").length, 10);
        const result = await assertNoLeak("verify MobileNetV2", () => verifyAgainstModel(graph, model, { batchSize: 2 }));
        assert.ok(result.maxRelDiff <= 1e-5, `max rel diff ${result.maxRelDiff}`);
      } finally {
        graph.dispose();
        model.dispose();
      }
    });

    for (const scale of [2, 4] as const) {
      it(`esrgan-slim x${scale} matches model.predict at an open input size`, async () => {
        const file = esrganSlim(scale);
        const model = await loadLayersModelFromFile(file);
        const graph = await loadGraph(file);
        try {
          const result = verifyAgainstModel(graph, model, { batchSize: 1, openDimension: 12 });
          assert.deepEqual(result.outputs[0].shape, [1, 12 * scale, 12 * scale, 3]);
          assert.ok(result.maxRelDiff <= 1e-5, `max rel diff ${result.maxRelDiff}`);
        } finally {
          graph.dispose();
          model.dispose();
        }
      });
    }
  });
});
