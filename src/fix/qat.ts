import * as tf from "@tensorflow/tfjs";
import { disposable, FixResult } from "./fix-result";
import { scoreVariants } from "../analysis/score-variants";
import { requireData } from "../data/types";
import { MetricName } from "../eval/metric";
import { Graph } from "../graph/graph";
import { mulberry32 } from "../quant/fake-quant-kernel";
import { QuantSim } from "../quant/quantsim";
import { registerFastBatchNormGradient, registerWasmGradientKernels } from "../train/wasm-gradient-kernels";
import { BeforeAfter, scoreBeforeAfter } from "./before-after";
import { CurvePoint } from "./training-curve";
import { QatLoss, QatOptions, calibratedActivationEncodings, normalizeOptions } from "./qat-options";
import { readExamples, shuffled } from "./qat-data";
import { checkLoss, classifierOutput, defaultLoss } from "./qat-losses";
import { LearnedRangeRow, forTraining, makeTrainingModel, trainStep } from "./qat-model";
import { changeText, scoreText } from "../eval/score-text";

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

export type { QatLoss, QatOptions } from "./qat-options";
export type { LearnedRangeRow } from "./qat-model";

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
      if (options.evaluation) scores = await scoreBeforeAfter({ before: sim, after: trained }, { ...options.evaluation, step: "qat" });
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



function diagnose(r: Omit<QatResult, "diagnosis" | "dispose">): string {
  const parts = [
    `QAT: ${r.epochs} epoch(s), ${r.steps} steps of ${r.batchSize} on ${r.examples} examples (loss ${r.loss}, Adam, learning rate ${r.learningRate}, ${(r.elapsedMs / 1000).toFixed(1)} s).`,
    r.epochs > 1
      ? `Mean training loss ${fmt(r.firstEpochLoss)} in the first epoch, ${fmt(r.lastEpochLoss)} in the last.`
      : `Mean training loss ${fmt(r.firstEpochLoss)}.`,
  ];
  if (r.validation) parts.push(`Validation ${r.validation.metric}: ${scoreText(r.validation, r.validation.before)} before, ${scoreText(r.validation, r.validation.after)} after.`);
  if (r.scores) {
    const { before, after, change, metric } = r.scores;
    const verdict = change > 0 ? "QAT helped" : change < 0 ? "QAT made it worse: try a lower learning rate, more data or distillation" : "no change: try more steps or a higher learning rate";
    parts.push(`${metric.label}: ${scoreText(metric, before)} → ${scoreText(metric, after)} (${changeText(metric, change)}); ${verdict}.`);
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
