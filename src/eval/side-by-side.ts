import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../data/types";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../runner/forward";
import { classIndices } from "./class-labels";
import { OutputComparator, OutputComparison } from "./output-comparison";

/** Anything that maps a batch's inputs to outputs: the FP32 graph, a QuantSim. */
export type Variant = (inputs: tf.Tensor[]) => tf.Tensor[];

export interface SideBySide<K extends string> {
  examples: number;
  /** Top-1 accuracy of the FP32 graph against the labels, when the data has class labels. */
  referenceAccuracy: number | null;
  variants: Record<K, OutputComparison & { accuracy: number | null }>;
}

/**
 * Runs the FP32 graph and each variant on the same batches and compares every
 * variant's outputs with FP32's (and with the labels, when there are class
 * labels). One pass over the data, whatever the number of variants.
 */
export async function compareWithFp32<K extends string>(
  graph: Graph,
  data: Dataset,
  variants: Record<K, Variant>,
  options: { onProgress?: ProgressFn; task?: string } = {},
): Promise<SideBySide<K>> {
  const names = Object.keys(variants) as K[];
  const comparators = new Map(names.map((n) => [n, new OutputComparator()]));
  const correct = new Map<K | "fp32", number>([["fp32", 0], ...names.map((n) => [n, 0] as [K, number])]);
  let labelled = 0;
  const { examples } = await forEachBatch(graph, data, { task: options.task ?? "compare", onProgress: options.onProgress }, (batch) => {
    const reference = forward(graph, batch.inputs);
    try {
      const classLabels = batch.labels && batch.labels.rank === 1 ? batch.labels : undefined;
      if (classLabels) {
        labelled += classLabels.shape[0];
        correct.set("fp32", correct.get("fp32")! + countCorrect(reference[0], classLabels));
      }
      for (const name of names) {
        const outputs = variants[name](batch.inputs);
        try {
          comparators.get(name)!.add(outputs, reference);
          if (classLabels) correct.set(name, correct.get(name)! + countCorrect(outputs[0], classLabels));
        } finally {
          tf.dispose(outputs);
        }
      }
    } finally {
      tf.dispose(reference);
    }
  });
  const accuracy = (k: K | "fp32") => (labelled > 0 ? correct.get(k)! / labelled : null);
  return {
    examples,
    referenceAccuracy: accuracy("fp32"),
    variants: Object.fromEntries(names.map((n) => [n, { ...comparators.get(n)!.result(), accuracy: accuracy(n) }])) as SideBySide<K>["variants"],
  };
}

function countCorrect(output: tf.Tensor, labels: tf.Tensor): number {
  const target = classIndices(labels);
  try {
    return tf.tidy(() => tf.sum(tf.equal(tf.argMax(output, -1), target).toInt()).dataSync()[0]);
  } finally {
    if (target !== labels) target.dispose();
  }
}
