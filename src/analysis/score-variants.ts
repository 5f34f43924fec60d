import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../data/types";
import { MetricAccumulator, MetricName, metricSpec, MetricSpec, OutputScore, outputShapes } from "../eval/metric";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../graph/forward";
import { forwardKeepingAll, unchangedBy } from "../runner/intermediates";
import { QuantSim } from "../quant/quantsim";
import { onnxCanRun } from "../engine/onnx/support";
import { OnnxProgram, PassBatch } from "../engine/onnx/program";
import { engineChunks, engineMemory, sessionChunks } from "../engine/onnx/memory";
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
  /**
   * The FP32 model itself (every quantizer bypassed): a fidelity score against
   * FP32 does not score it, and an `evaluate` may give it +Infinity.
   */
  fp32?: boolean;
}

export interface ScoreOptions {
  /** A metric name (resolved against the graph's outputs), or a resolved spec (outputs chosen, PSNR's peak). */
  metric: MetricName | MetricSpec;
  /** Filled with each variant's per-output scores. */
  perOutput?: Map<string, OutputScore[]>;
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
  const spec = typeof options.metric === "string" ? metricSpec({ metric: options.metric }, outputShapes(graph)) : options.metric;
  const accumulators = new Map(variants.map((v) => [v.key, new MetricAccumulator(spec)]));
  if (onnxCanRun(graph, variants.map((v) => v.sim))) await scoreVariantsOnnx(graph, data, variants, accumulators, options);
  else await scoreVariantsTfjs(graph, data, variants, accumulators, options);
  for (const [k, a] of accumulators) options.perOutput?.set(k, a.perOutput());
  return new Map([...accumulators].map(([k, a]) => [k, a.score()]));
}

async function scoreVariantsTfjs(graph: Graph, data: Dataset, variants: readonly ScoredVariant[], accumulators: Map<string, MetricAccumulator>, options: ScoreOptions): Promise<void> {
  const metric = typeof options.metric === "string" ? options.metric : options.metric.metric;
  const downstream = options.cacheFp32 ? new Map(variants.map((v) => [v.key, descendants(graph, v.changedFrom ?? graph.inputs)])) : undefined;
  let examples = 0;
  await forEachBatch(graph, data, { task: options.task ?? "scoring", onProgress: options.onProgress }, (batch) => {
    // Accuracy compares with the labels only: without the cache, the FP32 pass would be wasted.
    const { outputs: reference, all } = downstream
      ? forwardKeepingAll(graph, batch.inputs)
      : { outputs: metric === "accuracy" ? [] : forward(graph, batch.inputs), all: new Map<string, tf.Tensor>() };
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
}

/**
 * The share of the engine's memory a pass's values may take (one over this).
 * A longer pass only saves building each variant's own sessions again, which
 * costs about ten examples' runs; the values it holds are freed after the
 * sweep but stay with the process's allocator, under every later step. On
 * MobileNetV2 with 256 photos, passes of 96 rather than 256 kept
 * `qdebug analyze` at 1.30 GB instead of 1.46 GB, in the same time.
 */
const PASS_SHARE = 10;

/**
 * The same scores with ONNX Runtime, pass by pass: as many batches as the
 * memory budget lets the engine hold are gathered, and every variant runs on
 * all of them, sharing what their configurations share (OnnxProgram.runPass).
 * A "disable one" or "enable one" sweep then computes the common trunk once
 * per batch, and builds each variant's own session once per pass.
 */
async function scoreVariantsOnnx(graph: Graph, data: Dataset, variants: readonly ScoredVariant[], accumulators: Map<string, MetricAccumulator>, options: ScoreOptions): Promise<void> {
  const referenceKey = "\u0000reference";
  const reference = allBypassed(variants[0].sim);
  const needsReference = (typeof options.metric === "string" ? options.metric : options.metric.metric) !== "accuracy";
  // Segments pay off when variants share parts; a few whole-model variants run fastest in one session each.
  // Many variants run in one-thread sessions: small segments gain nothing from a second thread (same wall time, 25 % more CPU).
  const many = variants.length > 3;
  const program = new OnnxProgram(graph, variants[0].sim.sites, { segments: many ? 10 : 1, threads: many ? 1 : undefined });
  const task = options.task ?? "scoring";
  const started = Date.now();
  let pass: { feeds: PassBatch; labels?: tf.Tensor }[] = [];
  let passExamples = 0;
  let passLimit: number | undefined;
  let examples = 0;

  const runPass = async () => {
    const references: tf.Tensor[][] = [];
    const runs = variants.length * pass.length;
    let delivered = 0;
    try {
      // The FP32 reference runs first (in the sessions an FP32 variant would use), so each variant is scored as it comes.
      if (needsReference) {
        await program.runPass(pass.map((p) => p.feeds), [{ key: referenceKey, sim: reference }], (_key, b, outputs) => {
          references[b] = outputs.map((t) => t.clone());
        });
      }
      await program.runPass(pass.map((p) => p.feeds), variants, (key, b, outputs) => {
        accumulators.get(key)!.add(outputs, needsReference ? references[b] : undefined, pass[b].labels);
        delivered++;
        options.onProgress?.({ task, done: examples + Math.floor((passExamples * delivered) / runs), total: data.size, unit: "examples", elapsedMs: Date.now() - started });
      }, { consumeInputs: true });
    } finally {
      for (const r of references) tf.dispose(r);
      for (const p of pass) p.labels?.dispose();
    }
    examples += passExamples;
    pass = [];
    passExamples = 0;
    options.onPartial?.(new Map([...accumulators].map(([k, a]) => [k, a.score()])), examples);
  };

  try {
    await forEachBatch(graph, data, { task }, async (batch) => {
      // Sub-batches keep the sessions' activations within the memory budget; the pass holds a share of it too.
      // A few variants run whole-model sessions on two threads, which need sub-batches of several examples.
      const chunks = many ? engineChunks(graph, batch.inputs) : sessionChunks(graph, batch.inputs, variants.length + 2);
      passLimit ??= Math.max(1, Math.floor(engineMemory() / PASS_SHARE / program.passBytesPerExample(batch.inputs)));
      let start = 0;
      for (const inputs of chunks) {
        const size = inputs[0].shape[0];
        const labels = batch.labels ? (chunks.length > 1 ? tf.slice(batch.labels, start, size) : tf.clone(batch.labels)) : undefined;
        pass.push({ feeds: program.feedsOf(inputs), labels });
        if (chunks.length > 1) tf.dispose(inputs);
        start += size;
      }
      passExamples += batch.inputs[0].shape[0];
      if (passExamples >= passLimit) await runPass();
    });
    if (pass.length > 0) await runPass();
  } finally {
    for (const p of pass) p.labels?.dispose();
    reference.dispose();
    await program.dispose();
  }
}

/** The nodes at or after `from`: those whose values can change when `from` change. */
export function descendants(graph: Graph, from: readonly string[]): Set<string> {
  const out = new Set<string>(from);
  for (const node of graph.nodes) if (node.inputs.some((i) => out.has(i))) out.add(node.name);
  return out;
}
