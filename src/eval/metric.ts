import * as tf from "@tensorflow/tfjs";
import { classIndices } from "./class-labels";

/**
 * Built-in scores, each computed batch by batch against the labels or against
 * the FP32 model's outputs on the same batch. Every score is "higher is better"
 * (MSE is reported negated as `score`, with the plain value beside it), like
 * AIMET's eval callback, so sweeps can compare scores without special cases.
 */
export type MetricName = "accuracy" | "agreement" | "sqnr" | "mse" | "psnr";

export const METRICS: readonly MetricName[] = ["accuracy", "agreement", "sqnr", "mse", "psnr"];

export const METRIC_LABELS: Record<MetricName, string> = {
  accuracy: "top-1 accuracy",
  agreement: "top-1 agreement with FP32",
  sqnr: "output SQNR vs FP32 (dB)",
  mse: "-MSE vs FP32",
  psnr: "PSNR vs FP32 (dB)",
};

/** Streams one metric over batches. */
export class MetricAccumulator {
  private hits = 0;
  private count = 0;
  private sqErr = 0;
  private sqRef = 0;
  private values = 0;
  private peak = 0;

  constructor(readonly metric: MetricName) {}

  /** Adds one batch: `outputs` of the model scored, `reference` FP32 outputs, `labels` if any. */
  add(outputs: readonly tf.Tensor[], reference: readonly tf.Tensor[] | undefined, labels: tf.Tensor | undefined): void {
    const out = outputs[0];
    switch (this.metric) {
      case "accuracy": {
        if (!labels) throw new Error(`metric "accuracy" needs labels: give the data labels, or use metric "agreement"`);
        const target = labels.rank === out.rank ? tf.tidy(() => tf.argMax(labels, -1)) : classIndices(labels);
        this.hits += tf.tidy(() => tf.sum(tf.equal(tf.argMax(out, -1), target).toInt()).dataSync()[0]);
        if (target !== labels) target.dispose();
        this.count += out.shape[0];
        return;
      }
      case "agreement":
        this.hits += tf.tidy(() => tf.sum(tf.equal(tf.argMax(out, -1), tf.argMax(reference![0], -1)).toInt()).dataSync()[0]);
        this.count += out.shape[0];
        return;
      default: {
        const [se, sr, mx] = tf.tidy(() => {
          const parts = outputs.map((o, i) => {
            const r = reference![i];
            return tf.stack([tf.sum(tf.square(tf.sub(o, r))), tf.sum(tf.square(r)), tf.max(tf.abs(r))]);
          });
          return Array.from(tf.stack(parts).dataSync());
        }).reduce((acc, v, i) => {
          acc[i % 3] = i % 3 === 2 ? Math.max(acc[2], v) : acc[i % 3] + v;
          return acc;
        }, [0, 0, 0]);
        this.sqErr += se;
        this.sqRef += sr;
        this.peak = Math.max(this.peak, mx);
        this.values += outputs.reduce((n, o) => n + o.size, 0);
        this.count += out.shape[0];
      }
    }
  }

  /** The score (higher is better); an error when nothing was added. */
  score(): number {
    if (this.count === 0) throw new Error(`metric "${this.metric}": no examples were scored (empty dataset?)`);
    switch (this.metric) {
      case "accuracy":
      case "agreement":
        return this.hits / this.count;
      case "mse":
        return this.sqErr === 0 ? 0 : -this.sqErr / this.values;
      case "sqnr":
        // Identical outputs have no noise: report a finite ceiling so results stay JSON-friendly.
        return this.sqErr === 0 ? 200 : Math.min(200, 10 * Math.log10(this.sqRef / this.sqErr));
      case "psnr":
        return this.sqErr === 0 ? 200 : Math.min(200, 10 * Math.log10((this.peak * this.peak) / (this.sqErr / this.values)));
    }
  }

  get needsReference(): boolean {
    return this.metric !== "accuracy";
  }
}

export function metricName(value: unknown): MetricName {
  if (typeof value === "string" && (METRICS as readonly string[]).includes(value)) return value as MetricName;
  throw new Error(`invalid metric: ${JSON.stringify(value)} (expected one of ${METRICS.join(", ")}, or an evaluate function)`);
}
