import * as tf from "@tensorflow/tfjs";
import { count } from "./fix-result";
import { Dataset, requireData } from "../data/types";
import { Graph } from "../graph/graph";
import { getOp } from "../graph/registry";
import { GraphNode, Params } from "../graph/types";
import { QuantizerKind } from "../quant/placement";
import { QuantSim } from "../quant/quantsim";
import { NodeHook } from "../graph/forward";
import { runDataset } from "../runner/run-dataset";

/** Per-output-channel means of a layer's pre-activation output, FP32 and simulated: what bias correction measures, and meanShifts reports. */
export const CORRECTABLE = new Set(["conv2d", "depthwiseConv2d", "conv1d", "dense"]);
/** Ops that keep each channel's expected value: E[x] passes through them unchanged. */
export const MEAN_PRESERVING = new Set(["identity", "globalAvgPool", "avgPool2d"]);


/**
 * The simulation's values of a layer's parameters of the given kinds (weights,
 * and biases when quantized), as its own forward pass uses them: new tensors the
 * caller disposes. Parameters left unquantized are not in the result.
 */
export function quantizedParams(sim: QuantSim, layer: string, kinds: readonly QuantizerKind[]): Params {
  const out: Params = {};
  for (const site of sim.sites) {
    if (site.node !== layer || !kinds.includes(site.kind)) continue;
    // sim.quantizedParam: the simulation's rounding, seed and frozen weights; a clone the caller may dispose.
    const q = sim.quantizedParam(site.name);
    if (q) out[site.param!] = tf.clone(q);
  }
  return out;
}

/** The layer's output before its fused activation. */
function preActivation(layer: GraphNode, inputs: tf.Tensor[], params: Params): tf.Tensor {
  return getOp(layer.op).run({ ...layer, attrs: { ...layer.attrs, activation: "linear" } }, inputs, params);
}


/**
 * What `measureMeans` averages per output channel at each layer:
 * - "fp32": the graph's pre-activation output;
 * - "quantized": the simulation's, from its quantized inputs and parameters;
 * - "own shift": the simulation's minus FP32 parameters on the same quantized inputs.
 */
export type Measure = "fp32" | "quantized" | "own shift";

/**
 * Per layer, the per-output-channel mean over `data` (all examples and
 * positions) of the measured quantity, in one pass: a hook keeps a reference to
 * every node's output while its readers may still run, and at each layer
 * computes the layer's pre-activation from its inputs.
 */
export async function measureMeans(model: Graph | QuantSim, layers: readonly GraphNode[], data: Dataset, measure: Measure): Promise<Map<string, Float64Array>> {
  const wanted = new Map(layers.map((l) => [l.name, l]));
  const sums = new Map<string, Float64Array>();
  const counts = new Map<string, number>();
  const quantized = new Map<string, Params>();
  const seen = new Map<string, tf.Tensor>();
  const hook: NodeHook = (node, out) => {
    seen.set(node.name, out);
    const layer = wanted.get(node.name);
    if (!layer) return;
    const inputs = layer.inputs.map((name) => seen.get(name)!);
    let value: tf.Tensor;
    if (measure === "fp32") value = layer.attrs.activation === "linear" ? out : preActivation(layer, inputs, layer.params);
    else {
      const q = preActivation(layer, inputs, { ...layer.params, ...quantized.get(layer.name)! });
      value = measure === "quantized" ? q : tf.sub(q, preActivation(layer, inputs, layer.params));
    }
    const channels = value.shape[value.rank - 1];
    const sum = tf.sum(value, Array.from({ length: value.rank - 1 }, (_, i) => i)).dataSync();
    const acc = sums.get(layer.name) ?? new Float64Array(channels);
    sum.forEach((v, i) => (acc[i] += v));
    sums.set(layer.name, acc);
    counts.set(layer.name, (counts.get(layer.name) ?? 0) + value.size / channels);
  };
  // Every target layer is an output: on a model with several output branches, no single layer is downstream of all.
  const outputs = layers.map((l) => l.name);
  const task = `bias correction: ${measure} means`;
  try {
    if (model instanceof QuantSim) {
      for (const l of layers) quantized.set(l.name, quantizedParams(model, l.name, ["weight", "bias"]));
      // The simulation's own graph holds the parameters it quantizes.
      for (const l of layers) wanted.set(l.name, model.graph.node(l.name));
      await model.run(data, { hook, outputs, task });
    } else {
      await runDataset(model, data, { hook, outputs, task });
    }
  } finally {
    for (const p of quantized.values()) tf.dispose(Object.values(p));
    seen.clear();
  }
  return new Map([...sums].map(([name, s]) => [name, s.map((v) => v / counts.get(name)!)]));
}

/** One row of `meanShifts`. */
export interface MeanShiftRow {
  layer: string;
  /** Per output channel: E[simulated pre-activation] − E[FP32 pre-activation] over the data. */
  shifts: number[];
  meanAbsShift: number;
  maxAbsShift: number;
}

/**
 * The biased part of the quantization error at each conv/dense layer: the
 * per-output-channel mean of the simulation's pre-activation output minus
 * FP32's, over `data` (two passes). What empirical bias correction drives to 0.
 * The simulation is used as it is (activation quantizers included): pass
 * `sim.with(...)` with them bypassed to see the weights' part alone. FP32 is
 * `reference` (same node names), by default the simulation's own graph; to
 * judge a corrected model, whose biases moved, give the original graph.
 */
export interface MeanShiftsResult {
  step: "mean-shifts";
  /** One row per layer, in execution order. */
  rows: MeanShiftRow[];
  diagnosis: string;
}

export async function meanShifts(sim: QuantSim, options: { data: Dataset; layers?: string[]; reference?: Graph }): Promise<MeanShiftsResult> {
  const data = requireData("meanShifts", options);
  const layers = options.layers ? options.layers.map((n) => sim.graph.node(n)) : sim.graph.nodes.filter((n) => CORRECTABLE.has(n.op));
  const bad = layers.find((n) => !CORRECTABLE.has(n.op));
  if (bad) throw new Error(`meanShifts: layer "${bad.name}" is a ${bad.op}, not a conv/dense layer`);
  if (layers.length === 0) throw new Error(`meanShifts: "${sim.graph.name}" has no conv or dense layer`);
  const copy = sim.with({});
  try {
    const reference = options.reference ?? sim.graph;
    const fp = await measureMeans(reference, layers.map((l) => reference.node(l.name)), data, "fp32");
    const q = await measureMeans(copy, layers, data, "quantized");
    const rows = layers.map((l) => {
      const shifts = Array.from(q.get(l.name)!, (v, i) => v - fp.get(l.name)![i]);
      const abs = shifts.map(Math.abs);
      return { layer: l.name, shifts, meanAbsShift: abs.reduce((a, b) => a + b, 0) / abs.length, maxAbsShift: Math.max(...abs) };
    });
    const worst = rows.reduce((a, b) => (b.maxAbsShift > a.maxAbsShift ? b : a));
    const diagnosis = `Quantization moves the mean output of ${worst.layer} most: by up to ${worst.maxAbsShift.toPrecision(3)} in one channel (mean |shift| ${worst.meanAbsShift.toPrecision(3)}), over ${count(rows.length, "layer")}. Bias correction subtracts these shifts from the biases.`;
    return { step: "mean-shifts", rows, diagnosis };
  } finally {
    copy.dispose();
  }
}
