import { EvaluationOptions } from "../analysis/evaluation";
import { Dataset } from "../data/types";
import { MetricName, metricName } from "../eval/metric";
import { ProgressFn } from "../progress";
import { Encoding } from "../quant/encoding";
import { QuantSim } from "../quant/quantsim";
import { CurvePoint } from "./training-curve";

/** QAT's options: the losses, the defaults and their checks. */
export type QatLoss = "crossentropy" | "mse" | "distillation";
const LOSSES: readonly QatLoss[] = ["crossentropy", "mse", "distillation"];

export interface QatOptions {
  /** The training data (labels or targets, or none for distillation from FP32). */
  data: Dataset;
  /** Passes over the training data (default 1). */
  epochs?: number;
  /** Examples per step (default 32). */
  batchSize?: number;
  /** Adam's learning rate for the weights (default 3e-4). */
  learningRate?: number;
  /** Also learn each activation quantizer's [min, max] (default false: calibrated encodings stay fixed). */
  learnRanges?: boolean;
  /** Adam's learning rate for learned ranges (default 10 × learningRate: ranges are larger numbers than weights). */
  rangeLearningRate?: number;
  /**
   * "crossentropy": integer class labels (or one-hot/soft labels) against the logits;
   * "mse": float targets shaped like the output; "distillation": match the FP32
   * model's outputs (KL divergence of the softmax for classifiers, MSE otherwise), no labels needed.
   * Default: crossentropy for a classifier with labels, mse for other labelled data, distillation without labels.
   */
  loss?: QatLoss;
  /** Scored after every epoch (and before the first step) with `metric`; the points go to the curve. */
  validation?: Dataset;
  /** The validation metric (default: accuracy when the training data has labels, else agreement with FP32). */
  metric?: MetricName;
  /** Seeds the shuffling (default 0): the same seed gives the same trained model. */
  seed?: number;
  /** Steps between two points of the loss curve (default: about ten points per epoch). */
  curveEvery?: number;
  /**
   * Recalibrate the activation statistics on the training data after training
   * (default false: the returned simulation keeps the activation encodings the
   * weights were trained with, like AIMET's QAT export).
   */
  recalibrate?: boolean;
  /** After every step: done/total steps, the loss in `detail`. */
  onProgress?: ProgressFn;
  /** Every curve point, as it is made (for a live chart). */
  onCurve?: (point: CurvePoint) => void;
  /** Scores the simulation before and after (`scores`), like every fix. */
  evaluation?: EvaluationOptions;
}


interface NormalizedOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  learnRanges: boolean;
  rangeLearningRate: number;
  loss?: QatLoss;
  metric?: MetricName;
  seed: number;
  curveEvery?: number;
  recalibrate: boolean;
}



function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) throw new Error(`qat: invalid ${name}: ${JSON.stringify(value)} (expected a positive integer)`);
  return value;
}

function positiveNumber(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new Error(`qat: invalid ${name}: ${JSON.stringify(value)} (expected a positive number)`);
  return value;
}

export function normalizeOptions(o: QatOptions): NormalizedOptions {
  if (o.loss !== undefined && !LOSSES.includes(o.loss)) throw new Error(`qat: invalid loss: ${JSON.stringify(o.loss)} (expected one of ${LOSSES.join(", ")})`);
  if (o.seed !== undefined && !(typeof o.seed === "number" && Number.isInteger(o.seed))) throw new Error(`qat: invalid seed: ${JSON.stringify(o.seed)} (expected an integer)`);
  const learningRate = positiveNumber(o.learningRate, "learningRate", 3e-4);
  return {
    epochs: positiveInteger(o.epochs, "epochs", 1),
    batchSize: positiveInteger(o.batchSize, "batchSize", 32),
    learningRate,
    learnRanges: o.learnRanges === true,
    rangeLearningRate: positiveNumber(o.rangeLearningRate, "rangeLearningRate", 10 * learningRate),
    loss: o.loss,
    metric: o.metric === undefined ? undefined : metricName(o.metric),
    seed: o.seed ?? 0,
    curveEvery: o.curveEvery === undefined ? undefined : positiveInteger(o.curveEvery, "curveEvery", 1),
    recalibrate: o.recalibrate === true,
  };
}

/** The activation encodings the simulation uses now (null: bypassed); a clear error when it is not calibrated. */
export function calibratedActivationEncodings(sim: QuantSim): Map<string, Encoding | null> {
  const out = new Map<string, Encoding | null>();
  for (const site of sim.sites) {
    if (site.kind !== "activation") continue;
    try {
      out.set(site.name, sim.encodingOf(site.name) as Encoding | null);
    } catch (err) {
      throw new Error(`qat: ${(err as Error).message}`);
    }
  }
  return out;
}
