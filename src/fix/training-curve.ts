/**
 * One point of a training curve (AdaRound's per-layer loss, QAT's loss and
 * metric): plain rows, so a view can draw any number of series.
 */
export interface CurvePoint {
  /** What is being optimized: a layer name for AdaRound, "qat" for QAT. */
  run: string;
  /** "loss", "reconstruction", "rounding", "metric", ... */
  series: string;
  /** Iteration (AdaRound) or epoch / step (QAT). */
  step: number;
  value: number;
}
