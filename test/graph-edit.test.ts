import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { Graph, GraphEditor } from "../src/graph/graph";
import { forward } from "../src/graph/forward";
import "../src/graph/ops/all";
import { assertNoLeak, setupBackend } from "./helpers";

/** x → a (dense) → r (relu) → b (dense): small enough to check every edit by hand. */
function chain(): Graph {
  const dense = (name: string, input: string, w: number[][], bias: number[]) => ({
    name, op: "dense", layerClass: "Dense", inputs: [input], attrs: { activation: "linear" },
    params: { kernel: tf.tensor2d(w), bias: tf.tensor1d(bias) }, outputShape: [null, w[0].length],
  });
  return new Graph({
    name: "chain",
    nodes: [
      { name: "x", op: "input", layerClass: "InputLayer", inputs: [], params: {}, attrs: { dtype: "float32" }, outputShape: [null, 2] },
      dense("a", "x", [[1, 0], [0, 2]], [0, 1]),
      { name: "r", op: "activation", layerClass: "ReLU", inputs: ["a"], params: {}, attrs: { fn: "relu", maxValue: null }, outputShape: [null, 2] },
      dense("b", "r", [[1], [1]], [0.5]),
    ],
    inputs: ["x"],
    outputs: ["b"],
  });
}

describe("graph edits", () => {
  before(setupBackend);

  it("edit() replaces parameters, sets attributes and removes nodes in a new graph that records each change", async () => {
    const g = chain();
    const x = tf.tensor2d([[1, -1], [2, 3]]);
    await assertNoLeak("edit", () => {
      const e = g.edit({ by: "test", params: new Map([["b", { bias: tf.tensor1d([10]) }]]), attrs: new Map([["a", { note: 1 }]]), remove: new Map([["r", "a"]]) });
      assert.deepEqual(e.nodes.map((n) => n.name), ["x", "a", "b"]);
      assert.deepEqual(e.node("b").inputs, ["a"], "the relu's reader reads its input");
      assert.equal(e.node("a").attrs.note, 1);
      assert.equal(g.node("a").attrs.note, undefined, "the source is left as it was");
      assert.deepEqual(e.edits, [
        { by: "test", kind: "attrs", node: "a", attrs: ["note"] },
        { by: "test", kind: "params", node: "b", params: ["bias"] },
        { by: "test", kind: "remove", node: "r", rewiredTo: "a" },
      ]);
      // x·a = [[1, -1], [2, 7]]; no relu; then ·[1, 1] + 10.
      const [y] = forward(e, x);
      assert.deepEqual(Array.from(y.dataSync()), [10, 19]);
      y.dispose();
      // Edits accumulate across edits; each graph owns its tensors.
      const e2 = e.edit({ by: "second", attrs: new Map([["b", { note: 2 }]]) });
      e.dispose();
      assert.deepEqual(e2.edits.map((d) => d.by), ["test", "test", "test", "second"]);
      const [y2] = forward(e2, x);
      assert.deepEqual(Array.from(y2.dataSync()), [10, 19], "e2 still runs after e is freed");
      y2.dispose();
      e2.dispose();
    });
    assert.throws(() => g.edit({ by: "t", remove: new Map([["x", "a"]]) }), /"x" is a model input and cannot be removed/);
    assert.throws(() => g.edit({ by: "t", remove: new Map([["r", "nope"]]) }), /no node named "nope"/);
    assert.throws(() => g.edit({ by: "t", remove: new Map([["r", "a"], ["a", "r"]]) }), /removals rewire in a circle/);
    x.dispose();
    g.dispose();
  });

  it("GraphEditor reads its own changes, frees a replaced tensor at once, and frees everything on dispose without a build", async () => {
    const g = chain();
    await assertNoLeak("editor", () => {
      const editor = new GraphEditor(g, "test");
      editor.setParam("a", "bias", tf.tensor1d([5, 5]));
      editor.setParam("a", "bias", tf.add(editor.param("a", "bias")!, 1) as tf.Tensor1D);
      assert.deepEqual(Array.from(editor.param("a", "bias")!.dataSync()), [6, 6]);
      assert.deepEqual(editor.changed(), ["a"]);
      editor.dispose();
      const built = new GraphEditor(g, "test");
      built.setParam("b", "kernel", tf.tensor2d([[2], [2]]));
      const e = built.build();
      built.dispose(); // the graph owns the tensors now
      assert.deepEqual(Array.from(e.node("b").params.kernel.dataSync()), [2, 2]);
      e.dispose();
    });
    g.dispose();
  });
});
