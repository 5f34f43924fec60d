import * as tf from "@tensorflow/tfjs";

/** How far one model's outputs are from a reference's, over a whole dataset. */
export interface OutputComparison {
  examples: number;
  /** Largest |output - reference| over all outputs and examples. */
  maxAbsError: number;
  /** maxAbsError divided by the largest |reference| value (the outputs' scale). */
  maxRelError: number;
  /** Mean squared error over all output values. */
  mse: number;
  /** Output SQNR in dB: 10 log10(sum ref^2 / sum (out - ref)^2); null when identical (no noise at all). */
  sqnrDb: number | null;
  /** Share of examples whose arg-max class agrees, for classifier-like first outputs; null otherwise. */
  top1Agreement: number | null;
}

/**
 * Accumulates the comparison batch by batch: only a few numbers per batch are
 * read back, so it streams over datasets of any size.
 */
export class OutputComparator {
  private examples = 0;
  private maxAbs = 0;
  private scale = 0;
  private sqErr = 0;
  private sqRef = 0;
  private count = 0;
  private agree = 0;
  private classifier: boolean | undefined;

  add(outputs: readonly tf.Tensor[], reference: readonly tf.Tensor[]): void {
    if (outputs.length !== reference.length) throw new Error(`comparing ${outputs.length} outputs with ${reference.length} reference outputs`);
    const stats = tf.tidy(() =>
      outputs.map((o, i) => {
        const r = reference[i];
        const d = tf.sub(o.toFloat(), r.toFloat());
        return tf.stack([tf.max(tf.abs(d)), tf.max(tf.abs(r)), tf.sum(tf.square(d)), tf.sum(tf.square(r))]);
      }),
    );
    const values = stats.map((s) => s.dataSync());
    tf.dispose(stats);
    values.forEach((v, i) => {
      this.maxAbs = Math.max(this.maxAbs, v[0]);
      this.scale = Math.max(this.scale, v[1]);
      this.sqErr += v[2];
      this.sqRef += v[3];
      this.count += outputs[i].size;
    });
    const first = reference[0];
    this.classifier ??= first.rank === 2 && first.shape[1]! > 1;
    if (this.classifier) {
      this.agree += tf.tidy(() => tf.sum(tf.equal(tf.argMax(outputs[0], -1), tf.argMax(first, -1)).toInt()).dataSync()[0]);
    }
    this.examples += first.shape[0] ?? 1;
  }

  result(): OutputComparison {
    if (this.examples === 0) throw new Error("nothing was compared: the dataset was empty");
    return {
      examples: this.examples,
      maxAbsError: this.maxAbs,
      maxRelError: this.scale > 0 ? this.maxAbs / this.scale : this.maxAbs,
      mse: this.sqErr / this.count,
      sqnrDb: this.sqErr === 0 ? null : 10 * Math.log10(this.sqRef / this.sqErr),
      top1Agreement: this.classifier ? this.agree / this.examples : null,
    };
  }
}
