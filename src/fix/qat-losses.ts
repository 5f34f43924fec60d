import * as tf from "@tensorflow/tfjs";
import { Graph } from "../graph/graph";
import { QatLoss } from "./qat-options";
import { HostColumn, HostExamples } from "./qat-data";

/** QAT's losses: which output they read, the default for the data, and their checks. */
/** How a classifier's output relates to its logits. */
export interface ClassifierOutput {
  /** "softmax": the output is softmax(logits), and training uses the logits; "logits": the output is the logits. */
  kind: "softmax" | "logits";
  classes: number;
}

/** A single [batch, classes] output that is a softmax (fused or its own node) or linear logits; undefined otherwise. */
export function classifierOutput(graph: Graph): ClassifierOutput | undefined {
  if (graph.outputs.length !== 1) return undefined;
  const node = graph.node(graph.outputs[0]);
  const shape = node.outputShape;
  if (shape.length !== 2 || typeof shape[1] !== "number" || shape[1] < 2) return undefined;
  const classes = shape[1];
  if ((node.op === "activation" && node.attrs.fn === "softmax") || node.attrs.activation === "softmax") return { kind: "softmax", classes };
  if (node.op !== "activation" && (node.attrs.activation === undefined || node.attrs.activation === "linear")) return { kind: "logits", classes };
  return undefined;
}

/** Cross-entropy for a softmax classifier, or for logits with class-index labels; MSE for other labels; distillation without labels. */
export function defaultLoss(classifier: ClassifierOutput | undefined, labels: HostColumn | undefined): QatLoss {
  if (!labels) return "distillation";
  if (classifier?.kind === "softmax" || (classifier?.kind === "logits" && labels.shape.length === 0)) return "crossentropy";
  return "mse";
}

export function checkLoss(loss: QatLoss, graph: Graph, examples: HostExamples, classifier: ClassifierOutput | undefined, dataName: string): void {
  if (loss === "distillation") return;
  if (!examples.labels) {
    throw new Error(`qat: loss "${loss}" needs labels, and the training data "${dataName}" has none (give labels, or use loss "distillation", which learns from the FP32 model's outputs)`);
  }
  if (graph.outputs.length !== 1) throw new Error(`qat: loss "${loss}" needs a single-output model ("${graph.name}" has ${graph.outputs.length} outputs); use loss "distillation"`);
  const out = graph.node(graph.outputs[0]);
  const labels = examples.labels;
  if (loss === "crossentropy") {
    if (!classifier) {
      const what = out.op === "activation" ? `activation ${String(out.attrs.fn)}` : `op ${out.op}${out.attrs.activation ? ` with activation ${String(out.attrs.activation)}` : ""}`;
      throw new Error(`qat: loss "crossentropy" needs a classifier whose output "${out.name}" is a softmax or logits [batch, classes]; it is ${what} of shape [${out.outputShape.map((d) => d ?? "?").join(", ")}] (use loss "mse" or "distillation")`);
    }
    const indices = labels.shape.length === 0;
    const softLabels = labels.dtype === "float32" && labels.shape.length === 1 && labels.shape[0] === classifier.classes;
    if (!indices && !softLabels) {
      throw new Error(`qat: loss "crossentropy" needs class indices [batch] or one-hot labels [batch, ${classifier.classes}]; the labels are ${labels.dtype} [batch, ${labels.shape.join(", ")}]`);
    }
    if (indices) {
      const bad = labels.data.findIndex((v) => !Number.isInteger(v) || v < 0 || v >= classifier.classes);
      if (bad >= 0) throw new Error(`qat: label ${labels.data[bad]} of example ${bad} is not a class index of "${out.name}" (0 to ${classifier.classes - 1})`);
    }
  } else {
    const expected = out.outputShape.slice(1);
    if (labels.shape.length !== expected.length || labels.shape.some((d, i) => expected[i] !== null && expected[i] !== d)) {
      throw new Error(`qat: loss "mse" needs targets shaped like the output "${out.name}" [batch, ${expected.map((d) => d ?? "?").join(", ")}]; the labels are [batch, ${labels.shape.join(", ")}]`);
    }
  }
}

export function softmaxKl(teacherLogits: tf.Tensor, studentLogits: tf.Tensor): tf.Scalar {
  const t = tf.logSoftmax(teacherLogits);
  return tf.mean(tf.sum(tf.mul(tf.exp(t), tf.sub(t, tf.logSoftmax(studentLogits))), -1));
}
