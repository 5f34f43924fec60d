import { QuantSim } from "../quant/quantsim";
import { EvaluationOptions, metricInfo, MetricInfo, scoreAll } from "./evaluation";
import { allBypassed } from "./variants";

export interface SplitResult {
  step: "weights-vs-activations";
  metric: MetricInfo;
  fp32: number;
  /** Weights at their target settings, activations bypassed. */
  weightsOnly: number;
  /** Activations at their target settings, weights bypassed. */
  activationsOnly: number;
  /** Both quantized. */
  both: number;
  rows: { variant: "FP32" | "weights only" | "activations only" | "weights + activations"; score: number; drop: number }[];
  /** Which side causes the drop ("weights", "activations", "both", "none"). */
  culprit: "weights" | "activations" | "both" | "none";
  diagnosis: string;
}

/**
 * The guidebook's second step: quantize weights alone, then activations alone,
 * to see which side causes the drop and so which fixes to try first.
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
    const s = await scoreAll("weights vs activations", [
      { key: "fp32", sim: fp32, changedFrom: [] },
      { key: "weights", sim: weights },
      { key: "activations", sim: activations },
      { key: "both", sim: both },
    ], options);
    const f = s.get("fp32")!;
    const w = s.get("weights")!;
    const a = s.get("activations")!;
    const b = s.get("both")!;
    const tol = options.tolerance ?? Math.max(1e-3, Math.abs(f) * 0.005);
    const wDrop = f - w;
    const aDrop = f - a;
    const culprit = wDrop <= tol && aDrop <= tol ? "none" : wDrop > tol && aDrop > tol && Math.min(wDrop, aDrop) > 0.33 * Math.max(wDrop, aDrop) ? "both" : wDrop > aDrop ? "weights" : "activations";
    const fmt = (v: number) => (Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(4));
    // A drop as a signed change of the score: "−0.0200", or "+0.0005" when it improves.
    const change = (drop: number) => (drop > 0 ? `−${fmt(drop)}` : `+${fmt(-drop)}`);
    const next = {
      none: `Neither side alone costs more than ${fmt(tol)}; the drop of the full model (${fmt(f - b)}) comes from both together. Go on to the per-layer analysis.`,
      weights: `Weight quantization causes most of the drop (weights alone ${change(wDrop)}, activations alone ${change(aDrop)}). Fix weights first: cross-layer equalization (especially with depthwise-separable convolutions), per-channel quantization, then bias correction or AdaRound with calibration data.`,
      activations: `Activation quantization causes most of the drop (activations alone ${change(aDrop)}, weights alone ${change(wDrop)}). Fix activations first: try other range-setting methods (percentile, SQNR or MSE search) instead of min-max.`,
      both: `Both sides cost accuracy (weights alone ${change(wDrop)}, activations alone ${change(aDrop)}). Fix weights first (CLE, per-channel, bias correction, AdaRound), then activation ranges.`,
    }[culprit];
    return {
      step: "weights-vs-activations",
      metric: metricInfo(options),
      fp32: f,
      weightsOnly: w,
      activationsOnly: a,
      both: b,
      rows: [
        { variant: "FP32", score: f, drop: 0 },
        { variant: "weights only", score: w, drop: wDrop },
        { variant: "activations only", score: a, drop: aDrop },
        { variant: "weights + activations", score: b, drop: f - b },
      ],
      culprit,
      diagnosis: next,
    };
  } finally {
    fp32.dispose();
    weights.dispose();
    activations.dispose();
    both.dispose();
  }
}
