import * as tf from "@tensorflow/tfjs";
import type * as Ort from "onnxruntime-node";
import { Dataset } from "../data/types";
import { bakedSimulation } from "../engine/onnx/baked-sim";
import { lowerErrorSums } from "../engine/onnx/error-sums";
import { InstanceOptions } from "../engine/onnx/lower-graph";
import { engineChunks } from "../engine/onnx/memory";
import { createSession, toOrtTensor } from "../engine/onnx/runtime";
import { ProgressFn } from "../progress";
import { QuantSim } from "../quant/quantsim";
import { forEachBatch } from "../runner/for-each-batch";

/** Where a node's error accumulates (layerError's ErrorSum): sums of squares and the count of values. */
export interface ErrorSink {
  sqErr: number;
  sqRef: number;
  count: number;
}

/**
 * layerError on ONNX Runtime: one session holds the FP32 model, the fully
 * quantized model and each quantized node alone (fed FP32 inputs), and returns
 * per node and channel the sums of squares the error statistics need
 * (lowerErrorSums), so no activation leaves the engine.
 */
export async function layerErrorOnnx(
  sim: QuantSim,
  data: Dataset,
  nodes: readonly string[],
  locals: ReadonlyMap<string, QuantSim>,
  sums: { propagated: ReadonlyMap<string, ErrorSink>; local: ReadonlyMap<string, ErrorSink> },
  options: { onProgress?: ProgressFn },
): Promise<number> {
  const graph = sim.graph;
  const instance = (s: QuantSim): InstanceOptions => {
    const baked = bakedSimulation(s, "layerError");
    return { quantizers: baked.quantizers, paramSource: baked.paramSource };
  };
  const model = lowerErrorSums(graph, nodes, instance(sim), new Map([...locals].map(([node, only]) => [node, instance(only)])));
  const session = await createSession(model.bytes);
  const total = (t: Ort.Tensor) => {
    const values = t.data as Float32Array;
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += values[i];
    return sum;
  };
  try {
    const { examples } = await forEachBatch(graph, data, { task: "per-layer error", onProgress: options.onProgress }, async (batch) => {
      // Three copies of the graph run in one session: sub-batches keep their activations within the memory budget.
      const chunks = engineChunks(graph, batch.inputs, 9);
      try {
        for (const inputs of chunks) {
          const feeds: Record<string, Ort.Tensor> = {};
          for (const input of model.inputs) if (input.kind === "model") feeds[input.onnx] = toOrtTensor(inputs[graph.inputs.indexOf(input.node)]);
          const results = await session.run(feeds);
          for (const n of model.nodes) {
            const reference = total(results[n.reference]);
            const count = Number((results[n.size].data as BigInt64Array)[0]);
            const add = (sink: ErrorSink | undefined, squares: string | undefined) => {
              if (!sink || !squares) return;
              sink.sqErr += total(results[squares]);
              sink.sqRef += reference;
              sink.count += count;
            };
            add(sums.propagated.get(n.node), n.propagated);
            add(sums.local.get(n.node), n.local);
          }
        }
      } finally {
        if (chunks.length > 1) chunks.forEach((c) => tf.dispose(c));
      }
    });
    return examples;
  } finally {
    await session.release();
  }
}
