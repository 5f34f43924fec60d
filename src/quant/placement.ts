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

/** Moves values without computing new ones: a pass-through op, padding with 0 (a value every grid holds), or TopK's values. */
function movesValues(node: GraphNode): boolean {
  return PASS_THROUGH.has(node.op) || (node.op === "pad" && node.attrs.value === 0) || (node.op === "topK" && node.attrs.output === 0);
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

/** Element-wise functions whose results are integers or truth values (1/0). */
const INTEGER_FNS = new Set([
  "truncate", "nonZero", "logicalNot", "floor", "ceil", "round", "sign",
  "floorDiv", "floorMod", "equal", "notEqual", "greater", "greaterEqual", "less", "lessEqual", "logicalAnd", "logicalOr",
]);
/** Ops that keep integer inputs integer: index arithmetic and the data movement around it. */
const INTEGER_PRESERVING = new Set(["add", "multiply", "concat", "pack", ...PASS_THROUGH]);
const INTEGER_BINARY = new Set(["add", "sub", "mul", "maximum", "minimum"]);

const isIntegerTensor = (t: { dataSync(): ArrayLike<number> } | undefined): boolean => t !== undefined && Array.from(t.dataSync()).every(Number.isInteger);

/**
 * The nodes that compute integers (a graph model's post-processing: ArgMax, TopK's indices, FloorDiv, comparisons,
 * and arithmetic on their results, such as the row and column of a heatmap's peak fed to GatherNd).
 * They are indices and masks, not activations: a quantizer would move an index off its integer.
 */
export function integerNodes(graph: Graph): Set<string> {
  const found = new Set<string>();
  const integerInput = (name: string) => found.has(name) || (graph.node(name).op === "constant" && isIntegerTensor(graph.node(name).params.value));
  for (const node of graph.nodes) {
    const fn = node.attrs.fn as string | undefined;
    if (node.op === "argMax" || (node.op === "topK" && node.attrs.output === 1) || ((node.op === "unary" || node.op === "binary") && fn !== undefined && INTEGER_FNS.has(fn))) {
      found.add(node.name);
      continue;
    }
    const arithmetic = INTEGER_PRESERVING.has(node.op) || (node.op === "binary" && INTEGER_BINARY.has(fn!) && (!node.params.operand || isIntegerTensor(node.params.operand)));
    if (arithmetic && node.inputs.length > 0 && node.inputs.every(integerInput)) found.add(node.name);
  }
  return found;
}

/** Lists every quantizer of a graph, in execution order. */
export function placeQuantizers(graph: Graph, options: { biases: boolean }): QuantizerSite[] {
  const sites: QuantizerSite[] = [];
  const integers = integerNodes(graph);
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
    if (integers.has(node.name)) continue;
    sites.push({ name: `${node.name}.output`, node: node.name, kind: "activation" });
  }
  return sites;
}
