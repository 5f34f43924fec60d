import * as tf from "@tensorflow/tfjs";
import { Dataset, requireData } from "../data/types";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../graph/forward";
import { classIndices } from "./class-labels";
import { OutputComparator, OutputComparison } from "./output-comparison";
import { OnnxProgram } from "../engine/onnx/program";
import { onnxCanRun } from "../engine/onnx/support";
import { sessionChunks } from "../engine/onnx/memory";
// Type only: a variant that is not a function is a simulation, so eval/ needs no runtime import of quant/ (which imports eval/).
import type { QuantSim } from "../quant/quantsim";

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
 * labels). One pass over the data, whatever the number of variants. When every
 * variant is a simulation the ONNX Runtime engine can run, the reference and
 * the variants all run there (so "bypassed" is FP32 bit for bit on either engine).
 */
export interface CompareOptions<K extends string> {
  data: Dataset;
  /** What to compare with FP32, by name: simulations, or functions from inputs to outputs. */
  variants: Record<K, Variant | QuantSim>;
  onProgress?: ProgressFn;
  /** The progress task's name. */
  task?: string;
}

export async function compareWithFp32<K extends string>(graph: Graph, options: CompareOptions<K>): Promise<SideBySide<K>> {
  const data = requireData("compareWithFp32", options);
  const variants = options.variants;
  const names = Object.keys(variants) as K[];
  const comparators = new Map(names.map((n) => [n, new OutputComparator()]));
  const correct = new Map<K | "fp32", number>([["fp32", 0], ...names.map((n) => [n, 0] as [K, number])]);
  let labelled = 0;
  const score = (name: K, outputs: tf.Tensor[], reference: tf.Tensor[], classLabels: tf.Tensor | undefined) => {
    comparators.get(name)!.add(outputs, reference);
    if (classLabels) correct.set(name, correct.get(name)! + countCorrect(outputs[0], classLabels));
  };
  const countReference = (reference: tf.Tensor[], labels: tf.Tensor | undefined): tf.Tensor | undefined => {
    const classLabels = labels && labels.rank === 1 ? labels : undefined;
    if (classLabels) {
      labelled += classLabels.shape[0];
      correct.set("fp32", correct.get("fp32")! + countCorrect(reference[0], classLabels));
    }
    return classLabels;
  };
  const sims = names.map((n) => variants[n]).filter((v): v is QuantSim => typeof v !== "function");
  const task = { task: options.task ?? "compare", onProgress: options.onProgress };
  let examples: number;
  if (sims.length === names.length && onnxCanRun(graph, sims)) {
    const fp32 = sims[0].with({ "**": { enabled: false } });
    const program = new OnnxProgram(graph, fp32.sites, { segments: 1 });
    try {
      ({ examples } = await forEachBatch(graph, data, task, async (batch) => {
        const runs = [{ key: "\u0000fp32", sim: fp32 }, ...names.map((n) => ({ key: n, sim: variants[n] as QuantSim }))];
        // Sub-batches keep the sessions' activations within the memory budget (a batch of 32 photos at 224x224 doubled the peak).
        const chunks = sessionChunks(graph, batch.inputs, runs.length + 1);
        let start = 0;
        for (const inputs of chunks) {
          const size = inputs[0].shape[0];
          const labels = batch.labels && chunks.length > 1 ? tf.slice(batch.labels, start, size) : batch.labels;
          let reference: tf.Tensor[] = [];
          let classLabels: tf.Tensor | undefined;
          try {
            await program.run(inputs, runs, (key, outputs) => {
              if (key === "\u0000fp32") {
                reference = outputs.map((t) => t.clone());
                classLabels = countReference(reference, labels);
              } else score(key as K, outputs, reference, classLabels);
            });
          } finally {
            tf.dispose(reference);
            if (chunks.length > 1) tf.dispose([...inputs, ...(labels ? [labels] : [])]);
          }
          start += size;
        }
      }));
    } finally {
      fp32.dispose();
      await program.dispose();
    }
  } else {
    ({ examples } = await forEachBatch(graph, data, task, (batch) => {
      const reference = forward(graph, batch.inputs);
      try {
        const classLabels = countReference(reference, batch.labels);
        for (const name of names) {
          const v = variants[name];
          const outputs = typeof v === "function" ? v(batch.inputs) : v.forward(batch.inputs);
          try {
            score(name, outputs, reference, classLabels);
          } finally {
            tf.dispose(outputs);
          }
        }
      } finally {
        tf.dispose(reference);
      }
    }));
  }
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
