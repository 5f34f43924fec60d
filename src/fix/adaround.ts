import * as tf from "@tensorflow/tfjs";
import { count, disposable, FixResult, scoresSentence } from "./fix-result";
import { Dataset, requireData } from "../data/types";
import { GraphNode, Params } from "../graph/types";
import { QuantizerSite } from "../quant/placement";
import { FrozenWeight, QuantSim } from "../quant/quantsim";
import { registerWasmGradientKernels } from "../train/wasm-gradient-kernels";
import { annealedBeta, inWarmStart, reconstructionLoss, rectifiedSigmoid, roundingLoss } from "./adaround-loss";
import { BeforeAfter, scoreBeforeAfter } from "./before-after";
import { CurvePoint } from "./training-curve";
import { AdaroundOptions, AdaroundSkip, ResolvedAdaroundOptions, pickTargets, resolveOptions } from "./adaround-options";
import { gridOf, hardRounded, startingPoint } from "./adaround-grid";
import { followingActivation, trainingOutput } from "./adaround-layer-output";
import { batchSampler, cacheLayerData, reconstructionError, rowsTensor } from "./adaround-cache";

export type { AdaroundInputs, AdaroundOptions, AdaroundSkip, ResolvedAdaroundOptions } from "./adaround-options";
export { resolveAdaroundOptions } from "./adaround-options";

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
      scores = await scoreBeforeAfter({ before, after: result }, { ...options.evaluation, step: "adaround" });
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

/** AIMET runs AdaRound with every activation quantizer disabled. */
function withoutActivationQuantizers(sim: QuantSim): QuantSim {
  const off = sim.sites.filter((s) => s.kind === "activation").map((s) => [s.name, { enabled: false }] as const);
  return sim.with(Object.fromEntries(off));
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
