import { Graph } from "../../graph/graph";
import { OnnxValue } from "../../graph/types";
import { OnnxGraphBuilder } from "./builder";
import { InstanceOptions, LoweredInput, lowerNodes, neededNodes } from "./lower-graph";

/** The outputs of an error-sums model for one node (ONNX output names). */
export interface ErrorSumOutputs {
  node: string;
  /** Squares of the FP32 value, summed over all but the batch and channel axes. */
  reference: string;
  /** Squares of (quantized model − FP32), summed the same way. */
  propagated: string;
  /** Squares of (this node alone quantized, fed FP32 inputs − FP32); absent when the node has no local simulation. */
  local?: string;
  /** How many values the node has (int64). */
  size: string;
}

export interface ErrorSumsModel {
  bytes: Uint8Array;
  inputs: LoweredInput[];
  nodes: ErrorSumOutputs[];
}

/**
 * One model that computes, for every listed node, how far the quantized
 * model's value (and the node's own quantizers on FP32 inputs) lies from FP32,
 * as partial sums of squares. It holds the FP32 graph, the quantized graph and
 * one copy of each locally simulated node side by side, and returns a few
 * numbers per channel instead of every activation: returning every value
 * of two whole models cost more than computing them, and memory besides.
 *
 * Sums run over every axis but batch and channel, so each runs over at most
 * one feature map in float32; the caller adds them up in float64.
 */
export function lowerErrorSums(graph: Graph, nodes: readonly string[], quantized: InstanceOptions, locals: ReadonlyMap<string, InstanceOptions>): ErrorSumsModel {
  const b = new OnnxGraphBuilder();
  const inputs: LoweredInput[] = [];
  const needed = neededNodes(graph, nodes);
  const fp32 = lowerNodes(b, graph, needed, inputs);
  const modelInputs = new Map(graph.inputs.filter((n) => fp32.values.has(n)).map((n) => [n, fp32.values.get(n)!]));
  const whole = lowerNodes(b, graph, needed, inputs, { ...quantized, given: modelInputs });

  const partialSquares = (v: OnnxValue, name: string): string => {
    // Batch and channel stay: channels-first keeps channels on axis 1, the graph's own layout on the last axis.
    const keep = v.rank < 3 ? [...Array(v.rank).keys()] : [0, v.layout === "channelsFirst" ? 1 : v.rank - 1];
    const axes = [...Array(v.rank).keys()].filter((a) => !keep.includes(a));
    if (axes.length === 0) return b.node("Mul", [v.name, v.name], {}, { name })[0];
    return b.node("ReduceSumSquare", [v.name, b.ints(axes)], { keepdims: 0 }, { name })[0];
  };
  const difference = (a: OnnxValue, ref: OnnxValue): OnnxValue => ({ ...ref, name: b.node("Sub", [a.name, ref.name])[0] });

  const out: ErrorSumOutputs[] = [];
  for (const node of nodes) {
    const ref = fp32.values.get(node)!;
    const q = whole.values.get(node)!;
    if (q.layout !== ref.layout || q.rank !== ref.rank) throw new Error(`lowerErrorSums: "${node}" is laid out differently when quantized`);
    const entry: ErrorSumOutputs = {
      node,
      reference: partialSquares(ref, `${node}|reference`),
      propagated: partialSquares(difference(q, ref), `${node}|propagated`),
      size: b.node("Size", [ref.name], {}, { name: `${node}|size` })[0],
    };
    const local = locals.get(node);
    if (local) {
      // The node alone, from the FP32 values of its inputs.
      const given = new Map(graph.node(node).inputs.map((i) => [i, fp32.values.get(i)!]));
      const alone = lowerNodes(b, graph, new Set([node, ...given.keys()]), inputs, { ...local, given }).values.get(node)!;
      entry.local = partialSquares(difference(alone, ref), `${node}|local`);
    }
    for (const name of [entry.reference, entry.propagated, entry.local]) if (name) b.output(name, "float32");
    b.output(entry.size, "int64");
    out.push(entry);
  }
  return { bytes: b.toModel(`${graph.name}-error-sums`), inputs, nodes: out };
}
