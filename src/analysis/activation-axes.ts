import * as tf from "@tensorflow/tfjs";
import { Dataset, requireData } from "../data/types";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../graph/forward";

/** Statistics of one slice of an activation (one channel, one token or one embedding dimension). */
export interface AxisStatsRow {
  node: string;
  /** "channel" for [batch, ..., channels]; "token" and "embedding" for [batch, tokens, dim]. */
  axis: "channel" | "token" | "embedding";
  index: number;
  min: number;
  max: number;
  mean: number;
  absMax: number;
}

export interface ActivationAxesResult {
  step: "activation-axes";
  rows: AxisStatsRow[];
  /** Per node and axis: largest absMax over the median absMax — how much one slice dominates the range. */
  outliers: { node: string; axis: AxisStatsRow["axis"]; index: number; ratio: number }[];
  diagnosis: string;
}

class AxisAccumulator {
  min: Float64Array;
  max: Float64Array;
  sum: Float64Array;
  count = new Float64Array(0);
  constructor(readonly size: number) {
    this.min = new Float64Array(size).fill(Infinity);
    this.max = new Float64Array(size).fill(-Infinity);
    this.sum = new Float64Array(size);
    this.count = new Float64Array(size);
  }
  /** Adds values whose slice index is floor(i / inner) % size. */
  add(values: ArrayLike<number>, inner: number): void {
    for (let i = 0; i < values.length; i++) {
      const k = Math.floor(i / inner) % this.size;
      const v = values[i];
      if (v < this.min[k]) this.min[k] = v;
      if (v > this.max[k]) this.max[k] = v;
      this.sum[k] += v;
      this.count[k]++;
    }
  }
}

/**
 * Activation statistics per channel (images: the last axis), or per token and
 * per embedding dimension (sequences: [batch, tokens, dim]), over a dataset,
 * for the given nodes (default: every node with a rank-2+ float output). This
 * is what shows a channel or token whose outliers stretch a per-tensor range.
 */
export async function activationAxes(graph: Graph, options: { data: Dataset; nodes?: string[]; onProgress?: ProgressFn }): Promise<ActivationAxesResult> {
  const data = requireData("activationAxes", options);
  const wanted = new Set(options.nodes ?? graph.nodes.filter((n) => n.outputShape.length >= 2 && !(n.op === "input" && n.attrs.dtype === "int32")).map((n) => n.name));
  for (const name of wanted) graph.node(name);
  const acc = new Map<string, { axis: AxisStatsRow["axis"]; acc: AxisAccumulator; inner: (shape: number[]) => number }[]>();
  await forEachBatch(graph, data, { task: "activation statistics", onProgress: options.onProgress }, (batch) => {
    const outputs = forward(graph, batch.inputs, {
      hook: (node, out) => {
        if (!wanted.has(node.name)) return;
        if (!acc.has(node.name)) {
          const last = out.shape[out.rank - 1] as number;
          acc.set(node.name, out.rank === 3
            ? [
                { axis: "token", acc: new AxisAccumulator(out.shape[1] as number), inner: (s) => s[2] },
                { axis: "embedding", acc: new AxisAccumulator(last), inner: () => 1 },
              ]
            : [{ axis: "channel", acc: new AxisAccumulator(last), inner: () => 1 }]);
        }
        const values = out.dataSync();
        for (const a of acc.get(node.name)!) a.acc.add(values, a.inner(out.shape));
      },
    });
    tf.dispose(outputs);
  });
  const rows: AxisStatsRow[] = [];
  const outliers: ActivationAxesResult["outliers"] = [];
  for (const [node, list] of acc) {
    for (const { axis, acc: a } of list) {
      const absMax: number[] = [];
      for (let k = 0; k < a.size; k++) {
        const m = Math.max(Math.abs(a.min[k]), Math.abs(a.max[k]));
        absMax.push(m);
        rows.push({ node, axis, index: k, min: a.min[k], max: a.max[k], mean: a.sum[k] / a.count[k], absMax: m });
      }
      const sorted = [...absMax].sort((x, y) => x - y);
      const median = sorted[Math.floor(sorted.length / 2)];
      const top = absMax.indexOf(sorted[sorted.length - 1]);
      if (median > 0) outliers.push({ node, axis, index: top, ratio: sorted[sorted.length - 1] / median });
    }
  }
  outliers.sort((a, b) => b.ratio - a.ratio);
  const worst = outliers[0];
  const diagnosis = !worst
    ? "No activation was observed."
    : worst.ratio > 8
      ? `In ${worst.node}, ${worst.axis} ${worst.index} reaches ${worst.ratio.toFixed(1)}× the median ${worst.axis}'s largest magnitude: one outlier slice sets the whole tensor's range. Consider a custom range (clip it), a higher bit-width for this quantizer, or (for weights feeding it) equalization.`
      : `No ${worst.axis} dominates: the largest is ${worst.ratio.toFixed(1)}× the median (${worst.node}).`;
  return { step: "activation-axes", rows, outliers, diagnosis };
}
