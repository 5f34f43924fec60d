import * as tf from "@tensorflow/tfjs";
import { Graph } from "../graph/graph";
import { forward, GraphInputs } from "../graph/forward";

/**
 * One FP32 pass that keeps every node's output, for analyses that start later
 * passes from FP32 intermediates. The caller disposes both the outputs and the
 * kept tensors.
 */
export function forwardKeepingAll(graph: Graph, inputs: GraphInputs): { outputs: tf.Tensor[]; all: Map<string, tf.Tensor> } {
  const all = new Map<string, tf.Tensor>();
  try {
    const outputs = forward(graph, inputs, { hook: (node, out) => void all.set(node.name, tf.keep(out.clone())) });
    return { outputs, all };
  } catch (err) {
    tf.dispose([...all.values()]);
    throw err;
  }
}

/** The kept tensors a run may reuse when the nodes in `changed` (and after) differ from FP32. */
export function unchangedBy(all: ReadonlyMap<string, tf.Tensor>, changed: ReadonlySet<string>): Map<string, tf.Tensor> {
  return new Map([...all].filter(([name]) => !changed.has(name)));
}
