import * as tf from "@tensorflow/tfjs";
import type * as Ort from "onnxruntime-node";
import { Batch, Dataset } from "../data/types";
import { bakedSimulation } from "../engine/onnx/baked-sim";
import { lowerGraph, LoweredModel } from "../engine/onnx/lower-graph";
import { createSession, toOrtTensor } from "../engine/onnx/runtime";
import { memoryBudget } from "../engine/onnx/memory";
import { ProgressFn } from "../progress";
import { QuantSim } from "../quant/quantsim";
import { forEachBatch } from "../runner/for-each-batch";

/** Where a node's error accumulates (layerError's ErrorSum). */
export interface ErrorSink {
  addValues(out: ArrayLike<number>, ref: ArrayLike<number>): void;
}

interface Run {
  lowered: LoweredModel;
  session: Ort.InferenceSession;
}

/** Examples per ORT run so that every node's value, FP32 and quantized, fits in about `budgetBytes`. */
function chunkSize(nodes: { outputShape: readonly (number | null)[] }[], batch: Batch, budgetBytes: number): number {
  const perExample = nodes.reduce((a, n) => a + n.outputShape.slice(1).reduce<number>((x, d, i) => x * (d ?? batch.inputs[0].shape[i + 1] ?? 1), 1), 0) * 4 * 2;
  return Math.max(1, Math.floor(budgetBytes / perExample));
}

/**
 * layerError on ONNX Runtime: one FP32 and one fully quantized session that
 * return every node's value, and one small session per quantized node that
 * runs that node alone from FP32 inputs. Batches are split so that the values
 * of all nodes stay within a memory budget.
 */
export async function layerErrorOnnx(
  sim: QuantSim,
  data: Dataset,
  nodes: readonly string[],
  locals: ReadonlyMap<string, QuantSim>,
  sums: { propagated: ReadonlyMap<string, ErrorSink>; local: ReadonlyMap<string, ErrorSink> },
  options: { onProgress?: ProgressFn; budgetBytes?: number },
): Promise<number> {
  const graph = sim.graph;
  const taps = nodes.map((node) => ({ node }));
  const runs: Run[] = [];
  const open = async (lowered: LoweredModel) => {
    const run = { lowered, session: await createSession(lowered.bytes) };
    runs.push(run);
    return run;
  };
  try {
    const fp32 = await open(lowerGraph(graph, { outputs: [], taps }));
    const baked = bakedSimulation(sim, "layerError");
    const quantized = await open(lowerGraph(graph, { outputs: [], taps, quantizers: baked.quantizers, paramSource: baked.paramSource }));
    const single = new Map<string, Run>();
    for (const [node, only] of locals) {
      const b = bakedSimulation(only, "layerError");
      const inputs = [...new Set(graph.node(node).inputs)];
      single.set(node, await open(lowerGraph(graph, { outputs: [], taps: [{ node }], fed: inputs, layouts: fp32.lowered.values, quantizers: b.quantizers, paramSource: b.paramSource })));
    }
    const feedsOf = (run: Run, model: ReadonlyMap<string, Ort.Tensor>) => {
      const feeds: Record<string, Ort.Tensor> = {};
      for (const i of run.lowered.inputs) if (i.kind === "model") feeds[i.onnx] = model.get(i.node)!;
      return feeds;
    };
    const byNode = (run: Run, results: Ort.InferenceSession.ReturnType) => new Map(run.lowered.outputs.map((o) => [o.node, results[o.onnx]]));
    const { examples } = await forEachBatch(graph, data, { task: "per-layer error", onProgress: options.onProgress }, async (batch) => {
      const n = batch.inputs[0].shape[0];
      const step = chunkSize(nodes.map((x) => graph.node(x)), batch, options.budgetBytes ?? memoryBudget() / 3);
      for (let start = 0; start < n; start += step) {
        const size = Math.min(step, n - start);
        const inputs = batch.inputs.map((t) => (size === n ? t : tf.slice(t, start, size)));
        try {
          // The batch's model inputs, read once for every session of this chunk.
          const model = new Map(graph.inputs.map((name, i) => [name, toOrtTensor(inputs[i])]));
          const reference = byNode(fp32, await fp32.session.run(feedsOf(fp32, model)));
          const whole = byNode(quantized, await quantized.session.run(feedsOf(quantized, model)));
          for (const node of nodes) sums.propagated.get(node)!.addValues(whole.get(node)!.data as Float32Array, reference.get(node)!.data as Float32Array);
          for (const [node, run] of single) {
            const feeds = feedsOf(run, model);
            // A node fed by a model input that is no tap (int32 ids) reads it from the batch.
            for (const i of run.lowered.inputs) if (i.kind === "fed") feeds[i.onnx] = reference.get(i.node) ?? model.get(i.node)!;
            const out = (await run.session.run(feeds))[run.lowered.outputs[0].onnx];
            sums.local.get(node)!.addValues(out.data as Float32Array, reference.get(node)!.data as Float32Array);
          }
        } finally {
          if (size !== n) tf.dispose(inputs);
        }
      }
    });
    return examples;
  } finally {
    for (const r of runs) await r.session.release();
  }
}
