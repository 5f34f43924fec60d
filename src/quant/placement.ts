import { Graph } from "../graph/graph";
import { GraphNode } from "../graph/types";

export type QuantizerKind = "weight" | "bias" | "activation";

/** Where a quantizer sits; its settings and encoding live in the simulation. */
export interface QuantizerSite {
  /** Stable and readable: "<node>.<param>" for parameters, "<node>.output" for activations. */
  name: string;
  node: string;
  kind: QuantizerKind;
  /** The parameter quantized (weights and biases). */
  param?: string;
  /**
   * For per-channel weights: the axis of output channels after `channelShape`
   * (if set) has reshaped the tensor (depthwise kernels flatten in x multiplier).
   */
  channelAxis?: number;
  channelShape?: number[];
}

/** Weight parameters quantized per op, with the axis of their output channels. */
const WEIGHTS: Record<string, { param: string; axis: (shape: number[]) => { axis: number; reshape?: number[] } }[]> = {
  conv1d: [{ param: "kernel", axis: () => ({ axis: 2 }) }],
  conv2d: [{ param: "kernel", axis: () => ({ axis: 3 }) }],
  // A transposed convolution's kernel is [kh, kw, out, in]: its output channels are axis 2.
  conv2dTranspose: [{ param: "kernel", axis: () => ({ axis: 2 }) }],
  dense: [{ param: "kernel", axis: () => ({ axis: 1 }) }],
  depthwiseConv2d: [{ param: "depthwise_kernel", axis: depthwiseChannels }],
  separableConv2d: [
    { param: "depthwise_kernel", axis: depthwiseChannels },
    { param: "pointwise_kernel", axis: () => ({ axis: 3 }) },
  ],
  embedding: [{ param: "embeddings", axis: () => ({ axis: 1 }) }],
};

/** [kh, kw, in, mult]: output channel c*mult + m, so flatten the last two axes. */
function depthwiseChannels(shape: number[]) {
  return { axis: 2, reshape: [shape[0], shape[1], shape[2] * shape[3]] };
}

const WEIGHTED = new Set(Object.keys(WEIGHTS));
/** Ops that only move or select values: their output is on their input's grid already. */
const PASS_THROUGH = new Set([
  "flatten", "reshape", "identity", "zeroPad2d", "maxPool2d", "globalMaxPool",
  // Graph models' data movement (TF's Reshape with the batch, Transpose, StridedSlice, Tile, Gather, DepthToSpace).
  "reshapeAll", "transpose", "stridedSlice", "tile", "gather", "gatherNd", "depthToSpace",
]);

/** Moves values without computing new ones: a pass-through op, or padding with 0 (a value every grid holds). */
function movesValues(node: GraphNode): boolean {
  return PASS_THROUGH.has(node.op) || (node.op === "pad" && node.attrs.value === 0);
}
/** Activations a runtime fuses into the op before them. */
const FUSABLE_ACTIVATIONS = new Set(["relu", "relu6", "leakyRelu"]);

/**
 * Whether a runtime would fuse `node` with its only consumer, so that no
 * quantizer sits between them: conv/dense → BatchNorm, conv/dense/BatchNorm →
 * ReLU, add → ReLU (AIMET's default supergroups).
 */
function fusedIntoConsumer(node: GraphNode, consumers: readonly GraphNode[], isOutput: boolean): boolean {
  if (consumers.length !== 1 || isOutput) return false;
  const next = consumers[0];
  if (next.op === "batchNorm") return WEIGHTED.has(node.op) && node.attrs.activation === "linear";
  if (next.op === "activation" && FUSABLE_ACTIVATIONS.has(next.attrs.fn as string)) {
    return (WEIGHTED.has(node.op) && node.attrs.activation === "linear") || node.op === "batchNorm" || node.op === "add";
  }
  return false;
}

/** Lists every quantizer of a graph, in execution order. */
export function placeQuantizers(graph: Graph, options: { biases: boolean }): QuantizerSite[] {
  const sites: QuantizerSite[] = [];
  for (const node of graph.nodes) {
    for (const w of WEIGHTS[node.op] ?? []) {
      const t = node.params[w.param];
      if (!t) continue;
      const { axis, reshape } = w.axis(t.shape);
      sites.push({ name: `${node.name}.${w.param}`, node: node.name, kind: "weight", param: w.param, channelAxis: axis, channelShape: reshape });
    }
    if (options.biases && WEIGHTED.has(node.op) && node.params.bias) {
      sites.push({ name: `${node.name}.bias`, node: node.name, kind: "bias", param: "bias", channelAxis: 0 });
    }
    if (node.op === "embedding" && node.inputs.length) continue; // integer ids in, table rows out: quantized by its weight quantizer
    const isOutput = graph.outputs.includes(node.name);
    if (movesValues(node) && !isOutput) continue;
    if (fusedIntoConsumer(node, graph.consumers(node.name), isOutput)) continue;
    if (node.op === "input" && node.attrs.dtype === "int32") continue;
    sites.push({ name: `${node.name}.output`, node: node.name, kind: "activation" });
  }
  return sites;
}
