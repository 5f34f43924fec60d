import * as tf from "@tensorflow/tfjs";
import { Graph } from "../graph/graph";
import { ActivationAttrs, applyActivation } from "../graph/ops/activation";
import { Conv2dAttrs } from "../graph/ops/config";
import { getOp } from "../graph/registry";
import { GraphNode, Params } from "../graph/types";

/** A layer's output as AdaRound reconstructs it: the layer and the activation after it, with a cheaper training path. */

/** The activation applied after the layer before comparing (AIMET: the activation that immediately follows). */
export function followingActivation(graph: Graph, node: GraphNode): GraphNode | undefined {
  if (graph.outputs.includes(node.name)) return undefined;
  const readers = graph.consumers(node.name);
  return readers.length === 1 && readers[0].op === "activation" ? readers[0] : undefined;
}

/** The layer's output as the graph computes it (the op's own kernel and activation, then the activation node that alone reads it). Exported for tests. */
export function layerOutput(node: GraphNode, after: GraphNode | undefined, params: Params, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const y = getOp(node.op).run(node, [x], params);
    return after ? getOp(after.op).run(after, [y], after.params) : y;
  });
}

/**
 * The same function, built for the training steps, where only the weight's
 * gradient is wanted: tfjs's fused conv2d / matMul (what the conv2d and dense
 * kernels call) always compute the input and bias gradients too, about half of a
 * step, so those two layers run unfused here with the node's own attributes (a
 * test checks they match the kernels); ReLU and clipped ReLU take their gradient
 * from a mask of their output, as tf.clipByValue's gradient costs as much as
 * the convolution on wasm.
 */
export function trainingOutput(node: GraphNode, after: GraphNode | undefined, p: Params, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const z = activate({ fn: (node.attrs.activation as string | undefined) ?? "linear" }, linearPart(node, p, x));
    return after ? activate(after.attrs as unknown as ActivationAttrs, z) : z;
  });
}

function linearPart(node: GraphNode, p: Params, x: tf.Tensor): tf.Tensor {
  let z: tf.Tensor;
  if (node.op === "conv2d") {
    const a = node.attrs as unknown as Conv2dAttrs;
    z = tf.conv2d(x as tf.Tensor4D, p.kernel as tf.Tensor4D, a.strides, a.padding, "NHWC", a.dilations);
    if (p.bias) z = tf.add(z, p.bias);
  } else if (node.op === "dense") {
    const flat = x.rank === 2 ? x : tf.reshape(x, [-1, x.shape[x.rank - 1]]);
    z = tf.matMul(flat as tf.Tensor2D, p.kernel as tf.Tensor2D);
    if (p.bias) z = tf.add(z, p.bias);
    if (x.rank !== 2) z = tf.reshape(z, [...x.shape.slice(0, -1), p.kernel.shape[1] as number]);
  } else {
    z = getOp(node.op).run({ ...node, attrs: { ...node.attrs, activation: "linear" } }, [x], p);
  }
  return z;
}

/** An activation with its exact values; ReLU / ReLU6 / clipped ReLU get the cheap gradient dy · [0 < y < max]. */
function activate(attrs: ActivationAttrs, z: tf.Tensor): tf.Tensor {
  if (attrs.fn === "linear") return z;
  const max = attrs.fn === "relu6" ? 6 : attrs.fn === "relu" ? (attrs.maxValue ?? null) : undefined;
  if (max === undefined) return applyActivation(z, attrs);
  // customGrad's callback receives the input, then the save function, as one rest list.
  const fn = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const y = applyActivation(args[0] as tf.Tensor, attrs);
    (args[1] as tf.GradSaveFunc)([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [out]: tf.Tensor[]) => {
        const positive = tf.step(out);
        if (max === null) return [tf.mul(dy, positive)];
        const below = tf.step(tf.sub(typeof max === "number" ? tf.scalar(max) : tf.tensor1d(max), out));
        return [tf.mul(dy, tf.mul(positive, below))];
      },
    };
  };
  return (tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]) as (t: tf.Tensor) => tf.Tensor)(z);
}
