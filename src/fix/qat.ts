import * as tf from "@tensorflow/tfjs";
import { disposable, FixResult } from "./fix-result";
import { EvaluationOptions } from "../analysis/evaluation";
import { scoreVariants } from "../analysis/score-variants";
import { checkedBatches } from "../data/validate";
import { Dataset, disposeBatch, requireData } from "../data/types";
import { classIndices } from "../eval/class-labels";
import { MetricName, metricName } from "../eval/metric";
import { Graph } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";
import { ProgressFn } from "../progress";
import { computeEncoding, Encoding } from "../quant/encoding";
import { fakeQuant } from "../quant/fake-quant";
import { mulberry32 } from "../quant/fake-quant-kernel";
import { QuantSim } from "../quant/quantsim";
import { forward, NodeHook } from "../runner/forward";
import { registerFastBatchNormGradient, registerWasmGradientKernels } from "../train/wasm-gradient-kernels";
import { BeforeAfter, scoreBeforeAfter } from "./before-after";
import { learnedRangeFakeQuant, projectRange } from "./learned-range";
import { CurvePoint } from "./training-curve";

/**
 * Quantization-aware training (the guidebook's last box): fine-tune the weights
 * of the simulated model, with weights and activations fake-quantized as the
 * QuantSim says, gradients passing the quantizers by the straight-through
 * estimator (zero where a quantizer clips). Optionally, activation ranges are
 * learned too (`learnRanges`).
 *
 * Pipeline:
 *   1. normalize the options;
 *   2. read the training data once into host memory (examples are reshuffled,
 *      with the seed, every epoch);
 *   3. make the training model: a tf.Variable per float weight of the graph
 *      (kernels, biases, BatchNorm γ/β; moving statistics stay fixed), and the
 *      graph rewritten for gradients (fused activations tfjs cannot
 *      differentiate become their own nodes; a softmax output is trained on its logits);
 *   4. train with Adam: per step, weight encodings follow the current weights
 *      (the simulation's own range rule), activation encodings are the
 *      calibrated ones (or the learned ones);
 *   5. hand back a new graph with the trained weights, and the simulation over it.
 *
 * The model runs in inference mode (BatchNorm with its moving statistics,
 * dropout off), as it will be deployed — fold BatchNorms first (foldBatchNorms),
 * as AIMET recommends, so that what is trained is what a runtime executes.
 */

export type QatLoss = "crossentropy" | "mse" | "distillation";
const LOSSES: readonly QatLoss[] = ["crossentropy", "mse", "distillation"];

export interface QatOptions {
  /** The training data (labels or targets, or none for distillation from FP32). */
  data: Dataset;
  /** Passes over the training data (default 1). */
  epochs?: number;
  /** Examples per step (default 32). */
  batchSize?: number;
  /** Adam's learning rate for the weights (default 3e-4). */
  learningRate?: number;
  /** Also learn each activation quantizer's [min, max] (default false: calibrated encodings stay fixed). */
  learnRanges?: boolean;
  /** Adam's learning rate for learned ranges (default 10 × learningRate: ranges are larger numbers than weights). */
  rangeLearningRate?: number;
  /**
   * "crossentropy": integer class labels (or one-hot/soft labels) against the logits;
   * "mse": float targets shaped like the output; "distillation": match the FP32
   * model's outputs (KL divergence of the softmax for classifiers, MSE otherwise), no labels needed.
   * Default: crossentropy for a classifier with labels, mse for other labelled data, distillation without labels.
   */
  loss?: QatLoss;
  /** Scored after every epoch (and before the first step) with `metric`; the points go to the curve. */
  validation?: Dataset;
  /** The validation metric (default: accuracy when the training data has labels, else agreement with FP32). */
  metric?: MetricName;
  /** Seeds the shuffling (default 0): the same seed gives the same trained model. */
  seed?: number;
  /** Steps between two points of the loss curve (default: about ten points per epoch). */
  curveEvery?: number;
  /**
   * Recalibrate the activation statistics on the training data after training
   * (default false: the returned simulation keeps the activation encodings the
   * weights were trained with, like AIMET's QAT export).
   */
  recalibrate?: boolean;
  /** After every step: done/total steps, the loss in `detail`. */
  onProgress?: ProgressFn;
  /** Every curve point, as it is made (for a live chart). */
  onCurve?: (point: CurvePoint) => void;
  /** Scores the simulation before and after (`scores`), like every fix. */
  evaluation?: EvaluationOptions;
}

/** A learned activation range next to the calibrated one. */
export interface LearnedRangeRow {
  quantizer: string;
  before: { min: number; max: number };
  after: { min: number; max: number };
}

export interface QatResult extends FixResult {
  step: "qat";
  /** The trained model: a new graph the caller owns (dispose it); the input graph is untouched. */
  graph: Graph;
  /** The simulation's settings over the trained graph, with the activation encodings it was trained with. */
  sim: QuantSim;
  loss: QatLoss;
  curve: CurvePoint[];
  epochs: number;
  steps: number;
  examples: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Mean training loss of the first and of the last epoch. */
  firstEpochLoss: number;
  lastEpochLoss: number;
  /** Validation metric before the first step and after the last (when `validation` was given). */
  validation?: { metric: MetricName; before: number; after: number };
  learnedRanges?: LearnedRangeRow[];
  scores?: BeforeAfter;
  elapsedMs: number;
  diagnosis: string;
}

interface NormalizedOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  learnRanges: boolean;
  rangeLearningRate: number;
  loss?: QatLoss;
  metric?: MetricName;
  seed: number;
  curveEvery?: number;
  recalibrate: boolean;
}

const RUN = "qat";

/** Fine-tunes the simulated model; see the file comment for the pipeline. */
export async function qat(sim: QuantSim, options: QatOptions): Promise<QatResult> {
  const data = requireData("qat", options);
  const start = Date.now();
  // 1. Options.
  const opts = normalizeOptions(options);
  const activationEncodings = calibratedActivationEncodings(sim);

  // 2. Training data, in host memory.
  const examples = await readExamples(sim.graph, data);
  const classifier = classifierOutput(sim.graph);
  const loss = opts.loss ?? defaultLoss(classifier, examples.labels);
  checkLoss(loss, sim.graph, examples, classifier, data.name);
  const metric = opts.metric ?? (examples.labels ? "accuracy" : "agreement");

  // 3. The training model.
  const model = makeTrainingModel(sim, activationEncodings, opts.learnRanges);
  const teacher = loss === "distillation" ? forTraining(sim.graph, (n) => n.params) : undefined;
  const weightOptimizer = tf.train.adam(opts.learningRate);
  const rangeOptimizer = opts.learnRanges ? tf.train.adam(opts.rangeLearningRate) : undefined;
  if (sim.graph.nodes.some((n) => n.op === "batchNorm")) registerFastBatchNormGradient();
  registerWasmGradientKernels();

  const stepsPerEpoch = Math.ceil(examples.count / opts.batchSize);
  const totalSteps = stepsPerEpoch * opts.epochs;
  const curveEvery = opts.curveEvery ?? Math.max(1, Math.round(stepsPerEpoch / 10));
  const curve: CurvePoint[] = [];
  const addPoint = (series: string, step: number, value: number) => {
    const point = { run: RUN, series, step, value };
    curve.push(point);
    options.onCurve?.(point);
  };
  const validate = async (): Promise<number | undefined> => {
    if (!options.validation) return undefined;
    const snapshot = model.snapshotSim();
    try {
      const scores = await scoreVariants(sim.graph, options.validation, [{ key: RUN, sim: snapshot }], { metric, task: "qat: validation" });
      return scores.get(RUN)!;
    } finally {
      snapshot.dispose();
    }
  };

  const epochLosses: number[] = [];
  let steps = 0;
  try {
    const validationBefore = await validate();
    if (validationBefore !== undefined) addPoint(metric, 0, validationBefore);
    let validationAfter = validationBefore;
    const random = mulberry32(opts.seed);
    // 4. Train.
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const order = shuffled(examples.count, random);
      let epochSum = 0;
      let windowSum = 0;
      let windowCount = 0;
      for (let s = 0; s < examples.count; s += opts.batchSize) {
        const indices = order.slice(s, s + opts.batchSize);
        const value = trainStep(model, examples, indices, { loss, classifier, teacher, weightOptimizer, rangeOptimizer, roundingSeed: opts.seed + steps });
        if (!Number.isFinite(value)) {
          throw new Error(`qat: the loss became ${value} at step ${steps + 1} (epoch ${epoch + 1}): lower the learning rate (now ${opts.learningRate})`);
        }
        steps += 1;
        epochSum += value * indices.length;
        windowSum += value;
        windowCount += 1;
        if (steps % curveEvery === 0) {
          addPoint("loss", steps, windowSum / windowCount);
          windowSum = 0;
          windowCount = 0;
        }
        options.onProgress?.({ task: "qat", done: steps, total: totalSteps, unit: "steps", elapsedMs: Date.now() - start, detail: `epoch ${epoch + 1}/${opts.epochs}, loss ${value.toFixed(4)}` });
      }
      if (windowCount > 0) addPoint("loss", steps, windowSum / windowCount);
      epochLosses.push(epochSum / examples.count);
      validationAfter = await validate();
      if (validationAfter !== undefined) addPoint(metric, steps, validationAfter);
    }

    // 5. The trained graph and its simulation.
    const graph = model.trainedGraph();
    let trained: QuantSim;
    try {
      trained = sim.withGraph(graph, { keepStats: !opts.recalibrate });
      if (opts.recalibrate) trained = await trained.calibrate(data, { onProgress: options.onProgress });
      const learned = model.learnedEncodings();
      if (learned.size) trained = trained.withEncodings(learned);
    } catch (err) {
      graph.dispose();
      throw err;
    }
    let scores: BeforeAfter | undefined;
    try {
      if (options.evaluation) scores = await scoreBeforeAfter("qat", sim, trained, options.evaluation);
    } catch (err) {
      trained.dispose();
      graph.dispose();
      throw err;
    }
    const validation = validationBefore !== undefined ? { metric, before: validationBefore, after: validationAfter! } : undefined;
    const learnedRanges = opts.learnRanges ? model.learnedRangeRows() : undefined;
    const result: Omit<QatResult, "diagnosis" | "dispose"> = {
      step: "qat",
      graph,
      sim: trained,
      loss,
      curve,
      epochs: opts.epochs,
      steps,
      examples: examples.count,
      batchSize: opts.batchSize,
      learningRate: opts.learningRate,
      seed: opts.seed,
      firstEpochLoss: epochLosses[0],
      lastEpochLoss: epochLosses[epochLosses.length - 1],
      validation,
      learnedRanges,
      scores,
      elapsedMs: Date.now() - start,
    };
    return disposable({ ...result, diagnosis: diagnose(result) }, trained, graph);
  } finally {
    weightOptimizer.dispose();
    rangeOptimizer?.dispose();
    model.dispose();
  }
}

// ---------------------------------------------------------------- options

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) throw new Error(`qat: invalid ${name}: ${JSON.stringify(value)} (expected a positive integer)`);
  return value;
}

function positiveNumber(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new Error(`qat: invalid ${name}: ${JSON.stringify(value)} (expected a positive number)`);
  return value;
}

function normalizeOptions(o: QatOptions): NormalizedOptions {
  if (o.loss !== undefined && !LOSSES.includes(o.loss)) throw new Error(`qat: invalid loss: ${JSON.stringify(o.loss)} (expected one of ${LOSSES.join(", ")})`);
  if (o.seed !== undefined && !(typeof o.seed === "number" && Number.isInteger(o.seed))) throw new Error(`qat: invalid seed: ${JSON.stringify(o.seed)} (expected an integer)`);
  const learningRate = positiveNumber(o.learningRate, "learningRate", 3e-4);
  return {
    epochs: positiveInteger(o.epochs, "epochs", 1),
    batchSize: positiveInteger(o.batchSize, "batchSize", 32),
    learningRate,
    learnRanges: o.learnRanges === true,
    rangeLearningRate: positiveNumber(o.rangeLearningRate, "rangeLearningRate", 10 * learningRate),
    loss: o.loss,
    metric: o.metric === undefined ? undefined : metricName(o.metric),
    seed: o.seed ?? 0,
    curveEvery: o.curveEvery === undefined ? undefined : positiveInteger(o.curveEvery, "curveEvery", 1),
    recalibrate: o.recalibrate === true,
  };
}

/** The activation encodings the simulation uses now (null: bypassed); a clear error when it is not calibrated. */
function calibratedActivationEncodings(sim: QuantSim): Map<string, Encoding | null> {
  const out = new Map<string, Encoding | null>();
  for (const site of sim.sites) {
    if (site.kind !== "activation") continue;
    try {
      out.set(site.name, sim.encodingOf(site.name) as Encoding | null);
    } catch (err) {
      throw new Error(`qat: ${(err as Error).message}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- data

interface HostColumn {
  data: Float32Array | Int32Array;
  /** Shape of one example. */
  shape: number[];
  dtype: "float32" | "int32";
}

interface HostExamples {
  count: number;
  inputs: HostColumn[];
  labels?: HostColumn;
}

/** Reads every batch (validated against the graph's inputs) into host arrays: shuffling needs random access. */
async function readExamples(graph: Graph, data: Dataset): Promise<HostExamples> {
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
function shuffled(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

function gather(column: HostColumn, indices: readonly number[]): tf.Tensor {
  const size = column.shape.reduce((a, b) => a * b, 1);
  const out = column.dtype === "int32" ? new Int32Array(indices.length * size) : new Float32Array(indices.length * size);
  indices.forEach((row, k) => out.set(column.data.subarray(row * size, (row + 1) * size), k * size));
  return tf.tensor(out, [indices.length, ...column.shape], column.dtype);
}

// ---------------------------------------------------------------- losses

/** How a classifier's output relates to its logits. */
interface ClassifierOutput {
  /** "softmax": the output is softmax(logits), and training uses the logits; "logits": the output is the logits. */
  kind: "softmax" | "logits";
  classes: number;
}

/** A single [batch, classes] output that is a softmax (fused or its own node) or linear logits; undefined otherwise. */
function classifierOutput(graph: Graph): ClassifierOutput | undefined {
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
function defaultLoss(classifier: ClassifierOutput | undefined, labels: HostColumn | undefined): QatLoss {
  if (!labels) return "distillation";
  if (classifier?.kind === "softmax" || (classifier?.kind === "logits" && labels.shape.length === 0)) return "crossentropy";
  return "mse";
}

function checkLoss(loss: QatLoss, graph: Graph, examples: HostExamples, classifier: ClassifierOutput | undefined, dataName: string): void {
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

function softmaxKl(teacherLogits: tf.Tensor, studentLogits: tf.Tensor): tf.Scalar {
  const t = tf.logSoftmax(teacherLogits);
  return tf.mean(tf.sum(tf.mul(tf.exp(t), tf.sub(t, tf.logSoftmax(studentLogits))), -1));
}

// ---------------------------------------------------------------- training model

/**
 * The graph rewritten for gradients, sharing the given parameters: a conv/dense
 * node with a fused activation tfjs has no fused gradient for (anything but
 * linear and relu) becomes the linear op, named `<node>/qat_linear`, then the
 * activation under the node's own name, so quantizers and readers are unchanged.
 * `logits` names the node whose output a softmax classifier is trained on.
 */
function forTraining(graph: Graph, paramsOf: (node: GraphNode) => Params): { graph: Graph; paramNode: Map<string, string>; logits?: string } {
  const nodes: GraphNode[] = [];
  const paramNode = new Map<string, string>();
  for (const node of graph.nodes) {
    const act = node.attrs.activation;
    if (typeof act === "string" && act !== "linear" && act !== "relu" && node.op !== "activation") {
      const linear = `${node.name}/qat_linear`;
      if (graph.has(linear)) throw new Error(`qat: cannot split the fused activation of "${node.name}": a node named "${linear}" exists`);
      nodes.push({ ...node, name: linear, attrs: { ...node.attrs, activation: "linear" }, params: paramsOf(node) });
      nodes.push({ name: node.name, op: "activation", layerClass: node.layerClass, inputs: [linear], params: {}, attrs: { fn: act }, outputShape: node.outputShape });
      paramNode.set(node.name, linear);
    } else {
      nodes.push({ ...node, params: paramsOf(node) });
      paramNode.set(node.name, node.name);
    }
  }
  const out = graph.node(graph.outputs[0]);
  let logits: string | undefined;
  if (graph.outputs.length === 1 && out.op === "activation" && out.attrs.fn === "softmax") logits = out.inputs[0];
  else if (graph.outputs.length === 1 && out.attrs.activation === "softmax") logits = `${out.name}/qat_linear`;
  return { graph: new Graph({ name: graph.name, nodes, inputs: [...graph.inputs], outputs: [...graph.outputs] }), paramNode, logits };
}

/** Parameters that are statistics, not weights: BatchNorm's moving mean and variance stay fixed. */
const FROZEN_PARAMS = new Set(["moving_mean", "moving_variance"]);

interface TrainingModel {
  /** Same nodes and names as the simulation's graph, parameters = variables (or the original, frozen ones). */
  varGraph: Graph;
  /** `varGraph` rewritten for gradients (see forTraining). */
  train: ReturnType<typeof forTraining>;
  weights: tf.Variable[];
  /** Learned [min, max] per activation quantizer. */
  ranges: Map<string, tf.Variable>;
  snapshotSim(): QuantSim;
  weightEncodings(): Map<string, Encoding | Encoding[]>;
  /** The weights as the simulation sees them: fake-quantized variables (straight-through gradient), by training-graph node. */
  simulatedParams(encodings: Map<string, Encoding | Encoding[]>, roundingSeed: number): Map<string, Params>;
  activationQuantizers(): Map<string, (x: tf.Tensor) => tf.Tensor>;
  projectRanges(): void;
  learnedEncodings(): Map<string, Encoding>;
  learnedRangeRows(): LearnedRangeRow[];
  trainedGraph(): Graph;
  dispose(): void;
}

function makeTrainingModel(sim: QuantSim, activationEncodings: Map<string, Encoding | null>, learnRanges: boolean): TrainingModel {
  const weights: tf.Variable[] = [];
  const ranges = new Map<string, tf.Variable>();
  const source = sim.graph;
  try {
    const nodes = source.nodes.map((node) => {
      const params: Params = {};
      for (const [k, t] of Object.entries(node.params)) {
        if (FROZEN_PARAMS.has(k) || t.dtype !== "float32") params[k] = t;
        else {
          const v = tf.variable(t, true);
          weights.push(v);
          params[k] = v;
        }
      }
      return { ...node, params };
    });
    if (weights.length === 0) throw new Error(`qat: graph "${source.name}" has no trainable weights (no float parameters besides BatchNorm statistics)`);
    const varGraph = new Graph({ name: source.name, nodes, inputs: [...source.inputs], outputs: [...source.outputs] });
    const train = forTraining(varGraph, (n) => n.params);
    const activationSites = sim.sites.filter((s) => s.kind === "activation");
    const paramSites = sim.sites.filter((s) => s.kind !== "activation");
    const schemes = new Map(activationSites.map((s) => [s.name, sim.settingsOf(s.name).scheme]));
    const initial = new Map<string, { min: number; max: number }>();
    if (learnRanges) {
      for (const site of activationSites) {
        const enc = activationEncodings.get(site.name);
        if (!enc) continue;
        initial.set(site.name, { min: enc.min, max: enc.max });
        const init = tf.tensor1d([enc.min, enc.max]);
        ranges.set(site.name, tf.variable(init, true));
        init.dispose();
      }
    }
    const rangeValues = (name: string) => {
      const [min, max] = ranges.get(name)!.dataSync();
      return { min, max };
    };
    const learnedEncoding = (name: string): Encoding => {
      const { min, max } = rangeValues(name);
      const enc = activationEncodings.get(name)!;
      return computeEncoding(min, max, enc.bitwidth, schemes.get(name)!);
    };
    const model: TrainingModel = {
      varGraph,
      train,
      weights,
      ranges,
      snapshotSim() {
        const snapshot = sim.withGraph(varGraph, { keepStats: true });
        return ranges.size ? snapshot.withEncodings(model.learnedEncodings()) : snapshot;
      },
      weightEncodings() {
        // A simulation over the current weights computes their encodings with the simulation's own rules.
        const current = sim.withGraph(varGraph, { keepStats: true });
        const out = new Map<string, Encoding | Encoding[]>();
        for (const site of current.sites) {
          if (site.kind === "activation") continue;
          const enc = current.encodingOf(site.name);
          if (enc) out.set(site.name, enc);
        }
        return out;
      },
      simulatedParams(encodings, roundingSeed) {
        const out = new Map<string, Params>();
        for (const site of paramSites) {
          const enc = encodings.get(site.name);
          if (!enc) continue;
          const node = train.graph.node(train.paramNode.get(site.node)!);
          const v = node.params[site.param!];
          // The simulation's own quantizer, applied to the weight being trained (a new seed each step).
          const params = out.get(node.name) ?? { ...node.params };
          params[site.param!] = sim.quantizeParamValue(site.name, v, { encoding: enc, seed: seedOf(site.name, roundingSeed) });
          out.set(node.name, params);
        }
        return out;
      },
      activationQuantizers() {
        const out = new Map<string, (x: tf.Tensor) => tf.Tensor>();
        for (const site of activationSites) {
          const enc = activationEncodings.get(site.name);
          if (!enc) continue;
          const range = ranges.get(site.name);
          if (range) {
            const { min, max } = rangeValues(site.name);
            const current = { min, max, bitwidth: enc.bitwidth, scheme: schemes.get(site.name)! };
            out.set(site.node, (x) => learnedRangeFakeQuant(x, range, current));
          } else {
            out.set(site.node, (x) => fakeQuant(x, enc));
          }
        }
        return out;
      },
      projectRanges() {
        for (const [name, v] of ranges) {
          const { min, max } = rangeValues(name);
          const [lo, hi] = projectRange(min, max);
          if (lo !== min || hi !== max) tf.tidy(() => v.assign(tf.tensor1d([lo, hi])));
        }
      },
      learnedEncodings() {
        return new Map([...ranges.keys()].map((name) => [name, learnedEncoding(name)]));
      },
      learnedRangeRows() {
        return [...ranges.keys()].map((quantizer) => {
          const enc = learnedEncoding(quantizer);
          return { quantizer, before: initial.get(quantizer)!, after: { min: enc.min, max: enc.max } };
        });
      },
      trainedGraph() {
        const trainedNodes = source.nodes.map((node) => ({
          ...node,
          attrs: { ...node.attrs },
          params: Object.fromEntries(Object.entries(varGraph.node(node.name).params).map(([k, t]) => [k, tf.clone(t)])),
        }));
        return new Graph({ name: source.name, nodes: trainedNodes, inputs: [...source.inputs], outputs: [...source.outputs] });
      },
      dispose() {
        tf.dispose(weights);
        tf.dispose([...ranges.values()]);
      },
    };
    return model;
  } catch (err) {
    tf.dispose(weights);
    tf.dispose([...ranges.values()]);
    throw err;
  }
}

interface StepContext {
  loss: QatLoss;
  classifier: ClassifierOutput | undefined;
  teacher: ReturnType<typeof forTraining> | undefined;
  weightOptimizer: tf.Optimizer;
  rangeOptimizer: tf.Optimizer | undefined;
  /** Seeds the weights' stochastic rounding (if the simulation uses it): run seed + steps done. */
  roundingSeed: number;
}

/** One optimizer step on the examples `indices`; returns the batch's loss (before the step). */
function trainStep(model: TrainingModel, examples: HostExamples, indices: readonly number[], ctx: StepContext): number {
  const weightEncodings = model.weightEncodings();
  const quantizers = model.activationQuantizers();
  const train = model.train;
  const useLogits = ctx.loss !== "mse" && ctx.classifier?.kind === "softmax" && train.logits !== undefined;
  const targets = useLogits ? [train.logits!] : [...train.graph.outputs];
  const inputs = examples.inputs.map((c) => gather(c, indices));
  const labels = examples.labels ? gather(examples.labels, indices) : undefined;
  let teacherOut: tf.Tensor[] | undefined;
  try {
    if (ctx.teacher) teacherOut = forward(ctx.teacher.graph, inputs, { outputs: useLogits ? [ctx.teacher.logits!] : undefined });
    const hook: NodeHook = (node, out) => quantizers.get(node.name)?.(out);
    const lossFn = (): tf.Scalar => {
      const params = model.simulatedParams(weightEncodings, ctx.roundingSeed);
      const outputs = forward(train.graph, inputs, { params, hook, outputs: targets });
      switch (ctx.loss) {
        case "crossentropy": {
          const classes = ctx.classifier!.classes;
          const onehot = labels!.rank === 1 ? tf.oneHot(classIndices(labels!) as tf.Tensor1D, classes).toFloat() : labels!;
          return tf.losses.softmaxCrossEntropy(onehot, outputs[0]) as tf.Scalar;
        }
        case "mse":
          return tf.losses.meanSquaredError(labels!, outputs[0]) as tf.Scalar;
        case "distillation":
          if (ctx.classifier) return softmaxKl(teacherOut![0], outputs[0]);
          return tf.div(tf.addN(outputs.map((o, i) => tf.losses.meanSquaredError(teacherOut![i], o))), outputs.length) as tf.Scalar;
      }
    };
    const variables = [...model.weights, ...model.ranges.values()];
    const { value, grads } = tf.variableGrads(lossFn, variables);
    try {
      const rangeNames = new Set([...model.ranges.values()].map((v) => v.name));
      const weightGrads: tf.NamedTensorMap = {};
      const rangeGrads: tf.NamedTensorMap = {};
      for (const [name, g] of Object.entries(grads)) (rangeNames.has(name) ? rangeGrads : weightGrads)[name] = g;
      ctx.weightOptimizer.applyGradients(weightGrads);
      if (ctx.rangeOptimizer && Object.keys(rangeGrads).length) ctx.rangeOptimizer.applyGradients(rangeGrads);
      model.projectRanges();
      return value.dataSync()[0];
    } finally {
      value.dispose();
      tf.dispose(Object.values(grads));
    }
  } finally {
    tf.dispose(inputs);
    labels?.dispose();
    if (teacherOut) tf.dispose(teacherOut);
  }
}

/** A per-quantizer seed for stochastic rounding. */
function seedOf(name: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return h >>> 0;
}

// ---------------------------------------------------------------- reading

function diagnose(r: Omit<QatResult, "diagnosis" | "dispose">): string {
  const parts = [
    `QAT: ${r.epochs} epoch(s), ${r.steps} steps of ${r.batchSize} on ${r.examples} examples (loss ${r.loss}, Adam, learning rate ${r.learningRate}, ${(r.elapsedMs / 1000).toFixed(1)} s).`,
    r.epochs > 1
      ? `Mean training loss ${fmt(r.firstEpochLoss)} in the first epoch, ${fmt(r.lastEpochLoss)} in the last.`
      : `Mean training loss ${fmt(r.firstEpochLoss)}.`,
  ];
  if (r.validation) parts.push(`Validation ${r.validation.metric}: ${fmt(r.validation.before)} before, ${fmt(r.validation.after)} after.`);
  if (r.scores) {
    const { before, after, change, metric } = r.scores;
    const verdict = change > 0 ? "QAT helped" : change < 0 ? "QAT made it worse: try a lower learning rate, more data or distillation" : "no change: try more steps or a higher learning rate";
    parts.push(`${metric.label}: ${fmt(before)} → ${fmt(after)} (${change >= 0 ? "+" : ""}${fmt(change)}); ${verdict}.`);
  }
  if (r.learnedRanges) {
    const moved = r.learnedRanges.filter((row) => Math.abs(row.after.max - row.before.max) + Math.abs(row.after.min - row.before.min) > 1e-3 * (row.before.max - row.before.min));
    parts.push(`${moved.length} of ${r.learnedRanges.length} activation ranges moved by more than 0.1 % of their width.`);
  }
  return parts.join(" ");
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}
