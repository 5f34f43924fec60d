import * as tf from "@tensorflow/tfjs";
import { Dataset, requireData } from "../data/types";
import { Encoding } from "../quant/encoding";
import { ProgressFn } from "../progress";
import { QuantSim } from "../quant/quantsim";
import { forEachBatch } from "../runner/for-each-batch";
import { forwardKeepingAll, unchangedBy } from "../runner/intermediates";
import { descendants } from "./score-variants";
import { onlyEnabled } from "./variants";
import { onnxCanRun } from "../engine/onnx/support";
import { layerErrorOnnx } from "./layer-error-onnx";

/** Error of one node's output against FP32. */
export interface ErrorStats {
  mse: number;
  /** 10 log10(signal power / noise power); null when there is no noise at all. */
  sqnrDb: number | null;
  /**
   * rmse divided by the node's activation quantization step: ≈ 1/sqrt(12) ≈ 0.289
   * when the error is pure rounding at this node; null when the node has no
   * output quantizer.
   */
  rmseOverStep: number | null;
}

export interface LayerErrorRow {
  index: number;
  node: string;
  op: string;
  /** The node's quantizers (weights and output) that are enabled. */
  quantizers: string[];
  /** Whole model quantized: what reaches this node, with everything before it. */
  propagated: ErrorStats;
  /** Only this node's quantizers on, its inputs taken from FP32: the error it makes itself. Null without quantizers. */
  local: ErrorStats | null;
}

export interface LayerErrorResult {
  step: "layer-error";
  examples: number;
  rows: LayerErrorRow[];
  diagnosis: string;
}

class ErrorSum {
  sqErr = 0;
  sqRef = 0;
  count = 0;
  add(out: tf.Tensor, ref: tf.Tensor): void {
    const [e, r] = tf.tidy(() => {
      const d = tf.sub(out.toFloat(), ref.toFloat());
      return tf.stack([tf.sum(tf.square(d)), tf.sum(tf.square(ref.toFloat()))]).dataSync();
    });
    this.sqErr += e;
    this.sqRef += r;
    this.count += out.size;
  }
  /** The same from flat values (the ONNX engine's, in any layout: the sums do not depend on it). */
  addValues(out: ArrayLike<number>, ref: ArrayLike<number>): void {
    for (let i = 0; i < ref.length; i++) {
      const d = out[i] - ref[i];
      this.sqErr += d * d;
      this.sqRef += ref[i] * ref[i];
    }
    this.count += ref.length;
  }
  stats(step: number | null): ErrorStats {
    const mse = this.count ? this.sqErr / this.count : 0;
    return {
      mse,
      sqnrDb: this.sqErr === 0 ? null : 10 * Math.log10(this.sqRef / this.sqErr),
      rmseOverStep: step ? Math.sqrt(mse) / step : null,
    };
  }
}

/**
 * Per-layer error at every node against FP32, both propagated (whole model
 * quantized) and local (only that node's quantizers, FP32 inputs — PyTorch
 * Numeric Suite's "shadow" comparison), so the error a layer makes is told
 * apart from the error it inherits. One pass over the data.
 */
export async function layerError(sim: QuantSim, options: { data: Dataset; onProgress?: ProgressFn }): Promise<LayerErrorResult> {
  const data = requireData("layerError", options);
  const graph = sim.graph;
  const byNode = new Map<string, string[]>();
  for (const s of sim.sites) if (sim.settingsOf(s.name).enabled) byNode.set(s.node, [...(byNode.get(s.node) ?? []), s.name]);
  if (byNode.size === 0) throw new Error(`the simulation of "${graph.name}" has nothing to quantize: no quantizer is enabled`);
  const nodes = graph.nodes.filter((n) => n.op !== "input" || n.attrs.dtype !== "int32");
  const locals = new Map([...byNode].map(([node, qs]) => [node, { sim: onlyEnabled(sim, qs), changed: descendants(graph, [node]) }]));
  const propagated = new Map(nodes.map((n) => [n.name, new ErrorSum()]));
  const local = new Map([...byNode.keys()].map((n) => [n, new ErrorSum()]));
  // A copy, so that the caller's simulation is left as it was (no cached quantized weights).
  const whole = sim.with({});
  let examples: number;
  if (onnxCanRun(graph, [whole, ...[...locals.values()].map((l) => l.sim)])) {
    try {
      examples = await layerErrorOnnx(whole, data, nodes.map((n) => n.name), new Map([...locals].map(([n, l]) => [n, l.sim])), { propagated, local }, { onProgress: options.onProgress });
    } finally {
      for (const l of locals.values()) l.sim.dispose();
      whole.dispose();
    }
  } else try {
    ({ examples } = await forEachBatch(graph, data, { task: "per-layer error", onProgress: options.onProgress }, (batch) => {
      const { outputs, all } = forwardKeepingAll(graph, batch.inputs);
      try {
        tf.dispose(outputs);
        tf.dispose(whole.forward(batch.inputs, { hook: (node, out) => void propagated.get(node.name)?.add(out, all.get(node.name)!) }));
        for (const [node, l] of locals) {
          const [out] = l.sim.forward(batch.inputs, { outputs: [node], cached: unchangedBy(all, l.changed) });
          local.get(node)!.add(out, all.get(node)!);
          out.dispose();
        }
      } finally {
        tf.dispose([...all.values()]);
      }
    }));
  } finally {
    for (const l of locals.values()) l.sim.dispose();
    whole.dispose();
  }
  const stepOf = (node: string) => {
    const name = `${node}.output`;
    if (!sim.sites.some((s) => s.name === name)) return null;
    const enc = sim.encodingOf(name) as Encoding | null;
    return enc ? enc.scale : null;
  };
  const rows = nodes.map((n, index) => ({
    index,
    node: n.name,
    op: n.op,
    quantizers: byNode.get(n.name) ?? [],
    propagated: propagated.get(n.name)!.stats(stepOf(n.name)),
    local: local.has(n.name) ? local.get(n.name)!.stats(stepOf(n.name)) : null,
  }));
  return { step: "layer-error", examples, rows, diagnosis: diagnoseLayerError(rows) };
}

function diagnoseLayerError(rows: LayerErrorRow[]): string {
  const withLocal = rows.filter((r) => r.local && r.local.sqnrDb !== null);
  if (withLocal.length === 0) return "No quantizer adds any error on this data.";
  const worstLocal = [...withLocal].sort((a, b) => a.local!.sqnrDb! - b.local!.sqnrDb!)[0];
  const noisy = rows.filter((r) => r.local?.rmseOverStep != null && r.local.rmseOverStep > 0.5);
  const last = rows[rows.length - 1];
  let text = `${worstLocal.node} makes the largest error of its own (local SQNR ${worstLocal.local!.sqnrDb!.toFixed(1)} dB).`;
  if (last.propagated.sqnrDb !== null) text += ` At the output the accumulated SQNR is ${last.propagated.sqnrDb.toFixed(1)} dB.`;
  text += noisy.length
    ? ` ${noisy.map((r) => r.node).slice(0, 3).join(", ")} err by more than half a step of their output grid (rmse/step > 0.5; rounding alone gives 0.289): their weight quantization or a clipping range adds error — look at their per-channel weights and histograms.`
    : " Every output quantizer's local error is close to pure rounding noise (rmse/step ≈ 0.289).";
  return text;
}
