import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../data/types";
import { MetricAccumulator, MetricName } from "../eval/metric";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../runner/forward";
import { forwardKeepingAll, unchangedBy } from "../runner/intermediates";
import { QuantSim } from "../quant/quantsim";
import { onnxCanRun } from "../engine/onnx/support";
import { OnnxProgram } from "../engine/onnx/program";
import { engineThreads } from "../engine/onnx/runtime";
import { engineChunks } from "../engine/onnx/memory";
import { allBypassed } from "./variants";

/** One simulation to score, and (for the cached sweep) the nodes it quantizes first. */
export interface ScoredVariant {
  key: string;
  sim: QuantSim;
  /**
   * Nodes whose outputs may differ from FP32 in this variant. Everything not
   * downstream of them is pure FP32, so with `cacheFp32` it is read from the
   * batch's FP32 pass instead of being recomputed.
   */
  changedFrom?: readonly string[];
}

export interface ScoreOptions {
  metric: MetricName;
  /** Reuse FP32 intermediates upstream of each variant's first quantizer. */
  cacheFp32?: boolean;
  onProgress?: ProgressFn;
  /** Running scores of every variant on the examples seen so far, after each batch. */
  onPartial?: (scores: Map<string, number>, examples: number) => void;
  /** Progress label. */
  task?: string;
}

/**
 * Scores many variants in one pass over the data: batch by batch, the FP32
 * reference is computed once and every variant runs on the same batch. With
 * `cacheFp32`, each variant runs only the part of the graph downstream of what
 * it changes; the scores are the same as running it whole, because the nodes
 * skipped would have computed the very same FP32 tensors.
 */
export async function scoreVariants(graph: Graph, data: Dataset, variants: readonly ScoredVariant[], options: ScoreOptions): Promise<Map<string, number>> {
  if (onnxCanRun(graph, variants.map((v) => v.sim))) return scoreVariantsOnnx(graph, data, variants, options);
  const accumulators = new Map(variants.map((v) => [v.key, new MetricAccumulator(options.metric)]));
  const downstream = options.cacheFp32 ? new Map(variants.map((v) => [v.key, descendants(graph, v.changedFrom ?? graph.inputs)])) : undefined;
  let examples = 0;
  await forEachBatch(graph, data, { task: options.task ?? "scoring", onProgress: options.onProgress }, (batch) => {
    // Accuracy compares with the labels only: without the cache, the FP32 pass would be wasted.
    const { outputs: reference, all } = downstream
      ? forwardKeepingAll(graph, batch.inputs)
      : { outputs: options.metric === "accuracy" ? [] : forward(graph, batch.inputs), all: new Map<string, tf.Tensor>() };
    try {
      for (const v of variants) {
        const outputs = v.sim.forward(batch.inputs, { cached: downstream ? unchangedBy(all, downstream.get(v.key)!) : undefined });
        try {
          accumulators.get(v.key)!.add(outputs, reference, batch.labels);
        } finally {
          tf.dispose(outputs);
        }
      }
    } finally {
      tf.dispose(reference);
      tf.dispose([...all.values()]);
    }
    examples += batch.inputs[0].shape[0];
    options.onPartial?.(new Map([...accumulators].map(([k, a]) => [k, a.score()])), examples);
  });
  return new Map([...accumulators].map(([k, a]) => [k, a.score()]));
}

/**
 * The same scores with ONNX Runtime: every variant runs on the batch, sharing
 * what their configurations share (see OnnxProgram), so the FP32 trunk of an
 * "enable one" sweep is computed once per batch without an explicit cache.
 */
async function scoreVariantsOnnx(graph: Graph, data: Dataset, variants: readonly ScoredVariant[], options: ScoreOptions): Promise<Map<string, number>> {
  const accumulators = new Map(variants.map((v) => [v.key, new MetricAccumulator(options.metric)]));
  const referenceKey = "\u0000reference";
  const reference = allBypassed(variants[0].sim);
  // Segments pay off when variants share parts; a few whole-model variants run fastest in one session each.
  // Many variants also run side by side, one per core: small sessions scale better that way than on several threads each.
  const many = variants.length > 3;
  const program = new OnnxProgram(graph, variants[0].sim.sites, { segments: many ? 10 : 1, lanes: many ? engineThreads() : 1 });
  let examples = 0;
  try {
    const needsReference = options.metric !== "accuracy";
    const all = [...(needsReference ? [{ key: referenceKey, sim: reference }] : []), ...variants];
    await forEachBatch(graph, data, { task: options.task ?? "scoring", onProgress: options.onProgress }, async (batch) => {
      // Sub-batches keep the sessions' memory within the budget; metrics stream over them.
      const chunks = engineChunks(graph, batch.inputs);
      let start = 0;
      for (const inputs of chunks) {
        const size = inputs[0].shape[0];
        const labels = batch.labels && chunks.length > 1 ? tf.slice(batch.labels, start, size) : batch.labels;
        let kept: tf.Tensor[] = [];
        try {
          await program.run(inputs, all, (key, outputs) => {
            if (key === referenceKey) kept = outputs.map((t) => t.clone());
            else accumulators.get(key)!.add(outputs, needsReference ? kept : undefined, labels);
          });
        } finally {
          tf.dispose(kept);
          if (chunks.length > 1) tf.dispose([...inputs, ...(labels ? [labels] : [])]);
        }
        start += size;
      }
      examples += batch.inputs[0].shape[0];
      options.onPartial?.(new Map([...accumulators].map(([k, a]) => [k, a.score()])), examples);
    });
  } finally {
    reference.dispose();
    await program.dispose();
  }
  return new Map([...accumulators].map(([k, a]) => [k, a.score()]));
}

/** The nodes at or after `from`: those whose values can change when `from` change. */
export function descendants(graph: Graph, from: readonly string[]): Set<string> {
  const out = new Set<string>(from);
  for (const node of graph.nodes) if (node.inputs.some((i) => out.has(i))) out.add(node.name);
  return out;
}
