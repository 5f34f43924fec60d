import * as fs from "fs";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { loadGraph, loadLayersModelFromFile } from "../src/graph/load-model";
import { verifyAgainstModel } from "../src/runner/verify";
import { runDataset } from "../src/runner/run-dataset";
import { toDataset } from "../src/data/dataset";
import { ProgressEvent } from "../src/progress";
import { Graph } from "../src/graph/graph";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, setupBackend } from "./helpers";

/** The shipped example: a MobileNetV2-style MNIST model and the first 2000 test images. */
describe("shipped example model and data", () => {
  let graph: Graph;
  before(async () => {
    await setupBackend();
    graph = await loadGraph(EXAMPLE_MODEL);
  });
  after(() => graph.dispose());

  it("is MobileNetV2-style: depthwise convolutions, unfolded BatchNorm, ReLU6, residual adds", () => {
    const ops = graph.nodes.map((n) => n.op);
    assert.ok(ops.filter((o) => o === "depthwiseConv2d").length >= 4);
    assert.ok(ops.filter((o) => o === "batchNorm").length >= 10);
    assert.ok(ops.filter((o) => o === "add").length >= 2);
    assert.ok(graph.nodes.some((n) => n.op === "activation" && n.attrs.maxValue === 6));
    assert.deepEqual(graph.inputSpecs, [{ name: "image", shape: [null, 28, 28, 1], dtype: "float32" }]);
  });

  it("the graph reproduces model.predict (largest relative difference <= 1e-5)", async () => {
    const model = await loadLayersModelFromFile(EXAMPLE_MODEL);
    const r = await assertNoLeak("verify", () => verifyAgainstModel(graph, model, { batchSize: 4 }));
    model.dispose();
    assert.ok(r.maxRelDiff <= 1e-5, `${r.maxRelDiff}`);
  });

  it("classifies the shipped MNIST sample as its training record says, batch by batch with progress", async () => {
    const record = JSON.parse(fs.readFileSync(EXAMPLE_MODEL.replace("model.json", "training.json"), "utf8"));
    const events: ProgressEvent[] = [];
    let correct = 0;
    const summary = await assertNoLeak("runDataset", () =>
      runDataset(graph, toDataset("mnist", { batchSize: 250 }), {
        onProgress: (e) => events.push(e),
        onBatch: ([probs], batch) => {
          correct += tf.tidy(() => tf.sum(tf.equal(tf.argMax(probs, -1), batch.labels!)).dataSync()[0]);
        },
      }),
    );
    assert.equal(summary.examples, 2000);
    assert.equal(summary.batches, 8);
    assert.deepEqual(events.map((e) => e.done), [250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
    assert.equal(events[0].total, 2000);
    assert.equal(correct / 2000, record.fp32AccuracySample2000);
  });

  it("rejects a batch of the wrong shape or with NaN, naming the input", async () => {
    const bad = tf.zeros([2, 28, 27, 1]);
    await assert.rejects(runDataset(graph, toDataset(bad)), /image/);
    const nan = tf.fill([2, 28, 28, 1], NaN);
    await assert.rejects(runDataset(graph, toDataset(nan)), /NaN/);
    tf.dispose([bad, nan]);
  });
});
