import * as tf from "@tensorflow/tfjs";
import { count, disposable, FixResult, scoresSentence } from "./fix-result";
import { EvaluationOptions } from "../analysis/evaluation";
import { Dataset } from "../data/types";
import { Graph } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";
import { ProgressFn } from "../progress";
import { FrozenWeight, QuantSim } from "../quant/quantsim";
import { BeforeAfter, scoreBeforeAfter } from "./before-after";
import { CORRECTABLE, Measure, measureMeans } from "./bias-correction-means";
import { analyticalShift, clippedNormalMean, inputMeanFromBatchNorm } from "./bias-correction-analytical";

export { meanShifts } from "./bias-correction-means";
export type { MeanShiftRow, MeanShiftsResult } from "./bias-correction-means";
export { clippedNormalMean, inputMeanFromBatchNorm } from "./bias-correction-analytical";

export type BiasCorrectionMethod = "empirical" | "analytical";

/**
 * How empirical correction walks the layers:
 * - "layer-by-layer" (AIMET): layer k is measured with layers 1..k−1 already
 *   corrected, so after correction every layer's mean matches FP32 exactly on
 *   the data. One FP32 pass, then one pass per layer over the part of the model
 *   up to it (about layers/2 full passes).
 * - "one-pass": one pass of the uncorrected simulation; each layer is corrected
 *   by the mean shift its own quantized weights add to the inputs it really
 *   receives, E[W_q x_q] − E[W x_q] (no double counting of shifts inherited from
 *   earlier layers, which their own corrections remove). Cheaper; it misses the
 *   mean shifts that nonlinearities make out of upstream noise (a ReLU turns
 *   zero-mean noise into a positive shift), which dominate when weight noise is
 *   large: on the example model at 4-bit per-tensor weights without CLE it
 *   lowers accuracy, where layer-by-layer raises it (after CLE both help).
 */
export type EmpiricalSchedule = "layer-by-layer" | "one-pass";

export interface BiasCorrectionOptions {
  method: BiasCorrectionMethod;
  /** Calibration data: required by "empirical"; with "analytical" it only recalibrates the new simulation. */
  data?: Dataset;
  /** Layers to correct (conv2d, depthwiseConv2d, conv1d, dense); default: all of them. */
  layers?: string[];
  /** Empirical only; default "layer-by-layer". */
  schedule?: EmpiricalSchedule;
  onProgress?: ProgressFn;
  /** Scores the simulation before and after (`scores` in the result). */
  evaluation?: EvaluationOptions;
}

export interface CorrectedLayer {
  layer: string;
  method: BiasCorrectionMethod;
  /** Mean over output channels of |shift|, the per-channel mean output shift subtracted from the bias. */
  meanAbsShift: number;
  maxAbsShift: number;
}

export interface BiasCorrectionResult extends FixResult {
  step: "bias-correction";
  /** A new simulation over `graph`, with the input simulation's settings: the caller disposes it. */
  sim: QuantSim;
  /**
   * The corrected graph (new tensors, owned by the caller: dispose it after
   * `sim`). Layers corrected without a bias get one.
   */
  graph: Graph;
  corrected: CorrectedLayer[];
  skipped: { layer: string; reason: string }[];
  /**
   * Whether `sim` was calibrated again on `data` (corrected biases move the
   * activations). Without data (analytical), `sim` keeps the input's activation
   * ranges: the shifts are about one weight-quantization error, small next to
   * those ranges; calibrate it yourself to refresh them.
   */
  recalibrated: boolean;
  scores?: BeforeAfter;
}

/** Layers whose bias can absorb a per-output-channel shift. */

/**
 * Bias correction (Nagel et al., "Data-Free Quantization Through Weight
 * Equalization and Bias Correction", 2019, §4.1; AIMET `bias_correction`).
 * Quantizing weights shifts each output channel's mean by
 * E[W_q x] − E[W x] = (W_q − W)·E[x]; subtracting that shift from the bias
 * removes the biased part of the weight error.
 *
 * 1. Choose the layers: conv/dense layers whose weights are quantized below 32
 *    bits (32-bit or bypassed weights have nothing to correct: skipped).
 * 2. Measure each layer's shift:
 *    - "empirical": from `data`, comparing the layer's per-channel mean
 *      pre-activation output (before its fused activation and output quantizer)
 *      in FP32 with that of the simulation, in the order of `schedule`. As AIMET
 *      does, the simulation measured has its activation quantizers bypassed, so
 *      the correction is for weight quantization only. Zero padding is
 *      accounted for exactly (these are real outputs).
 *    - "analytical": E[x] from the previous layer's BatchNorm statistics N(β, γ²)
 *      passed through its ReLU / ReLU6 / linear activation (clippedNormalMean),
 *      then (W_q − W)·E[x] over input channels and kernel positions (zero
 *      padding ignored, as in AIMET). Layers whose input has no such statistics
 *      (the first layer, after an add, ...) are skipped, as AIMET does. Like
 *      "one-pass", it corrects each layer's own error only, and it takes E[x]
 *      from training-time statistics: it helps once CLE has tamed the weight
 *      noise, and can hurt before.
 * 3. Subtract it from a copy of the bias (the input graph and simulation are
 *    left as they were).
 * 4. A new simulation over the corrected graph (`sim.withGraph`, AdaRound's
 *    frozen weights kept), calibrated again on `data` when given.
 * 5. With `evaluation`, score before and after.
 *
 * Ownership: the input simulation and its graph are not changed (nor do they
 * cache anything). The result's `graph` holds new tensors and `sim` runs over
 * it: the caller disposes both, `sim` first.
 */
export async function biasCorrection(sim: QuantSim, options: BiasCorrectionOptions): Promise<BiasCorrectionResult> {
  const { method, data } = options;
  if (method !== "empirical" && method !== "analytical") {
    throw new Error(`biasCorrection: method must be "empirical" or "analytical", got ${JSON.stringify(method)}`);
  }
  if (method === "empirical" && !data) {
    throw new Error('biasCorrection: the empirical method needs calibration data (options.data, e.g. toDataset("mnist:0:256")); the analytical one needs none');
  }
  const schedule = options.schedule ?? "layer-by-layer";
  if (schedule !== "layer-by-layer" && schedule !== "one-pass") {
    throw new Error(`biasCorrection: schedule must be "layer-by-layer" or "one-pass", got ${JSON.stringify(schedule)}`);
  }
  const source = sim.graph;
  // 1. Layers.
  const { targets, skipped } = chooseLayers(sim, options.layers);
  const frozen = frozenWeights(sim);
  const params = new Map(source.nodes.map((n) => [n.name, Object.fromEntries(Object.entries(n.params).map(([k, t]) => [k, tf.clone(t)])) as Params]));
  const current = () =>
    new Graph({ name: source.name, nodes: source.nodes.map((n) => ({ ...n, params: params.get(n.name)!, attrs: { ...n.attrs } })), inputs: [...source.inputs], outputs: [...source.outputs] });
  const corrected: CorrectedLayer[] = [];
  const start = Date.now();
  const correct = (layer: GraphNode, shift: ArrayLike<number>) => {
    const p = params.get(layer.name)!;
    const bias = tf.tidy(() => (p.bias ? tf.sub(p.bias, tf.tensor1d(Array.from(shift))) : tf.neg(tf.tensor1d(Array.from(shift)))));
    p.bias?.dispose();
    p.bias = bias;
    const abs = Array.from(shift, Math.abs);
    corrected.push({ layer: layer.name, method, meanAbsShift: abs.reduce((a, b) => a + b, 0) / abs.length, maxAbsShift: Math.max(...abs) });
    options.onProgress?.({ task: `bias correction (${method})`, done: corrected.length, total: targets.length, unit: "layers", elapsedMs: Date.now() - start, detail: layer.name });
  };
  let next: QuantSim | undefined;
  let result: Graph | undefined;
  try {
    // 2–3. Shifts, subtracted from the biases.
    if (targets.length === 0) {
      // Nothing is quantized below 32 bits (or every layer was left out): the graph stays as it was.
    } else if (method === "analytical") {
      // A copy quantizes the weights, so the caller's simulation caches nothing.
      const quantizing = sim.with({});
      try {
        for (const layer of targets) {
          const input = inputMeanFromBatchNorm(source, layer);
          if ("reason" in input) skipped.push({ layer: layer.name, reason: input.reason });
          else correct(layer, analyticalShift(quantizing, layer, input.mean));
        }
      } finally {
        quantizing.dispose();
      }
    } else if (schedule === "one-pass") {
      const measured = rebase(weightsOnly(sim), current(), frozen, true);
      try {
        const shifts = await measureMeans(measured, targets, data!, "own shift");
        for (const layer of targets) correct(layer, shifts.get(layer.name)!);
      } finally {
        measured.dispose();
      }
    } else {
      const reference = await measureMeans(source, targets, data!, "fp32");
      const measuring = weightsOnly(sim);
      for (const layer of targets) {
        // Layers before this one are already corrected in `current()`.
        const step = rebase(measuring, current(), frozen, true);
        try {
          const quantized = (await measureMeans(step, [layer], data!, "quantized")).get(layer.name)!;
          const fp = reference.get(layer.name)!;
          correct(layer, quantized.map((q, i) => q - fp[i]));
        } finally {
          step.dispose();
        }
      }
    }
    // 4. The simulation over the corrected graph: the source with the new biases, as a recorded edit.
    const biases = new Map(corrected.map((c) => [c.layer, { bias: params.get(c.layer)!.bias }]));
    const graph = source.edit({ by: "bias-correction", params: biases });
    // The working copies served the measurements; the new graph owns the corrected biases and clones of the rest.
    for (const [name, p] of params) for (const [key, t] of Object.entries(p)) if (!(key === "bias" && biases.has(name))) t.dispose();
    params.clear();
    result = graph;
    next = rebase(sim, graph, frozen, !data);
    if (data) next = await next.calibrate(data, { onProgress: options.onProgress });
    // 5. Scores.
    const scores = options.evaluation ? await scoreBefore(sim, next, options.evaluation) : undefined;
    const order = new Map(source.nodes.map((n, i) => [n.name, i]));
    skipped.sort((a, b) => order.get(a.layer)! - order.get(b.layer)!);
    const diagnosis =
      (corrected.length === 0
        ? "No bias was corrected: no enabled weight quantizer below 32 bits on a conv, depthwise or dense layer."
        : `Subtracted the mean output shift that weight quantization causes from the biases of ${count(corrected.length, "layer")} (${method}); the largest shift was ${Math.max(...corrected.map((c) => c.maxAbsShift)).toPrecision(3)} in ${corrected.reduce((a, b) => (b.maxAbsShift > a.maxAbsShift ? b : a)).layer}.`) +
      (skipped.length ? ` ${count(skipped.length, "layer")} skipped (${skipped[0].layer}: ${skipped[0].reason}).` : "") +
      scoresSentence(scores);
    return disposable({ step: "bias-correction" as const, sim: next, graph, corrected, skipped, recalibrated: data !== undefined, ...(scores ? { scores } : {}), diagnosis }, next, graph);
  } catch (err) {
    next?.dispose();
    result?.dispose();
    for (const p of params.values()) tf.dispose(Object.values(p));
    throw err;
  }
}

/** Scores with a copy of the caller's simulation, which is left as it was (no cached quantized weights). */
async function scoreBefore(sim: QuantSim, next: QuantSim, evaluation: EvaluationOptions): Promise<BeforeAfter> {
  const before = sim.with({});
  try {
    return await scoreBeforeAfter({ before, after: next }, { ...evaluation, step: "bias correction" });
  } finally {
    before.dispose();
  }
}

/** Targets in execution order, and the layers left out with the reason. */
function chooseLayers(sim: QuantSim, names: readonly string[] | undefined): { targets: GraphNode[]; skipped: { layer: string; reason: string }[] } {
  const graph = sim.graph;
  if (names) {
    for (const name of names) {
      const node = graph.node(name);
      if (!CORRECTABLE.has(node.op)) throw new Error(`biasCorrection: layer "${name}" is a ${node.op}; only conv2d, depthwiseConv2d, conv1d and dense layers have a bias to correct`);
    }
  }
  const wanted = names ? new Set(names) : undefined;
  const candidates = graph.nodes.filter((n) => (wanted ? wanted.has(n.name) : CORRECTABLE.has(n.op) || n.op === "separableConv2d"));
  if (candidates.length === 0) throw new Error(`biasCorrection: "${graph.name}" has no conv or dense layer to correct`);
  const targets: GraphNode[] = [];
  const skipped: { layer: string; reason: string }[] = [];
  for (const node of candidates) {
    const reason = whyNotCorrected(sim, node);
    if (reason) skipped.push({ layer: node.name, reason });
    else targets.push(node);
  }
  return { targets, skipped };
}

function whyNotCorrected(sim: QuantSim, node: GraphNode): string | undefined {
  if (node.op === "separableConv2d") return "separable convolution: not supported (its depthwise and pointwise kernels share one bias)";
  const sites = sim.sites.filter((s) => s.node === node.name && s.kind !== "activation");
  const weights = sites.filter((s) => s.kind === "weight");
  const stochastic = sites.find((s) => sim.settingsOf(s.name).enabled && sim.settingsOf(s.name).rounding === "stochastic" && !sim.frozenWeightOf(s.name));
  if (stochastic) return `"${stochastic.name}" rounds stochastically: only the simulation knows its values (use rounding "nearest")`;
  const quantized = weights.filter((s) => sim.encodingOf(s.name) !== null);
  if (quantized.length === 0) return "weights not quantized (quantizer bypassed): nothing to correct";
  if (quantized.every((s) => sim.settingsOf(s.name).bitwidth >= 32)) return "32-bit weights: their quantization is the identity up to float32 rounding, nothing to correct";
  return undefined;
}

/** AdaRound's on-grid weights, which `withGraph` drops: the corrected graph keeps the same kernels, so they still apply. */
function frozenWeights(sim: QuantSim): Map<string, FrozenWeight> {
  const out = new Map<string, FrozenWeight>();
  for (const s of sim.sites) {
    const w = s.kind === "activation" ? undefined : sim.frozenWeightOf(s.name);
    if (w) out.set(s.name, w);
  }
  return out;
}

function rebase(sim: QuantSim, graph: Graph, frozen: ReadonlyMap<string, FrozenWeight>, keepStats: boolean): QuantSim {
  const next = sim.withGraph(graph, { keepStats });
  return frozen.size ? next.withFrozenWeights(frozen) : next;
}

/** The simulation with its activation quantizers bypassed: weight (and bias) quantization only, as AIMET measures. */
function weightsOnly(sim: QuantSim): QuantSim {
  const activations = sim.sites.filter((s) => s.kind === "activation");
  return sim.with(Object.fromEntries(activations.map((s) => [s.name, { enabled: false }])));
}
