import * as tf from "@tensorflow/tfjs";
import { checkedBatches } from "../data/validate";
import { Dataset, disposeBatch } from "../data/types";
import { Graph } from "../graph/graph";

/** QAT's training data in host memory: read once, shuffled and gathered per step. */
export interface HostColumn {
  data: Float32Array | Int32Array;
  /** Shape of one example. */
  shape: number[];
  dtype: "float32" | "int32";
}

export interface HostExamples {
  count: number;
  inputs: HostColumn[];
  labels?: HostColumn;
}

/** Reads every batch (validated against the graph's inputs) into host arrays: shuffling needs random access. */
export async function readExamples(graph: Graph, data: Dataset): Promise<HostExamples> {
  const inputChunks: (Float32Array | Int32Array)[][] = graph.inputs.map(() => []);
  const labelChunks: (Float32Array | Int32Array)[] = [];
  let inputShapes: number[][] = [];
  let labelShape: number[] | undefined;
  let labelDtype: "float32" | "int32" = "float32";
  let count = 0;
  let withLabels = 0;
  for await (const batch of checkedBatches(data, graph.inputSpecs)) {
    try {
      inputShapes = batch.inputs.map((t) => t.shape.slice(1));
      batch.inputs.forEach((t, i) => inputChunks[i].push(t.dataSync() as Float32Array | Int32Array));
      if (batch.labels) {
        const shape = batch.labels.shape.slice(1);
        if (labelShape && shape.join(",") !== labelShape.join(",")) throw new Error(`qat: labels of "${data.name}" change shape between batches ([${labelShape.join(", ")}] then [${shape.join(", ")}] per example)`);
        labelShape = shape;
        labelDtype = batch.labels.dtype === "int32" ? "int32" : "float32";
        labelChunks.push((labelDtype === "int32" ? batch.labels.dataSync() : tf.tidy(() => batch.labels!.toFloat().dataSync())) as Float32Array | Int32Array);
        withLabels += batch.labels.shape[0];
      }
      count += batch.inputs[0].shape[0];
    } finally {
      disposeBatch(batch);
    }
  }
  if (withLabels !== 0 && withLabels !== count) throw new Error(`qat: only ${withLabels} of the ${count} examples of "${data.name}" have labels`);
  const concat = (chunks: (Float32Array | Int32Array)[], dtype: "float32" | "int32") => {
    const out = dtype === "int32" ? new Int32Array(chunks.reduce((n, c) => n + c.length, 0)) : new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  };
  const specs = graph.inputSpecs;
  return {
    count,
    inputs: inputChunks.map((chunks, i) => ({ data: concat(chunks, specs[i].dtype), shape: inputShapes[i], dtype: specs[i].dtype })),
    labels: withLabels ? { data: concat(labelChunks, labelDtype), shape: labelShape!, dtype: labelDtype } : undefined,
  };
}

/** Fisher–Yates with the run's generator. */
export function shuffled(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function gather(column: HostColumn, indices: readonly number[]): tf.Tensor {
  const size = column.shape.reduce((a, b) => a * b, 1);
  const out = column.dtype === "int32" ? new Int32Array(indices.length * size) : new Float32Array(indices.length * size);
  indices.forEach((row, k) => out.set(column.data.subarray(row * size, (row + 1) * size), k * size));
  return tf.tensor(out, [indices.length, ...column.shape], column.dtype);
}
