import { OutputScore } from "../eval/metric";
import { changeText, scoreText } from "../eval/score-text";
import { QuantSim } from "../quant/quantsim";
import { EvaluationOptions, metricInfo, MetricInfo, scoreAll } from "./evaluation";
import { ScoredVariant } from "./score-variants";
import { allBypassed } from "./variants";

export type SplitVariant = "FP32" | "weights only" | "activations only" | "weights + activations";

export interface SplitResult {
  step: "weights-vs-activations";
  metric: MetricInfo;
  /** FP32's own score (task scores); null for a fidelity score, whose reference FP32 is. */
  fp32: number | null;
  /** Weights at their target settings, activations bypassed. */
  weightsOnly: number;
  /** Activations at their target settings, weights bypassed. */
  activationsOnly: number;
  /** Both quantized. */
  both: number;
  /** One row per variant scored (no FP32 row for a fidelity score); `drop` is FP32's score minus this one, null for fidelity. */
  rows: { variant: SplitVariant; score: number; drop: number | null }[];
  /** Multi-output models, built-in metrics: each variant's score per output. */
  perOutput?: Partial<Record<SplitVariant, OutputScore[]>>;
  /** Which side causes the drop ("weights", "activations", "both", "none"). */
  culprit: "weights" | "activations" | "both" | "none";
  diagnosis: string;
}

/**
 * The guidebook's second step: quantize weights alone, then activations alone,
 * to see which side causes the drop and so which fixes to try first. With a
 * task score the sides are compared by their drop from FP32; with a fidelity
 * score (FP32 is the reference) by their own scores, as error powers where
 * errors add (SQNR, PSNR, MSE).
 */
export async function weightsVsActivations(sim: QuantSim, options: EvaluationOptions & { tolerance?: number }): Promise<SplitResult> {
  const fp32 = allBypassed(sim);
  const bypass = (keep: (kind: string) => boolean) =>
    sim.with(Object.fromEntries(sim.sites.filter((s) => !keep(s.kind)).map((s) => [s.name, { enabled: false }])));
  const weights = bypass((kind) => kind !== "activation");
  const activations = bypass((kind) => kind === "activation");
  // A copy, so that the caller's simulation is left as it was (no cached quantized weights).
  const both = sim.with({});
  try {
    const perOutput = new Map<string, OutputScore[]>();
    const variants: ScoredVariant[] = [
      { key: "fp32", sim: fp32, changedFrom: [], fp32: true },
      { key: "weights", sim: weights },
      { key: "activations", sim: activations },
      { key: "both", sim: both },
    ];
    const s = await scoreAll("weights vs activations", variants, { ...options, perOutput });
    const fp32Score = s.get("fp32");
    const metric = metricInfo(options, options.evaluate ? undefined : sim.graph, fp32Score);
    const f = metric.kind === "task" ? fp32Score! : null;
    const w = s.get("weights")!;
    const a = s.get("activations")!;
    const b = s.get("both")!;
    const { culprit, diagnosis } = f !== null ? byDrop(metric, f, w, a, b, options.tolerance) : byFidelity(metric, w, a, b);
    const named: [SplitVariant, string][] = [["weights only", "weights"], ["activations only", "activations"], ["weights + activations", "both"]];
    const rows = [...(f !== null ? [{ variant: "FP32" as const, score: f, drop: 0 }] : []), ...named.map(([variant, key]) => ({ variant, score: s.get(key)!, drop: f !== null ? f - s.get(key)! : null }))];
    const multi = metric.outputs !== undefined;
    return {
      step: "weights-vs-activations",
      metric,
      fp32: f,
      weightsOnly: w,
      activationsOnly: a,
      both: b,
      rows,
      ...(multi ? { perOutput: Object.fromEntries(named.map(([variant, key]) => [variant, perOutput.get(key)!])) } : {}),
      culprit,
      diagnosis,
    };
  } finally {
    fp32.dispose();
    weights.dispose();
    activations.dispose();
    both.dispose();
  }
}

type Reading = { culprit: SplitResult["culprit"]; diagnosis: string };

const NEXT = {
  weights: "Fix weights first: cross-layer equalization (especially with depthwise-separable convolutions), per-channel quantization, then bias correction or AdaRound with calibration data.",
  activations: "Fix activations first: try other range-setting methods (percentile, SQNR or MSE search) instead of min-max.",
  both: "Fix weights first (CLE, per-channel, bias correction, AdaRound), then activation ranges.",
};

/** A task score: each side's drop from FP32's own score. */
function byDrop(metric: MetricInfo, f: number, w: number, a: number, b: number, tolerance: number | undefined): Reading {
  const tol = tolerance ?? Math.max(1e-3, Math.abs(f) * 0.005);
  const wDrop = f - w;
  const aDrop = f - a;
  const culprit = wDrop <= tol && aDrop <= tol ? "none" : wDrop > tol && aDrop > tol && Math.min(wDrop, aDrop) > 0.33 * Math.max(wDrop, aDrop) ? "both" : wDrop > aDrop ? "weights" : "activations";
  const side = (name: string, score: number) => `${name} alone ${scoreText(metric, score)} (${changeText(metric, score - f)})`;
  const diagnosis = {
    none: `Neither side alone costs more than ${changeText(metric, tol).slice(1)} against FP32 ${scoreText(metric, f)}; the full model's ${scoreText(metric, b)} (${changeText(metric, b - f)}) comes from both together. Go on to the per-layer analysis.`,
    weights: `Weight quantization causes most of the drop from FP32 ${scoreText(metric, f)}: ${side("weights", w)}, ${side("activations", a)}. ${NEXT.weights}`,
    activations: `Activation quantization causes most of the drop from FP32 ${scoreText(metric, f)}: ${side("activations", a)}, ${side("weights", w)}. ${NEXT.activations}`,
    both: `Both sides cost score against FP32 ${scoreText(metric, f)}: ${side("weights", w)}, ${side("activations", a)}. ${NEXT.both}`,
  }[culprit];
  return { culprit, diagnosis };
}

/**
 * The error a fidelity score stands for, on a scale where errors add: noise
 * power for dB scores, the MSE itself, and the shortfall from a perfect score otherwise.
 */
export function errorOf(metric: { metric: string }, score: number): number {
  if (metric.metric === "sqnr" || metric.metric === "psnr") return 10 ** (-score / 10);
  if (metric.metric === "mse") return -score;
  if (metric.metric === "cosine" || metric.metric === "agreement") return 1 - score;
  return -score;
}

/** A fidelity score: the sides' own scores, compared as errors. */
function byFidelity(metric: MetricInfo, w: number, a: number, b: number): Reading {
  const we = errorOf(metric, w);
  const ae = errorOf(metric, a);
  const both = `(both quantized: ${scoreText(metric, b)})`;
  if (we <= 0 && ae <= 0) return { culprit: "none", diagnosis: `Neither side alone changes the outputs ${both}. Go on to the per-layer analysis.` };
  const culprit = Math.min(we, ae) > 0.33 * Math.max(we, ae) ? "both" : we > ae ? "weights" : "activations";
  const sides = culprit === "activations" ? `activations alone ${scoreText(metric, a)}, weights alone ${scoreText(metric, w)}` : `weights alone ${scoreText(metric, w)}, activations alone ${scoreText(metric, a)}`;
  const diagnosis = {
    weights: `Weight quantization causes most of the error: ${sides} ${both}. ${NEXT.weights}`,
    activations: `Activation quantization causes most of the error: ${sides} ${both}. ${NEXT.activations}`,
    both: `Both sides add error: ${sides} ${both}. ${NEXT.both}`,
  }[culprit];
  return { culprit, diagnosis };
}
