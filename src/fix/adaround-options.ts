import { EvaluationOptions } from "../analysis/evaluation";
import { Dataset } from "../data/types";
import { ProgressFn } from "../progress";
import { QuantizerSite } from "../quant/placement";
import { QuantSim } from "../quant/quantsim";
import { CurvePoint } from "./training-curve";

/** AdaRound's options: the defaults (AIMET's), their checks, and the weight quantizers it can optimize. */

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

/** Layers whose output is linear in the weight: AdaRound's reconstruction applies. */
const SUPPORTED = new Set(["conv2d", "depthwiseConv2d", "dense", "conv1d", "separableConv2d"]);
const WHY_NOT: Record<string, string> = {
  embedding: "a lookup table: each output is one weight, so rounding to nearest already minimizes the reconstruction error",
};

/** The hyper-parameters `adaround(sim, options)` would use, every default filled in (checked, without running anything). */
export function resolveAdaroundOptions(sim: QuantSim, options: Partial<AdaroundOptions> = {}): ResolvedAdaroundOptions {
  return resolveOptions(sim, options, pickTargets(sim, options.layers).targets);
}

/** The weight quantizers to AdaRound, in execution order, and the enabled ones left out with a reason. */
export function pickTargets(sim: QuantSim, layers: readonly string[] | undefined): { targets: QuantizerSite[]; skipped: AdaroundSkip[] } {
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

export function resolveOptions(sim: QuantSim, o: Partial<AdaroundOptions>, targets: readonly QuantizerSite[]): ResolvedAdaroundOptions {
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


export interface AdaroundSkip {
  layer: string;
  quantizer: string;
  reason: string;
}
