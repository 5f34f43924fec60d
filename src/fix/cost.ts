import { Graph } from "../graph/graph";
import { GraphNode } from "../graph/types";
import { QuantSim } from "../quant/quantsim";

/**
 * What a quantized model costs to run and to store, as mixed precision trades
 * it against accuracy:
 * - BOPs (bit operations) per weighted layer = MACs × weight bits × input
 *   activation bits, for one example (batch 1); bias additions are not counted.
 * - size = Σ parameters × bits / 8 bytes: each quantized weight at its
 *   bit-width, every other parameter (unquantized biases, BatchNorm) at 32 bits.
 * A bypassed quantizer counts as 32 bits (float).
 */

/** One kernel of a weighted layer: its quantizer, how many values and MACs it carries. */
export interface KernelCost {
  param: string;
  /** The weight quantizer of this parameter, if the simulation has one. */
  quantizer?: string;
  params: number;
  /** null when the layer's output size is not fixed (any height, any width). */
  macs: number | null;
}

/** A weighted layer: its kernels and the activation quantizers on its input (what its MACs multiply). */
export interface LayerCostModel {
  layer: string;
  op: string;
  kernels: KernelCost[];
  inputQuantizers: string[];
}

/** The fixed part of the cost of a simulation's graph, from which any bit assignment is costed quickly. */
export interface CostModel {
  layers: LayerCostModel[];
  /** Parameters outside weighted layers' kernels (biases, BatchNorm…): their quantizer if any, and size. */
  otherParams: { node: string; param: string; quantizer?: string; params: number }[];
}

/** One weighted layer's cost under one bit assignment. */
export interface LayerCost {
  layer: string;
  op: string;
  macs: number | null;
  /** Kernel values (biases are counted in the model's size, not here). */
  params: number;
  /** The widest of the layer's kernels (separable convolutions have two). */
  weightBits: number;
  activationBits: number;
  bops: number | null;
  /** Kernel bytes at `weightBits`. */
  bytes: number;
}

export interface ModelCost {
  /** Null when some layer's output size is not fixed (see `layers[].macs`). */
  bops: number | null;
  bytes: number;
  layers: LayerCost[];
}

/** Ops whose kernels do multiply-accumulates, with how many per output position. */
const KERNELS: Record<string, string[]> = {
  conv1d: ["kernel"],
  conv2d: ["kernel"],
  depthwiseConv2d: ["depthwise_kernel"],
  separableConv2d: ["depthwise_kernel", "pointwise_kernel"],
  dense: ["kernel"],
  embedding: ["embeddings"],
};

const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/**
 * Multiply-accumulates of one kernel for one example. Every op here computes,
 * at each output position, one MAC per kernel value (a kernel's shape already
 * holds what the position reads): conv2d kh·kw·cin·cout·H·W, depthwise
 * kh·kw·C·mult·H·W, separable its depthwise part plus (C·mult)·cout·H·W, dense
 * in·out (times the positions of a 3-D input), conv1d k·cin·cout·L. An
 * embedding only looks rows up: no MACs.
 */
export function kernelMacs(node: GraphNode, param: string): number | null {
  const kernel = node.params[param];
  if (!kernel) throw new Error(`layer "${node.name}" (${node.op}) has no parameter "${param}"`);
  if (node.op === "embedding") return 0;
  if (!KERNELS[node.op]?.includes(param)) throw new Error(`layer "${node.name}": no MAC count for op "${node.op}" parameter "${param}" (ops costed: ${Object.keys(KERNELS).join(", ")})`);
  // Output positions: every axis but batch (first) and channels (last).
  const positions = node.outputShape.slice(1, -1);
  if (positions.some((d) => d === null)) return null;
  return kernel.size * product(positions as number[]);
}

/**
 * The activation quantizers whose values a layer's MACs read: walking back from
 * its inputs through nodes without a quantizer of their own (reshape, flatten,
 * padding, dropout…) to the nearest activation quantizer.
 */
export function inputQuantizersOf(graph: Graph, node: GraphNode, activationQuantizerOf: ReadonlyMap<string, string>): string[] {
  const found = new Set<string>();
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const q = activationQuantizerOf.get(name);
    if (q) found.add(q);
    else graph.node(name).inputs.forEach(visit);
  };
  node.inputs.forEach(visit);
  return [...found];
}

/** The cost structure of a simulation's graph: which quantizers each layer's cost depends on. */
export function costModel(sim: QuantSim): CostModel {
  const graph = sim.graph;
  const activationQuantizerOf = new Map(sim.sites.filter((s) => s.kind === "activation").map((s) => [s.node, s.name]));
  const paramQuantizer = new Map(sim.sites.filter((s) => s.kind !== "activation").map((s) => [`${s.node}\u0000${s.param}`, s.name]));
  const layers: LayerCostModel[] = [];
  const otherParams: CostModel["otherParams"] = [];
  for (const node of graph.nodes) {
    const kernelParams = (KERNELS[node.op] ?? []).filter((p) => node.params[p]);
    if (kernelParams.length) {
      layers.push({
        layer: node.name,
        op: node.op,
        kernels: kernelParams.map((param) => ({ param, quantizer: paramQuantizer.get(`${node.name}\u0000${param}`), params: node.params[param].size, macs: kernelMacs(node, param) })),
        inputQuantizers: inputQuantizersOf(graph, node, activationQuantizerOf),
      });
    }
    for (const [param, t] of Object.entries(node.params)) {
      if (!kernelParams.includes(param)) otherParams.push({ node: node.name, param, quantizer: paramQuantizer.get(`${node.name}\u0000${param}`), params: t.size });
    }
  }
  return { layers, otherParams };
}

/** Bits a quantizer stores or computes with; undefined (no quantizer) and bypassed count as 32. */
export type BitsOf = (quantizer: string | undefined) => number;

/** Costs one bit assignment. */
export function costOf(model: CostModel, bitsOf: BitsOf): ModelCost {
  let bops: number | null = 0;
  let bytes = 0;
  const layers = model.layers.map((l): LayerCost => {
    // Several inputs (none of the costed ops has them today): the widest operand sets the multiplier.
    const activationBits = l.inputQuantizers.length ? Math.max(...l.inputQuantizers.map(bitsOf)) : 32;
    let layerBops: number | null = 0;
    let layerBytes = 0;
    for (const k of l.kernels) {
      const w = bitsOf(k.quantizer);
      layerBytes += (k.params * w) / 8;
      layerBops = layerBops === null || k.macs === null ? null : layerBops + k.macs * w * activationBits;
    }
    bops = bops === null || layerBops === null ? null : bops + layerBops;
    bytes += layerBytes;
    const macs = l.kernels.some((k) => k.macs === null) ? null : l.kernels.reduce((a, k) => a + k.macs!, 0);
    return {
      layer: l.layer,
      op: l.op,
      macs,
      params: l.kernels.reduce((a, k) => a + k.params, 0),
      weightBits: Math.max(...l.kernels.map((k) => bitsOf(k.quantizer))),
      activationBits,
      bops: layerBops,
      bytes: layerBytes,
    };
  });
  for (const p of model.otherParams) bytes += (p.params * bitsOf(p.quantizer)) / 8;
  return { bops, bytes, layers };
}

/** The bits of each quantizer as the simulation has them (32 when bypassed). */
export function simBits(sim: QuantSim): BitsOf {
  return (name) => {
    if (name === undefined) return 32;
    const s = sim.settingsOf(name);
    return s.enabled ? s.bitwidth : 32;
  };
}

/** `modelCost`'s result: the cost, with its `step` and a reading. */
export interface ModelCostResult extends ModelCost {
  step: "model-cost";
  diagnosis: string;
}

/** BOPs and size of a simulation as configured (e.g. `modelCost(sim.with(result.chosen))`). */
export function modelCost(sim: QuantSim): ModelCostResult {
  const cost = costOf(costModel(sim), simBits(sim));
  const heaviest = cost.layers.reduce<LayerCost | undefined>((a, l) => (!a || l.bytes > a.bytes ? l : a), undefined);
  const diagnosis =
    `${(cost.bytes / 1024).toFixed(1)} KiB of weights as quantized` +
    (cost.bops === null ? " (bit operations unknown: some layer's output size is not fixed)" : `, ${(cost.bops / 1e9).toPrecision(3)} G bit operations per example`) +
    (heaviest && cost.bytes > 0 ? `; the largest layer is ${heaviest.layer} (${((100 * heaviest.bytes) / cost.bytes).toFixed(0)} % of the bytes, ${heaviest.weightBits}-bit weights).` : ".");
  return { step: "model-cost", ...cost, diagnosis };
}
