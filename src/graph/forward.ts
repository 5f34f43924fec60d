import * as tf from "@tensorflow/tfjs";
import { Graph } from "./graph";
import { getOp } from "./registry";
import { GraphNode, Params } from "./types";

/**
 * Called with every node's output as it is computed (input nodes included).
 * Return a tensor to replace the output (a quantizer), or nothing to only
 * observe it. It runs inside a tidy: to keep a tensor beyond the call (a cache,
 * a statistic), `tf.keep` it or copy its data out.
 */
export type NodeHook = (node: GraphNode, output: tf.Tensor) => tf.Tensor | void;

export interface ForwardOptions {
  hook?: NodeHook;
  /** Parameters to use instead of a node's own (e.g. quantized weights), by node name. */
  params?: ReadonlyMap<string, Params>;
  /**
   * Node outputs already known (e.g. cached FP32 intermediates): those nodes, and
   * everything only they depend on, are not run. The caller keeps ownership.
   */
  cached?: ReadonlyMap<string, tf.Tensor>;
  /** Nodes whose outputs to return; default: the graph's outputs. */
  outputs?: readonly string[];
}

/** Model inputs in any of the forms users have them: one tensor, a list, or by input name. */
export type GraphInputs = tf.Tensor | readonly tf.Tensor[] | Readonly<Record<string, tf.Tensor>>;

/**
 * Runs the graph on one batch and returns the requested outputs (the caller owns
 * them). Only the nodes the outputs need are run; each intermediate is disposed
 * as soon as its last consumer has run, as tfjs-layers' own executor does, so
 * peak memory stays near one layer's activations rather than the whole model's.
 */
export function forward(graph: Graph, inputs: GraphInputs, options: ForwardOptions = {}): tf.Tensor[] {
  const targets = options.outputs ?? graph.outputs;
  const cached = options.cached ?? new Map<string, tf.Tensor>();
  const given = bindInputs(graph, inputs);

  // 1. Which nodes must run: walk back from the targets, stopping at known tensors.
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name) || cached.has(name)) return;
    const node = graph.node(name);
    needed.add(name);
    if (node.op !== "input") node.inputs.forEach(visit);
  };
  targets.forEach(visit);

  // 2. How many pending reads each tensor has; the targets count as one more read each.
  const reads = new Map<string, number>();
  const addRead = (name: string) => reads.set(name, (reads.get(name) ?? 0) + 1);
  for (const node of graph.nodes) if (needed.has(node.name) && node.op !== "input") node.inputs.forEach(addRead);
  targets.forEach(addRead);

  const values = new Map<string, tf.Tensor>();
  const owned = new Set<tf.Tensor>();
  const release = (name: string) => {
    const left = reads.get(name)! - 1;
    reads.set(name, left);
    const t = values.get(name);
    if (left === 0 && t && owned.has(t)) {
      t.dispose();
      owned.delete(t);
      values.delete(name);
    }
  };
  for (const [name, t] of cached) values.set(name, t);

  try {
    // 3. Run the needed nodes in graph order.
    for (const node of graph.nodes) {
      if (!needed.has(node.name)) continue;
      let out: tf.Tensor;
      if (node.op === "input") {
        out = given.get(node.name)!;
      } else {
        const ins = node.inputs.map((src) => values.get(src)!);
        const params = options.params?.get(node.name) ?? node.params;
        out = tf.tidy(() => getOp(node.op).run(node, ins, params));
        owned.add(out);
      }
      if (options.hook) {
        const replaced = tf.tidy(() => options.hook!(node, out) ?? out);
        if (replaced !== out) {
          if (owned.has(out)) {
            out.dispose();
            owned.delete(out);
          }
          owned.add(replaced);
          out = replaced;
        }
      }
      values.set(node.name, out);
      if (node.op !== "input") node.inputs.forEach(release);
    }
    // 4. Hand out the targets (only they are still alive among what we made);
    // tensors the caller gave us, and repeated targets, come back as copies.
    const handedOut = new Set<tf.Tensor>();
    return targets.map((name) => {
      const t = values.get(name)!;
      if (!owned.has(t) || handedOut.has(t)) return t.clone();
      handedOut.add(t);
      return t;
    });
  } catch (err) {
    tf.dispose([...owned]);
    throw err;
  }
}

function bindInputs(graph: Graph, inputs: GraphInputs): Map<string, tf.Tensor> {
  let list: readonly tf.Tensor[];
  if (inputs instanceof tf.Tensor) list = [inputs];
  else if (Array.isArray(inputs)) list = inputs;
  else {
    const byName = inputs as Readonly<Record<string, tf.Tensor>>;
    const unknown = Object.keys(byName).filter((k) => !graph.inputs.includes(k));
    if (unknown.length) throw new Error(`unknown model input ${unknown.join(", ")} (inputs: ${graph.inputs.join(", ")})`);
    list = graph.inputs.map((name) => {
      if (!byName[name]) throw new Error(`missing model input "${name}"`);
      return byName[name];
    });
  }
  if (list.length !== graph.inputs.length) {
    throw new Error(`graph "${graph.name}" takes ${graph.inputs.length} input(s) (${graph.inputs.join(", ")}) but ${list.length} were given`);
  }
  return new Map(graph.inputs.map((name, i) => {
    const t = list[i];
    if (!(t instanceof tf.Tensor) || t.isDisposed) throw new Error(`model input "${name}" is not a live tensor`);
    const expected = graph.node(name).outputShape;
    if (t.rank !== expected.length) {
      throw new Error(`model input "${name}" expects rank ${expected.length} [${expected.map((d) => d ?? "?").join(", ")}], got shape [${t.shape.join(", ")}]`);
    }
    return [name, t];
  }));
}
