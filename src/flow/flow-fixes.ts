import { scoreAll } from "../analysis/evaluation";
import { sweepDisabled, SweepResult } from "../analysis/sweeps";
import { rangeRatioText, weightChannelStats } from "../analysis/weight-channels";
import { activationAwareCle } from "../fix/activation-aware-cle";
import { crossLayerEqualization } from "../fix/cross-layer-equalization";
import { foldBatchNorms } from "../fix/fold-batch-norm";
import { highBiasAbsorption } from "../fix/high-bias-absorption";
import { biasCorrection } from "../fix/bias-correction";
import { qat } from "../fix/qat";
import { adaround } from "../fix/adaround";
import { QuantSim } from "../quant/quantsim";
import { RangeMethod, SettingsPatch } from "../quant/settings";
import { FlowContext } from "./flow-scoring";
import { FixCandidate, FlowBox } from "./flow-types";

/** What a step hands back: skipped (and why), an analysis, or a candidate fix to score. */
export type FixOutcome = { skip: string } | { analysis: unknown; finding: string } | (FixCandidate & { score?: number });

/** One box of the flow chart after the split: how to run it on where the flow stands. */
export interface FlowFix {
  box: FlowBox;
  title: string;
  kind: "analysis" | "fix";
  run(ctx: FlowContext, current: number, target: number): Promise<FixOutcome>;
}

/** A new calibrated simulation with the same settings over a new FP32 graph. */
async function recalibrated(ctx: FlowContext, graph: FlowContext["graph"]): Promise<QuantSim> {
  return ctx.sim.withGraph(graph).calibrate(ctx.calibration, { onProgress: ctx.options.onProgress });
}

const foldBatchNorm: FlowFix = {
  box: "fold-batch-norm",
  title: "Fold BatchNorm",
  kind: "fix",
  async run(ctx) {
    const folded = foldBatchNorms(ctx.graph);
    if (folded.folded.length === 0) {
      folded.dispose();
      return { skip: "no BatchNorm directly follows a conv or dense layer." };
    }
    return {
      graph: folded.graph,
      sim: await recalibrated(ctx, folded.graph),
      always: true,
      finding: `Folded ${folded.folded.length} BatchNorm layers into the layers beside them, as runtimes do (${folded.folded.filter((f) => f.position === "before").length} into the layer they feed); the weights now carry the BatchNorm scales, which can widen per-channel ranges.${folded.notFolded.length ? ` ${folded.notFolded.length} left as they are: ${folded.notFolded[0].reason}.` : ""}`,
      result: { folded: folded.folded, notFolded: folded.notFolded },
    };
  },
};

const crossLayerEqualizationFix: FlowFix = {
  box: "cross-layer-equalization",
  title: "Cross-layer equalization",
  kind: "fix",
  async run(ctx) {
    let cle: ReturnType<typeof crossLayerEqualization>;
    try {
      cle = crossLayerEqualization(ctx.graph, { relu6: ctx.options.relu6 });
    } catch (err) {
      return { skip: (err as Error).message };
    }
    const sim = await recalibrated(ctx, cle.graph);
    const ratio = (layers: { rangeRatio: number }[]) => Math.max(...layers.map((l) => l.rangeRatio));
    const before = weightChannelStats(ctx.sim).layers;
    const after = weightChannelStats(sim).layers;
    const relu6 = cle.relu6Replaced.length ? ` ${cle.relu6Replaced.length} ReLU6 became ReLU.` : cle.relu6Rescaled.length ? ` ${cle.relu6Rescaled.length} ReLU6 keep per-channel clips.` : "";
    return {
      graph: cle.graph,
      sim,
      finding: `Equalized ${cle.pairs.length} layer pairs; the widest channel-range ratio went from ${rangeRatioText(ratio(before))} to ${rangeRatioText(ratio(after))}.${relu6}`,
      result: { pairs: cle.pairs, relu6Replaced: cle.relu6Replaced, relu6Rescaled: cle.relu6Rescaled, channelRanges: { before, after } },
    };
  },
};

const highBiasAbsorptionFix: FlowFix = {
  box: "high-bias-absorption",
  title: "High-bias absorption",
  kind: "fix",
  async run(ctx) {
    let hba: ReturnType<typeof highBiasAbsorption>;
    try {
      hba = highBiasAbsorption(ctx.graph);
    } catch (err) {
      return { skip: (err as Error).message };
    }
    const channels = hba.absorbed.reduce((n, a) => n + a.channels, 0);
    if (channels === 0) {
      hba.dispose();
      return { skip: "no channel's BatchNorm statistics (β > 3|γ|) put its input to a ReLU safely above zero, so there is no bias to absorb." };
    }
    return {
      graph: hba.graph,
      sim: await recalibrated(ctx, hba.graph),
      finding: `Moved part of the bias of ${channels} channels in ${hba.absorbed.filter((a) => a.channels > 0).length} layer pairs into the next layer, narrowing the activation ranges in between${hba.approximate.length ? ` (${hba.approximate.length} pairs approximate at zero-padded borders)` : ""}.`,
      result: { absorbed: hba.absorbed, approximate: hba.approximate },
    };
  },
};

const biasCorrectionFix: FlowFix = {
  box: "bias-correction",
  title: "Bias correction",
  kind: "fix",
  async run(ctx) {
    const r = await biasCorrection(ctx.sim, { method: "empirical", data: ctx.calibration, onProgress: ctx.options.onProgress });
    if (r.corrected.length === 0) {
      r.dispose();
      return { skip: `no layer to correct (${r.skipped.map((s) => `${s.layer}: ${s.reason}`).slice(0, 2).join("; ")}).` };
    }
    const worst = r.corrected.reduce((a, b) => (b.meanAbsShift > a.meanAbsShift ? b : a));
    return {
      graph: r.graph,
      sim: r.sim,
      finding: `Measured on the calibration data how quantized weights shift each output channel's mean, and subtracted it from the bias of ${r.corrected.length} layers (largest mean shift ${worst.meanAbsShift.toExponential(2)} at ${worst.layer}).`,
      result: { corrected: r.corrected, skipped: r.skipped },
    };
  },
};

const perChannel: FlowFix = {
  box: "per-channel",
  title: "Per-channel weights",
  kind: "fix",
  async run(ctx) {
    if (ctx.options.allowPerChannel === false) return { skip: "per-channel weights are not available on the target runtime (allowPerChannel: false)." };
    const weights = ctx.sim.sites.filter((s) => s.kind === "weight" && s.channelAxis !== undefined && ctx.sim.settingsOf(s.name).enabled && !ctx.sim.settingsOf(s.name).perChannel);
    if (weights.length === 0) return { skip: "every enabled weight quantizer is already per-channel (or has no channels)." };
    const patch = Object.fromEntries(weights.map((s) => [s.name, { perChannel: true }]));
    return { sim: ctx.sim.with(patch), finding: `Gave ${weights.length} weight quantizers one grid per output channel.`, result: { quantizers: weights.map((s) => s.name) } };
  },
};

const ALL_ACTIVATIONS = "**/*.output";

const RANGE_CANDIDATES: { name: string; patch: SettingsPatch }[] = [
  { name: "percentile 99.99", patch: { rangeMethod: "percentile" as RangeMethod, percentile: 99.99 } },
  { name: "SQNR search", patch: { rangeMethod: "sqnr" as RangeMethod } },
  { name: "MSE search", patch: { rangeMethod: "mse" as RangeMethod } },
];

const rangeSetting: FlowFix = {
  box: "range-setting",
  title: "Activation range setting",
  kind: "fix",
  async run(ctx) {
    const acts = ctx.sim.sites.filter((s) => s.kind === "activation" && ctx.sim.settingsOf(s.name).enabled && !ctx.sim.settingsOf(s.name).range);
    if (acts.length === 0) return { skip: "no enabled activation quantizer takes its range from calibration." };
    // One glob for every activation quantizer, so the choice survives later graph fixes that rename them (folding).
    const variants = RANGE_CANDIDATES.map((c) => ({ key: c.name, sim: ctx.sim.with({ [ALL_ACTIVATIONS]: c.patch }) }));
    try {
      const scores = await scoreAll("range setting", variants, { data: ctx.options.data, metric: ctx.options.metric, evaluate: ctx.options.evaluate, onProgress: ctx.options.onProgress });
      const rows = variants.map((v) => ({ method: v.key, score: scores.get(v.key)! }));
      const best = rows.reduce((a, b) => (b.score > a.score ? b : a));
      for (const v of variants) if (v.key !== best.method) v.sim.dispose();
      const current = ctx.sim.settingsOf(acts[0].name).rangeMethod;
      return {
        sim: variants.find((v) => v.key === best.method)!.sim,
        score: best.score,
        finding: `Tried ${rows.map((r) => `${r.method} (${r.score.toFixed(4)})`).join(", ")} against ${current}; the best is ${best.method}.`,
        result: { rows, current },
      };
    } catch (err) {
      for (const v of variants) v.sim.dispose();
      throw err;
    }
  },
};

/**
 * Vanilla CLE leaves activations "uneven" when the typical pair's widest
 * activation channel is this many times its median one: a per-tensor grid then
 * gives the median channel at most two thirds of its steps.
 */
export const UNEVEN_ACTIVATIONS = 1.5;

/**
 * Activation-aware CLE (α = 0.5), tried when vanilla CLE leaves the activations
 * between its pairs uneven (the guidebook: "adjust CLE to take activation
 * quantization ranges into account, as vanilla CLE can lead to uneven activation
 * distribution"). On a graph vanilla CLE already equalized, it starts from there.
 * Its FlowBox is cross-layer-equalization's: the same pairs, other scales.
 */
const activationAwareCleFix: FlowFix = {
  box: "cross-layer-equalization",
  title: "Activation-aware cross-layer equalization",
  kind: "fix",
  async run(ctx) {
    let aware: Awaited<ReturnType<typeof activationAwareCle>>;
    try {
      aware = await activationAwareCle(ctx.graph, { data: ctx.calibration, alpha: 0.5, relu6: ctx.options.relu6 === "per-channel" ? "per-channel" : "relu", onProgress: ctx.options.onProgress });
    } catch (err) {
      if (/found no layer pair/.test((err as Error).message)) return { skip: (err as Error).message };
      throw err;
    }
    const median = (key: "cle" | "aware") => {
      const v = aware.activations.map((a) => a.ratio[key]).sort((a, b) => a - b);
      return v[(v.length - 1) >> 1];
    };
    const vanillaCle = ctx.graph.edits.some((e) => e.by === "cross-layer-equalization");
    const ranges = `the typical pair's widest activation channel is ${median("cle").toFixed(1)}× its median one ${vanillaCle ? "after the CLE applied above" : "after vanilla CLE"}`;
    if (median("cle") < UNEVEN_ACTIVATIONS) {
      aware.graph.dispose();
      return { skip: `vanilla CLE leaves the activation ranges even enough: ${ranges} (below ${UNEVEN_ACTIVATIONS}×).` };
    }
    let sim: QuantSim;
    try {
      sim = await recalibrated(ctx, aware.graph);
    } catch (err) {
      aware.graph.dispose();
      throw err;
    }
    return {
      graph: aware.graph,
      sim,
      finding: `Vanilla CLE leaves the activations uneven (${ranges}); weighing the activation ranges in (α = ${aware.alpha}) brings it to ${median("aware").toFixed(1)}× over ${aware.pairs.length} pairs.`,
      // With its step, the flow draws this step with activationAwareCleView (channel ranges: no CLE, vanilla, aware).
      result: { step: aware.step, alpha: aware.alpha, pairs: aware.pairs, activations: aware.activations, relu6Replaced: aware.relu6Replaced, relu6Rescaled: aware.relu6Rescaled, diagnosis: aware.diagnosis },
    };
  },
};

const sensitivities = new WeakMap<FlowContext, SweepResult>();

const perLayerAnalysis: FlowFix = {
  box: "per-layer-analysis",
  title: "Per-layer analysis",
  kind: "analysis",
  async run(ctx) {
    const sweep = await sweepDisabled(ctx.sim, { data: ctx.options.data, metric: ctx.options.metric, evaluate: ctx.options.evaluate, granularity: "quantizer", onProgress: ctx.options.onProgress });
    sensitivities.set(ctx, sweep);
    return { analysis: sweep, finding: sweep.diagnosis };
  },
};

/** The next precision up for a quantizer the per-layer analysis found sensitive. */
function raised(bitwidth: number, kind: string): number {
  if (kind === "weight" && bitwidth < 8) return 8;
  return bitwidth < 16 ? 16 : 32;
}

const fixQuantizers: FlowFix = {
  box: "fix-quantizers",
  title: "Fix individual quantizers",
  kind: "fix",
  async run(ctx, current, target) {
    const sweep = sensitivities.get(ctx);
    if (!sweep) return { skip: "no per-layer analysis to go by." };
    // Quantizers whose bypass recovers the most first; only those that recover anything.
    const ranked = [...sweep.rows].filter((r) => r.score > sweep.quantizedScore).sort((a, b) => b.score - a.score);
    if (ranked.length === 0) return { skip: "bypassing no single quantizer recovers any score." };
    const max = ctx.options.maxRaised ?? 4;
    if (max <= 0) return { skip: "raising quantizers is off (maxRaised: 0)." };
    const raisedRows: { quantizer: string; bitwidth: number; score: number }[] = [];
    let sim = ctx.sim;
    let score = current;
    for (const row of ranked.slice(0, max)) {
      const name = row.quantizers[0];
      const kind = sim.sites.find((s) => s.name === name)!.kind;
      const bitwidth = raised(sim.settingsOf(name).bitwidth, kind);
      const next = sim.with({ [name]: { bitwidth } });
      const s = await ctx.score(next);
      if (sim !== ctx.sim) sim.dispose();
      sim = next;
      score = s;
      raisedRows.push({ quantizer: name, bitwidth, score: s });
      if (score >= target) break;
    }
    return {
      sim,
      score,
      finding: `Raised the precision of ${raisedRows.map((r) => `${r.quantizer} to ${r.bitwidth} bits`).join(", ")}, most sensitive first.`,
      result: { raised: raisedRows },
    };
  },
};

const adaroundFix: FlowFix = {
  box: "adaround",
  title: "AdaRound",
  kind: "fix",
  async run(ctx) {
    const iterations = ctx.options.adaroundIterations ?? 100;
    if (iterations <= 0) return { skip: "AdaRound is off (adaroundIterations: 0)." };
    // A short schedule needs a larger step than AIMET's 1e-3 (made for 10 000 iterations).
    const r = await adaround(ctx.sim, { data: ctx.calibration, iterations, learningRate: iterations <= 1000 ? 1e-2 : 1e-3, examples: 256, seed: ctx.options.seed ?? 0, onProgress: ctx.options.onProgress });
    const improved = r.layers.filter((l) => l.reconstructionAfter < l.reconstructionBefore).length;
    const flipped = r.layers.reduce((s, l) => s + l.flippedShare, 0) / Math.max(1, r.layers.length);
    return {
      sim: r.sim,
      finding: `Learned the rounding of ${r.layers.length} layers (${iterations} steps each): ${improved} reconstruct FP32 better than rounding to nearest, with ${(100 * flipped).toFixed(0)} % of weights rounded the other way on average.`,
      result: { layers: r.layers, skipped: r.skipped, curve: r.curve },
    };
  },
};

const qatFix: FlowFix = {
  box: "qat",
  title: "Quantization-aware training",
  kind: "fix",
  async run(ctx) {
    const epochs = ctx.options.qatEpochs ?? 0;
    if (epochs <= 0) return { skip: "QAT is off (give qatEpochs, and training data with labels or none for distillation)." };
    const data = ctx.options.training ?? ctx.calibration;
    const r = await qat(ctx.sim, { data, epochs, seed: ctx.options.seed ?? 0, onProgress: ctx.options.onProgress });
    return {
      graph: r.graph,
      sim: r.sim,
      finding: `Fine-tuned the simulated model for ${r.epochs} epoch(s), ${r.steps} steps, with the straight-through estimator (${r.diagnosis})`,
      result: { curve: r.curve, epochs: r.epochs, steps: r.steps, firstEpochLoss: r.firstEpochLoss, lastEpochLoss: r.lastEpochLoss },
    };
  },
};

/** Weight fixes, in the guidebook's order. */
export const WEIGHT_FIXES: FlowFix[] = [foldBatchNorm, crossLayerEqualizationFix, highBiasAbsorptionFix, perChannel, biasCorrectionFix, adaroundFix];
export const ACTIVATION_FIXES: FlowFix[] = [activationAwareCleFix, rangeSetting];
/** After both sides: find the sensitive quantizers and raise them, then train. */
export const LAST_RESORT_FIXES: FlowFix[] = [perLayerAnalysis, fixQuantizers, qatFix];
