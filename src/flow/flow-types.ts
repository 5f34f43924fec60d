import { EvaluateFn, MetricInfo } from "../analysis/evaluation";
import { MetricName, OutputSelection } from "../eval/metric";
import { Dataset } from "../data/types";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { QuantSim } from "../quant/quantsim";
import { QuantSimConfig, SettingsPatch } from "../quant/settings";

/** The guidebook's boxes, in the order the flow chart visits them. */
export type FlowBox =
  | "fp32-sanity-check"
  | "quantized-baseline"
  | "weights-vs-activations"
  | "fold-batch-norm"
  | "cross-layer-equalization"
  | "high-bias-absorption"
  | "bias-correction"
  | "per-channel"
  | "adaround"
  | "range-setting"
  | "per-layer-analysis"
  | "fix-quantizers"
  | "qat";

/** One step of the record: what ran, what it scored, what it found, and whether its change was kept. */
export interface FlowStep {
  index: number;
  box: FlowBox;
  title: string;
  kind: "analysis" | "fix";
  /**
   * The score after this step (for a fix: of the candidate, kept or not); null
   * before the first score of a fidelity metric (the FP32 sanity check: FP32 has no score against itself).
   */
  score: number | null;
  /** FP32 score minus `score`; null for a fidelity score (FP32 is the reference and has no score). */
  drop: number | null;
  /** The score the flow stood at before this step (null before the first score). */
  before: number | null;
  /** FP32's score (null for a fidelity score) and the target, so a step draws on its own. */
  fp32: number | null;
  target: number;
  /** For fixes: whether the change was kept (it raised the score, or it is how runtimes deploy). */
  kept: boolean;
  /** The fix did not apply (the finding says why). */
  skipped: boolean;
  /** Whether the flow's score met the target after this step. */
  met: boolean;
  /** What it found, in plain words. */
  finding: string;
  /** The step's own JSON result (an analysis result, a fix's details). */
  result?: unknown;
  seconds: number;
}

/** Everything `debugFlow` returns: the record and the model it ends with. */
export interface FlowRecord {
  step: "debug-flow";
  model: string;
  metric: MetricInfo;
  /** FP32's own score: a task score's reference; null for a fidelity score (FP32 is the reference). */
  fp32: number | null;
  /** The largest drop the user accepts: from FP32's score (task scores), or from identical outputs (agreement, cosine, MSE); else null. */
  allowedDrop: number | null;
  /** The score to reach (absolute, on the metric's scale: −MSE for mse). */
  target: number;
  /** The target in words: "drop ≤ 1.00 pt from FP32", "PSNR ≥ 40.0 dB". */
  targetText: string;
  /** For fidelity targets: the score with every quantizer at 16 bits, checked first (a target above it is refused). */
  reachable?: { bits: number; score: number };
  met: boolean;
  steps: FlowStep[];
  /** Where the flow ended: its score, and the settings to reproduce the simulation. */
  final: { score: number; drop: number | null; config: QuantSimConfig; overrides: Record<string, SettingsPatch>[]; graphChanges: FlowBox[] };
  diagnosis: string;
}

export interface DebugFlowOptions {
  /** Evaluation data (and calibration data unless `calibration` is given). */
  data: Dataset;
  /** Calibration data (default: `data`). */
  calibration?: Dataset;
  /** The user's score (higher is better); otherwise a built-in metric over `data`. See EvaluateFn. */
  evaluate?: EvaluateFn;
  /** Default: agreement for class outputs, sqnr otherwise; a target like { psnr: 40 } sets it. */
  metric?: MetricName;
  /** Multi-output models: the outputs built-in metrics score, by name or with weights. */
  outputs?: OutputSelection;
  /** PSNR's peak signal (default: the FP32 outputs' range). */
  peak?: number;
  /**
   * What to reach. A number, or { drop }: the largest acceptable drop from the
   * FP32 score, for task scores (0.01 = one point of accuracy), or from identical
   * outputs for agreement, cosine and MSE (1, 1, 0); refused for SQNR and PSNR. An absolute
   * score, for any metric and required for fidelity scores: { psnr: 40 },
   * { sqnr: 30 }, { cosine: 0.999 }, { agreement: 0.99 }, { accuracy: 0.9 },
   * { mse: 1e-4 } (at most), or { score: x } on the metric's own scale.
   */
  target: FlowTarget;
  /** Target quantization (default W8A8 per-tensor, AIMET-like). */
  config?: QuantSimConfig;
  /** Whether per-channel weights are an option on the target runtime (default true). */
  allowPerChannel?: boolean;
  /** CLE's ReLU6 handling (default "relu", as AIMET; "per-channel" keeps FP32 exact but cannot be exported to TF.js). */
  relu6?: "relu" | "per-channel";
  /** AdaRound iterations per layer (default 100, with step size 1e-2; 0 skips it). */
  adaroundIterations?: number;
  /** QAT epochs as the last resort (0, the default, skips it). */
  qatEpochs?: number;
  /** QAT's training data (default: the calibration data); with class labels it trains on them, else it distills FP32. */
  training?: Dataset;
  /** At most this many quantizers raised to higher precision by "fix individual quantizers". */
  maxRaised?: number;
  seed?: number;
  onProgress?: ProgressFn;
  /** Called after each step, e.g. to show it in a notebook. */
  onStep?: (step: FlowStep, record: FlowRecord) => void | Promise<void>;
}

/** A flow's target: a drop from FP32 (task scores), or an absolute score. */
export type FlowTarget = number | { drop: number } | { score: number } | Partial<Record<MetricName, number>>;

/** What a fix step hands back to the flow: a candidate to score, and what it did. */
export interface FixCandidate {
  /** A new FP32 graph, when the fix edits the model (the flow disposes it if the fix is not kept). */
  graph?: Graph;
  sim: QuantSim;
  finding: string;
  result?: unknown;
  /** Kept whatever its score (e.g. BatchNorm folding: runtimes fold anyway). */
  always?: boolean;
}
