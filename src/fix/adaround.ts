import * as tf from "@tensorflow/tfjs";
import { count, disposable, FixResult, scoresSentence } from "./fix-result";
import { EvaluationOptions } from "../analysis/evaluation";
import { takeExamples } from "../data/take";
import { Dataset, requireData } from "../data/types";
import { Graph } from "../graph/graph";
import { ActivationAttrs, applyActivation } from "../graph/ops/activation";
import { Conv2dAttrs } from "../graph/ops/config";
import { getOp } from "../graph/registry";
import { GraphNode, Params } from "../graph/types";
import { ProgressFn } from "../progress";
import { forward } from "../runner/forward";
import { forEachBatch } from "../runner/for-each-batch";
import { Encoding, roundHalfEven } from "../quant/encoding";
import { mulberry32 } from "../quant/fake-quant-kernel";
import { QuantizerSite } from "../quant/placement";
import { FrozenWeight, QuantSim } from "../quant/quantsim";
import { registerWasmGradientKernels } from "../train/wasm-gradient-kernels";
import { annealedBeta, initialV, inWarmStart, reconstructionLoss, rectifiedSigmoid, roundingLoss } from "./adaround-loss";
import { BeforeAfter, scoreBeforeAfter } from "./before-after";
import { CurvePoint } from "./training-curve";

/** Where the layer being optimized takes its inputs from. */
export type AdaroundInputs = "weights-quantized" | "simulation";

export interface AdaroundOptions {
  /** The examples whose layer inputs and FP32 targets are cached (AIMET's unlabeled data set). */
  data: Dataset;
  /** Adam steps per layer. Default (AIMET): 10 000, or 15 000 when some weight quantizer has fewer than 8 bits. */
  iterations?: number;
  /** λ, the weight of the rounding regularizer against the reconstruction error. Default 0.01. */
  regularization?: number;
  /** β annealed from [0] to [1] (cosine) after the warm start; must not increase. Default [20, 2]. */
  betaRange?: [number, number];
  /** Share of the iterations, first, without the rounding regularizer. Default 0.2. */
  warmStart?: number;
  /**
   * Adam's step size. Default 1e-3 (torch.optim.Adam's default, and AIMET's Keras
   * code), made for thousands of steps. For a short schedule take a larger one: on
   * the example model, 100 steps at 1e-2 reach what 2000 steps at 1e-3 do.
   */
  learningRate?: number;
  /** Cached examples drawn (without replacement) per step. Default 32 (AIMET's BATCH_SIZE). */
  batchSize?: number;
  /** Examples whose layer inputs and targets are cached per layer. Default 512 (AIMET recommends up to 2000). */
  examples?: number;
  /** Only these layers (node names, or weight quantizer names), in execution order; others keep rounding to nearest. */
  layers?: string[];
  /** Seeds the choice of each step's examples: the same seed gives bit-identical weights. Default 0. */
  seed?: number;
  /**
   * "weights-quantized" (default, AIMET's): the simulation with activation quantizers
   * off and every earlier weight quantized (AdaRounded when done); "simulation": the
   * simulation as configured, activation quantizers included. Targets are always the
   * FP32 model's outputs of the layer.
   */
  inputs?: AdaroundInputs;
  /** Upper bound on one layer's cached inputs and targets; fewer examples are cached when they would not fit. Default 256. */
  maxCacheMB?: number;
  /** A curve point (reconstruction, rounding, total loss) every this many iterations. Default: about 100 points per layer. */
  curveEvery?: number;
  /** Called after each layer. */
  onProgress?: ProgressFn;
  /** Called with each curve point as it is measured (a live view can draw them). */
  onCurve?: (point: CurvePoint) => void;
  /** Score the simulation before and after (a built-in metric over data, or evaluate). */
  evaluation?: EvaluationOptions;
}

/** The hyper-parameters used, every default filled in. */
export interface ResolvedAdaroundOptions {
  iterations: number;
  regularization: number;
  betaRange: [number, number];
  warmStart: number;
  learningRate: number;
  batchSize: number;
  examples: number;
  layers: string[];
  seed: number;
  inputs: AdaroundInputs;
  maxCacheMB: number;
  curveEvery: number;
}

export interface AdaroundLayerRow {
  layer: string;
  quantizer: string;
  iterations: number;
  /** Examples cached for this layer (fewer than asked when maxCacheMB stopped it). */
  examples: number;
  /** MSE per output value of the layer (after its activation) vs FP32, rounding to nearest, on the cached examples. */
  reconstructionBefore: number;
  /** The same with AdaRound's hard rounding. */
  reconstructionAfter: number;
  /** Share of the weights rounded the other way than to nearest. */
  flippedShare: number;
  elapsedMs: number;
}

export interface AdaroundSkip {
  layer: string;
  quantizer: string;
  reason: string;
}

export interface AdaroundResult extends FixResult {
  step: "adaround";
  /** The same simulation with the AdaRounded weights frozen in (the caller disposes it). */
  sim: QuantSim;
  layers: AdaroundLayerRow[];
  /** Enabled weight quantizers AdaRound does not apply to, and why. */
  skipped: AdaroundSkip[];
  curve: CurvePoint[];
  options: ResolvedAdaroundOptions;
  scores?: BeforeAfter;
}

/** Layers whose output is linear in the weight: AdaRound's reconstruction applies. */
const SUPPORTED = new Set(["conv2d", "depthwiseConv2d", "dense", "conv1d", "separableConv2d"]);
const WHY_NOT: Record<string, string> = {
  embedding: "a lookup table: each output is one weight, so rounding to nearest already minimizes the reconstruction error",
};

/**
 * AdaRound (Nagel et al., ICML 2020) as AIMET implements it: layer by layer, in
 * execution order, learn for each weight whether to round down or up, so that
 * the layer's output on real data stays close to FP32's, instead of rounding each
 * weight to nearest on its own.
 *
 * 1. Pick the enabled weight quantizers of conv2d / depthwiseConv2d / conv1d /
 *    dense / separableConv2d layers (both separable kernels, one after the other);
 *    the encodings stay the simulation's (per tensor or per channel).
 * 2. Per layer: cache, for `examples` examples, the layer's input from the
 *    quantized model run up to it (AIMET: activation quantizers off, earlier
 *    weights quantized with the roundings already chosen) and the FP32 model's
 *    output of the layer as the target. Like AIMET, the activation that follows
 *    the layer (its own, or the activation node that alone reads it) is applied
 *    to both before comparing.
 * 3. Optimize V (h(V) = rectified sigmoid, started at frac(W/s)) with Adam on
 *    W̃ = s·clamp(floor(W/s) + h(V), grid): reconstruction loss, plus the rounding
 *    regularizer after the warm start with β annealed (see adaround-loss.ts).
 * 4. Hard rounding: floor(W/s) + [h(V) ≥ 0.5], on the grid; later layers see it.
 *
 * The result is the simulation with these weights frozen in (its FP32 graph is
 * untouched); activation encodings are not needed, so the simulation need not be
 * calibrated unless `inputs: "simulation"` or evaluation needs it.
 *
 * Where this differs from AIMET: the cache holds `examples` examples, fewer when
 * a layer's inputs and outputs would exceed `maxCacheMB` (AIMET caches its
 * batches, falling back to re-running the model); the following activation is
 * applied only when it is the layer's one reader (AIMET takes the first reader);
 * reconstruction errors are reported over all cached examples (AIMET logs one
 * batch's); and `inputs: "simulation"` is an addition.
 */
export async function adaround(sim: QuantSim, options: AdaroundOptions): Promise<AdaroundResult> {
  const data = requireData("adaround", options);
  const start = Date.now();
  // 1. Options and the quantizers to optimize, checked before any work.
  const { targets, skipped } = pickTargets(sim, options.layers);
  const resolved = resolveOptions(sim, options, targets);
  registerWasmGradientKernels();

  // 2. The simulation the layers' inputs come from.
  const base = resolved.inputs === "simulation" ? sim.with({}) : withoutActivationQuantizers(sim);
  const frozen = new Map<string, FrozenWeight>();
  const rows: AdaroundLayerRow[] = [];
  const curve: CurvePoint[] = [];
  try {
    for (const [index, site] of targets.entries()) {
      const layerStart = Date.now();
      const inputSim = base.withFrozenWeights(frozen);
      try {
        const { row, weight } = await adaroundLayer(inputSim, site, data, resolved, index, (p) => {
          curve.push(p);
          options.onCurve?.(p);
        });
        frozen.set(site.name, weight);
        rows.push({ ...row, elapsedMs: Date.now() - layerStart });
      } catch (err) {
        throw new Error(`adaround: layer "${site.node}" (${site.name}): ${(err as Error).message}`);
      } finally {
        inputSim.dispose();
      }
      const last = rows[rows.length - 1];
      options.onProgress?.({
        task: "adaround",
        done: index + 1,
        total: targets.length,
        unit: "layers",
        elapsedMs: Date.now() - start,
        detail: `${site.name}: MSE ${last.reconstructionBefore.toPrecision(3)} → ${last.reconstructionAfter.toPrecision(3)}`,
      });
    }
  } finally {
    base.dispose();
  }

  // 3. The user's simulation with the chosen roundings.
  const result = sim.withFrozenWeights(frozen);
  let scores: BeforeAfter | undefined;
  if (options.evaluation) {
    const before = sim.with({});
    try {
      scores = await scoreBeforeAfter("adaround", before, result, options.evaluation);
    } catch (err) {
      result.dispose();
      throw err;
    } finally {
      before.dispose();
    }
  }
  const improved = rows.filter((r) => r.reconstructionAfter < r.reconstructionBefore).length;
  const diagnosis =
    `AdaRound chose, weight by weight, whether to round up or down in ${count(rows.length, "layer")} to reconstruct each layer's FP32 output; ${improved} of them now reconstruct it better than rounding to nearest.` +
    (skipped.length ? ` ${count(skipped.length, "weight quantizer")} left to rounding to nearest (${skipped[0].quantizer}: ${skipped[0].reason}).` : "") +
    scoresSentence(scores);
  return disposable({ step: "adaround" as const, sim: result, layers: rows, skipped, curve, options: resolved, ...(scores ? { scores } : {}), diagnosis }, result);
}

/** The hyper-parameters `adaround(sim, options)` would use, every default filled in (checked, without running anything). */
export function resolveAdaroundOptions(sim: QuantSim, options: Partial<AdaroundOptions> = {}): ResolvedAdaroundOptions {
  return resolveOptions(sim, options, pickTargets(sim, options.layers).targets);
}

/** The weight quantizers to AdaRound, in execution order, and the enabled ones left out with a reason. */
function pickTargets(sim: QuantSim, layers: readonly string[] | undefined): { targets: QuantizerSite[]; skipped: AdaroundSkip[] } {
  const enabled = sim.sites.filter((s) => s.kind === "weight" && sim.encodingOf(s.name) !== null);
  const skipped = enabled
    .filter((s) => !SUPPORTED.has(sim.graph.node(s.node).op))
    .map((s) => {
      const op = sim.graph.node(s.node).op;
      return { layer: s.node, quantizer: s.name, reason: WHY_NOT[op] ?? `AdaRound does not support ${op} layers` };
    });
  const supported = enabled.filter((s) => SUPPORTED.has(sim.graph.node(s.node).op));
  if (layers === undefined) {
    if (supported.length === 0) {
      throw new Error(
        `adaround: the simulation has no enabled weight quantizer on a conv2d, depthwiseConv2d, conv1d, dense or separableConv2d layer` +
          (enabled.length ? ` (enabled weight quantizers: ${enabled.map((s) => s.name).join(", ")})` : " (are the weight quantizers disabled?)"),
      );
    }
    return { targets: supported, skipped };
  }
  if (!Array.isArray(layers) || layers.length === 0 || layers.some((l) => typeof l !== "string")) {
    throw new Error(`adaround: layers must be a non-empty list of layer or weight quantizer names, got ${JSON.stringify(layers)}`);
  }
  const chosen = new Set<QuantizerSite>();
  const candidates = supported.map((s) => s.node).filter((n, i, all) => all.indexOf(n) === i);
  const hint = candidates.length
    ? `layers AdaRound can optimize: ${candidates.slice(0, 8).join(", ")}${candidates.length > 8 ? ", ..." : ""}`
    : "no layer has an enabled weight quantizer AdaRound supports";
  for (const name of layers) {
    const bySite = supported.filter((s) => s.name === name);
    const byNode = supported.filter((s) => s.node === name);
    const picked = bySite.length ? bySite : byNode;
    if (picked.length === 0) {
      const node = sim.graph.has(name) ? sim.graph.node(name) : undefined;
      const site = sim.sites.find((s) => s.name === name);
      let why: string;
      if (!node && !site) why = `no layer or quantizer is named "${name}"`;
      else if (site && site.kind !== "weight") why = `"${name}" quantizes ${site.kind === "activation" ? "an activation" : "a bias"}, not a weight`;
      else {
        const n = node ?? sim.graph.node(site!.node);
        const own = sim.sites.filter((s) => s.node === n.name && s.kind === "weight");
        const skip = skipped.find((s) => s.layer === n.name);
        why = skip
          ? `layer "${n.name}" (${n.op}) is not supported: ${skip.reason}`
          : own.length === 0
            ? `layer "${n.name}" (${n.op}) has no weight quantizer`
            : `layer "${n.name}" has its weight quantizer disabled (${own.map((s) => s.name).join(", ")})`;
      }
      throw new Error(`adaround: ${why} (${hint})`);
    }
    for (const s of picked) {
      if (chosen.has(s)) throw new Error(`adaround: "${name}" is listed twice in layers`);
      chosen.add(s);
    }
  }
  return { targets: supported.filter((s) => chosen.has(s)), skipped };
}

function resolveOptions(sim: QuantSim, o: Partial<AdaroundOptions>, targets: readonly QuantizerSite[]): ResolvedAdaroundOptions {
  const bad = (name: string, value: unknown, expected: string): never => {
    throw new Error(`adaround: invalid ${name}: ${JSON.stringify(value)} (expected ${expected})`);
  };
  const integer = (name: string, v: unknown, min: number): number =>
    typeof v === "number" && Number.isInteger(v) && v >= min ? v : bad(name, v, `an integer ≥ ${min}`);
  const positive = (name: string, v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : bad(name, v, "a positive number"));

  const lowestBits = Math.min(...targets.map((s) => sim.settingsOf(s.name).bitwidth));
  const iterations = integer("iterations", o.iterations ?? (lowestBits < 8 ? 15000 : 10000), 0);
  const regularization = o.regularization ?? 0.01;
  if (typeof regularization !== "number" || !Number.isFinite(regularization) || regularization < 0) bad("regularization", regularization, "a number ≥ 0");
  const betaRange = o.betaRange ?? [20, 2];
  if (!Array.isArray(betaRange) || betaRange.length !== 2 || !betaRange.every((b) => typeof b === "number" && Number.isFinite(b) && b > 0)) {
    bad("betaRange", betaRange, "[start, end], two positive numbers");
  }
  if (betaRange[0] < betaRange[1]) bad("betaRange", betaRange, "a decreasing range [start, end] with start ≥ end, like AIMET's [20, 2]");
  const warmStart = o.warmStart ?? 0.2;
  if (typeof warmStart !== "number" || !(warmStart >= 0 && warmStart < 1)) bad("warmStart", warmStart, "a share of the iterations in [0, 1)");
  const learningRate = positive("learningRate", o.learningRate ?? 1e-3);
  const batchSize = integer("batchSize", o.batchSize ?? 32, 1);
  const examples = integer("examples", o.examples ?? 512, 1);
  const seed = o.seed ?? 0;
  if (typeof seed !== "number" || !Number.isInteger(seed)) bad("seed", seed, "an integer");
  const inputs = o.inputs ?? "weights-quantized";
  if (inputs !== "weights-quantized" && inputs !== "simulation") bad("inputs", inputs, `"weights-quantized" or "simulation"`);
  const maxCacheMB = positive("maxCacheMB", o.maxCacheMB ?? 256);
  const curveEvery = integer("curveEvery", o.curveEvery ?? Math.max(1, Math.ceil(iterations / 100)), 1);
  return {
    iterations,
    regularization,
    betaRange: [betaRange[0], betaRange[1]],
    warmStart,
    learningRate,
    batchSize,
    examples,
    layers: targets.map((s) => s.name),
    seed,
    inputs,
    maxCacheMB,
    curveEvery,
  };
}

/** AIMET runs AdaRound with every activation quantizer disabled. */
function withoutActivationQuantizers(sim: QuantSim): QuantSim {
  const off = sim.sites.filter((s) => s.kind === "activation").map((s) => [s.name, { enabled: false }] as const);
  return sim.with(Object.fromEntries(off));
}

/** The per-element view of one weight quantizer's grid (float32 values, as the fake-quant kernel uses them). */
interface Grid {
  /** The parameter as quantized: reshaped to the channel shape when it has one (same element order). */
  shape: number[];
  channels: number;
  /** Elements per contiguous run of one channel. */
  inner: number;
  scales: Float32Array;
  lows: Float64Array;
  highs: Float64Array;
  /** The broadcast shape of per-channel constants. */
  channelShape: number[];
}

function gridOf(site: QuantizerSite, param: tf.Tensor, encoding: Encoding | Encoding[]): Grid {
  const shape = site.channelShape ?? param.shape;
  const list = Array.isArray(encoding) ? encoding : [encoding];
  const axis = site.channelAxis ?? shape.length - 1;
  const perChannel = list.length > 1;
  if (perChannel && shape[axis] !== list.length) throw new Error(`${list.length} per-channel encodings for axis ${axis} of shape [${shape.join(", ")}]`);
  return {
    shape,
    channels: list.length,
    inner: perChannel ? shape.slice(axis + 1).reduce((a, b) => a * b, 1) : 1,
    scales: Float32Array.from(list, (e) => e.scale),
    lows: Float64Array.from(list, (e) => e.offset),
    highs: Float64Array.from(list, (e) => e.offset + e.numSteps),
    channelShape: perChannel ? shape.map((d, i) => (i === axis ? d : 1)) : [],
  };
}

const channelOf = (g: Grid, i: number) => (g.channels === 1 ? 0 : Math.floor(i / g.inner) % g.channels);

/** floor(W/s) and the initial V (h(V) = frac(W/s)), in float32 arithmetic like the quantizer's W/s. */
function startingPoint(w: Float32Array, g: Grid): { floors: Float32Array; v: Float32Array; nearest: Float32Array } {
  const floors = new Float32Array(w.length);
  const v = new Float32Array(w.length);
  const nearest = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const c = channelOf(g, i);
    const q = Math.fround(w[i] / g.scales[c]);
    const f = Math.floor(q);
    floors[i] = f;
    v[i] = initialV(q - f);
    nearest[i] = Math.min(g.highs[c], Math.max(g.lows[c], roundHalfEven(q)));
  }
  return { floors, v, nearest };
}

/** Hard rounding: codes floor + [V ≥ 0] (h(V) ≥ 0.5 exactly when V ≥ 0), clamped, as on-grid float32 values. */
function hardRounded(floors: Float32Array, v: Float32Array, g: Grid): { codes: Float32Array; values: Float32Array } {
  const codes = new Float32Array(v.length);
  const values = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = channelOf(g, i);
    codes[i] = Math.min(g.highs[c], Math.max(g.lows[c], floors[i] + (v[i] >= 0 ? 1 : 0)));
    values[i] = Math.fround(codes[i] * g.scales[c]);
  }
  return { codes, values };
}

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

/**
 * The node's parameters as the simulation uses them (`sim.quantizedParam`:
 * its rounding and seed, frozen weights as frozen); the simulation owns them.
 */
function simParams(sim: QuantSim, node: GraphNode): Params {
  const params: Params = { ...node.params };
  for (const site of sim.sites) {
    if (site.node !== node.name || site.kind === "activation") continue;
    const q = sim.quantizedParam(site.name);
    if (q) params[site.param!] = q;
  }
  return params;
}

/** One layer's cached inputs and targets, as host arrays (examples along the first axis). */
interface LayerData {
  x: Float32Array;
  y: Float32Array;
  /** Shapes of one example. */
  xShape: number[];
  yShape: number[];
  examples: number;
}

/**
 * Caches the layer's inputs (from `inputSim`) and FP32 targets for up to
 * `examples` examples, within the memory bound. Host arrays rather than tensors:
 * drawing a batch is then a plain copy, and the backend's memory stays free.
 */
async function cacheLayerData(inputSim: QuantSim, node: GraphNode, targetName: string, data: Dataset, o: ResolvedAdaroundOptions): Promise<LayerData> {
  const xs: Float32Array[] = [];
  const ys: Float32Array[] = [];
  let xShape: number[] = [];
  let yShape: number[] = [];
  let limit = o.examples;
  let cached = 0;
  await forEachBatch(inputSim.graph, takeExamples(data, o.examples), { task: "adaround: caching" }, (batch) => {
    if (cached >= limit) return;
    const [x] = inputSim.forward(batch.inputs, { outputs: [node.inputs[0]] });
    const [y] = forward(inputSim.graph, batch.inputs, { outputs: [targetName] });
    try {
      const n = x.shape[0];
      if (cached === 0) {
        [xShape, yShape] = [x.shape.slice(1), y.shape.slice(1)];
        const bytesPerExample = (4 * (x.size + y.size)) / n;
        limit = Math.min(limit, Math.floor((o.maxCacheMB * 2 ** 20) / bytesPerExample));
        if (limit < 1) throw new Error(`one example's layer input and output take ${(bytesPerExample / 2 ** 20).toFixed(1)} MB, more than maxCacheMB (${o.maxCacheMB})`);
      }
      const keep = Math.min(n, limit - cached);
      xs.push((x.dataSync() as Float32Array).subarray(0, (keep * x.size) / n));
      ys.push((y.dataSync() as Float32Array).subarray(0, (keep * y.size) / n));
      cached += keep;
    } finally {
      tf.dispose([x, y]);
    }
  });
  return { x: concatArrays(xs), y: concatArrays(ys), xShape, yShape, examples: cached };
}

function concatArrays(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Examples `rows` of a cached array as one tensor [rows.length, ...shape]. */
function rowsTensor(all: Float32Array, shape: number[], rows: ArrayLike<number>): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows.length * size);
  for (let k = 0; k < rows.length; k++) out.set(all.subarray(rows[k] * size, (rows[k] + 1) * size), k * size);
  return tf.tensor(out, [rows.length, ...shape]);
}

/** MSE per output value over all cached examples, in chunks. */
function reconstructionError(node: GraphNode, after: GraphNode | undefined, params: Params, d: LayerData): number {
  const chunk = 128;
  let sum = 0;
  let count = 0;
  for (let s = 0; s < d.examples; s += chunk) {
    const rows = Array.from({ length: Math.min(chunk, d.examples - s) }, (_, i) => s + i);
    sum += tf.tidy(() => {
      const out = layerOutput(node, after, params, rowsTensor(d.x, d.xShape, rows));
      count += out.size;
      return tf.sum(tf.squaredDifference(out, rowsTensor(d.y, d.yShape, rows))).dataSync()[0];
    });
  }
  return sum / count;
}

/** A seeded draw of `k` distinct indices out of `n` per call (partial Fisher–Yates over a persistent permutation). */
function batchSampler(n: number, k: number, seed: number): () => Int32Array {
  const random = mulberry32(seed);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const size = Math.min(k, n);
  return () => {
    for (let i = 0; i < size; i++) {
      const j = i + Math.floor(random() * (n - i));
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    return perm.slice(0, size);
  };
}

/** One weight quantizer: cache data, optimize V, round. */
async function adaroundLayer(
  inputSim: QuantSim,
  site: QuantizerSite,
  data: Dataset,
  o: ResolvedAdaroundOptions,
  index: number,
  onCurve: (p: CurvePoint) => void,
): Promise<{ row: Omit<AdaroundLayerRow, "elapsedMs">; weight: FrozenWeight }> {
  const graph = inputSim.graph;
  const node = graph.node(site.node);
  const after = followingActivation(graph, node);
  const encoding = inputSim.encodingOf(site.name)!;
  const param = node.params[site.param!];
  const grid = gridOf(site, param, encoding);
  const start = startingPoint(param.dataSync() as Float32Array, grid);

  const owned: tf.Tensor[] = [];
  const cache = await cacheLayerData(inputSim, node, after?.name ?? node.name, data, o);
  // tf.variable keeps its initial tensor alive beside it: made in a tidy, only the variable stays.
  const v = tf.tidy(() => tf.variable(tf.tensor(start.v, grid.shape), true));
  const optimizer = tf.train.adam(o.learningRate, 0.9, 0.999, 1e-8);
  try {
    const params = simParams(inputSim, node);
    const before = reconstructionError(node, after, params, cache);

    // Constants of W̃ = s·clamp(floor(W/s) + h(V), lo, hi).
    const floors = tf.tensor(start.floors, grid.shape);
    const scale = grid.channels === 1 ? tf.scalar(grid.scales[0]) : tf.tensor(grid.scales, grid.channelShape);
    const sameBounds = grid.lows.every((l) => l === grid.lows[0]);
    const lows = sameBounds ? undefined : tf.tensor(Float32Array.from(grid.lows), grid.channelShape);
    const highs = sameBounds ? undefined : tf.tensor(Float32Array.from(grid.highs), grid.channelShape);
    owned.push(floors, scale, ...(lows && highs ? [lows, highs] : []));
    const softWeight = (h: tf.Tensor) => {
      const codes = tf.add(floors, h);
      const clamped = sameBounds ? tf.clipByValue(codes, grid.lows[0], grid.highs[0]) : tf.minimum(tf.maximum(codes, lows!), highs!);
      return tf.reshape(tf.mul(clamped, scale), param.shape);
    };

    const next = batchSampler(cache.examples, o.batchSize, (Math.imul(o.seed, 0x9e3779b1) + index + 1) >>> 0);
    for (let it = 0; it < o.iterations; it++) {
      const picked = next();
      const record = it % o.curveEvery === 0 || it === o.iterations - 1;
      const warm = inWarmStart(it, o.iterations, o.warmStart);
      const beta = warm ? 0 : annealedBeta(it, o.iterations, o.betaRange, o.warmStart);
      // The loss terms of a recorded step outlive the step's tidy.
      const parts: tf.Tensor[] = [];
      try {
        tf.tidy(() => {
          const xb = rowsTensor(cache.x, cache.xShape, picked);
          const yb = rowsTensor(cache.y, cache.yShape, picked);
          const cost = optimizer.minimize(
            () => {
              const h = rectifiedSigmoid(v);
              const out = trainingOutput(node, after, { ...params, [site.param!]: softWeight(h) }, xb);
              const recon = reconstructionLoss(out, yb);
              const round = warm ? tf.scalar(0) : roundingLoss(h, o.regularization, beta);
              if (record) parts.push(tf.keep(recon), tf.keep(round));
              return tf.add(recon, round) as tf.Scalar;
            },
            record,
            [v],
          );
          if (cost) parts.push(tf.keep(cost));
        });
        if (record) {
          const [recon, round, total] = parts.map((t) => t.dataSync()[0]);
          for (const [series, value] of [["reconstruction", recon], ["rounding", round], ["total", total]] as const) {
            onCurve({ run: site.name, series, step: it, value });
          }
        }
      } finally {
        tf.dispose(parts);
      }
    }

    const hard = hardRounded(start.floors, v.dataSync() as Float32Array, grid);
    const hardTensor = tf.tensor(hard.values, param.shape);
    owned.push(hardTensor);
    const afterError = reconstructionError(node, after, { ...params, [site.param!]: hardTensor }, cache);
    let flipped = 0;
    for (let i = 0; i < hard.codes.length; i++) if (hard.codes[i] !== start.nearest[i]) flipped++;
    return {
      row: {
        layer: site.node,
        quantizer: site.name,
        iterations: o.iterations,
        examples: cache.examples,
        reconstructionBefore: before,
        reconstructionAfter: afterError,
        flippedShare: flipped / hard.codes.length,
      },
      weight: { encoding, values: hard.values, shape: [...param.shape] },
    };
  } finally {
    optimizer.dispose();
    v.dispose();
    tf.dispose(owned);
  }
}
