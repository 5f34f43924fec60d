import { MetricInfo } from "../analysis/evaluation";
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
  /** The score after this step (for a fix: of the candidate, kept or not). */
  score: number;
  /** FP32 score minus `score`. */
  drop: number;
  /** The score the flow stood at before this step. */
  before: number;
  /** FP32's score and the target, so a step draws on its own. */
  fp32: number;
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
  fp32: number;
  /** The largest drop from FP32 the user accepts, and the score that means. */
  allowedDrop: number;
  target: number;
  met: boolean;
  steps: FlowStep[];
  /** Where the flow ended: its score, and the settings to reproduce the simulation. */
  final: { score: number; drop: number; config: QuantSimConfig; overrides: Record<string, SettingsPatch>[]; graphChanges: FlowBox[] };
  diagnosis: string;
}

export interface DebugFlowOptions {
  /** Evaluation data (and calibration data unless `calibration` is given). */
  data: Dataset;
  /** Calibration data (default: `data`). */
  calibration?: Dataset;
  /** The user's score (higher is better); otherwise a built-in metric over `data`. */
  evaluate?: (sim: QuantSim) => number | Promise<number>;
  metric?: "accuracy" | "agreement" | "sqnr" | "mse" | "psnr";
  /** Largest acceptable drop from the FP32 score, in metric units (0.01 = one point of accuracy). */
  target: number;
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
