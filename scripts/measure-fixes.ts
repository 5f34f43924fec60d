/**
 * The fixes' before/after figures on the shipped example model, BatchNorm
 * folded, per-tensor weights: what README.md and the closing notes quote.
 * Calibration (and bias correction, AdaRound, QAT training) use MNIST test
 * images 1000–1999 of the shipped sample (bias correction and AdaRound the
 * first 256 of them); scores use images 0–999.
 *
 *   npm run build && node dist/scripts/measure-fixes.js [--skip-qat] [--out .tmp/fixes]
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { toDataset } from "../src/data/dataset";
import { Dataset } from "../src/data/types";
import { show } from "../src/display/show";
import { EXAMPLE_MODEL } from "../src/example";
import { BeforeAfter, scoreBeforeAfter } from "../src/fix/before-after";
import { biasCorrection } from "../src/fix/bias-correction";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { highBiasAbsorption } from "../src/fix/high-bias-absorption";
import { qat } from "../src/fix/qat";
import { adaround } from "../src/fix/adaround";
import { Graph } from "../src/graph/graph";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { QuantSimConfig } from "../src/quant/settings";
import { beforeAfterView } from "../widgets/before-after-view";

export interface FixFigures {
  fp32: number;
  examples: { evaluation: number; calibration: number };
  fixes: Record<string, BeforeAfter & { setting: string; seconds: number }>;
}

/** Scores one fix: `make` turns the "before" simulation into the "after" one (and may own a new graph). */
async function measure(
  name: string,
  setting: string,
  before: QuantSim,
  make: () => Promise<{ sim: QuantSim; graph?: Graph }>,
  evaluation: Dataset,
  out: FixFigures,
): Promise<void> {
  const t = Date.now();
  const after = await make();
  const scores = await scoreBeforeAfter({ before, after: after.sim }, { data: evaluation, metric: "accuracy", step: name });
  out.fixes[name] = { ...scores, setting, seconds: (Date.now() - t) / 1000 };
  after.sim.dispose();
  after.graph?.dispose();
}

export async function measureFixes(options: { qat?: boolean; onLine?: (s: string) => void } = {}): Promise<FixFigures> {
  const log = options.onLine ?? (() => undefined);
  const evaluation = toDataset("mnist:0:1000", { batchSize: 250 });
  const calibration = toDataset("mnist:1000:1000", { batchSize: 250 });
  const original = await loadGraph(EXAMPLE_MODEL);
  const { graph } = foldBatchNorms(original);
  original.dispose();
  const w4a8: QuantSimConfig = { weights: { bitwidth: 4 }, activations: { bitwidth: 8 } };
  const sim = await QuantSim.create(graph, w4a8).calibrate(calibration);
  const fp32Sim = sim.with({ "**": { enabled: false } });
  const figures: FixFigures = { fp32: NaN, examples: { evaluation: 1000, calibration: 1000 }, fixes: {} };
  try {
    figures.fp32 = (await scoreBeforeAfter({ before: fp32Sim, after: fp32Sim }, { data: evaluation, metric: "accuracy", step: "fp32" })).before;
    const recalibrated = (g: Graph) => QuantSim.create(g, w4a8).calibrate(calibration);

    await measure("CLE", "W4A8 per-tensor, ReLU6 → ReLU", sim, async () => {
      const cle = crossLayerEqualization(graph);
      return { graph: cle.graph, sim: await recalibrated(cle.graph) };
    }, evaluation, figures);
    await measure("CLE (per-channel ReLU6)", "W4A8 per-tensor, ReLU6 kept exact", sim, async () => {
      const cle = crossLayerEqualization(graph, { relu6: "per-channel" });
      return { graph: cle.graph, sim: await recalibrated(cle.graph) };
    }, evaluation, figures);
    // High-bias absorption runs after CLE; its "before" is the CLE model.
    const cle = crossLayerEqualization(graph);
    const cleSim = await recalibrated(cle.graph);
    const hba = highBiasAbsorption(cle.graph);
    await measure("high-bias absorption", `after CLE, W4A8 per-tensor (${hba.absorbed.reduce((n, a) => n + a.channels, 0)} channels absorbed)`, cleSim, async () => ({ graph: hba.graph, sim: await recalibrated(hba.graph) }), evaluation, figures);
    await measure("bias correction (empirical)", "W4A8 per-tensor", sim, async () => biasCorrection(sim, { method: "empirical", data: toDataset("mnist:1000:256", { batchSize: 128 }) }), evaluation, figures);
    await measure("bias correction (analytical)", "after CLE, W4A8 per-tensor", cleSim, async () => biasCorrection(cleSim, { method: "analytical", data: calibration }), evaluation, figures);
    cleSim.dispose();
    cle.graph.dispose();
    await measure("AdaRound (100 steps per layer)", "W4A8 per-tensor, vs rounding to nearest", sim, async () => adaround(sim, { data: toDataset("mnist:1000:256", { batchSize: 128 }), iterations: 100, learningRate: 1e-2, examples: 256, seed: 0 }), evaluation, figures);

    if (options.qat !== false) {
      const w4a4 = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 4 } }).calibrate(calibration);
      await measure("QAT (1 epoch, 1000 images)", "W4A4 per-tensor", w4a4, async () => qat(w4a4, { data: calibration, epochs: 1, seed: 0 }), evaluation, figures);
      w4a4.dispose();
    }
    for (const [name, f] of Object.entries(figures.fixes)) log(`${name} (${f.setting}): ${f.before.toFixed(4)} → ${f.after.toFixed(4)} in ${f.seconds.toFixed(1)} s`);
    return figures;
  } finally {
    fp32Sim.dispose();
    sim.dispose();
    graph.dispose();
  }
}

if (require.main === module) {
  (async () => {
    await useBackend();
    const outFlag = process.argv.indexOf("--out");
    const out = outFlag > 0 ? process.argv[outFlag + 1] : path.join(".tmp", "fixes");
    const figures = await measureFixes({ qat: !process.argv.includes("--skip-qat"), onLine: (s) => console.log(s) });
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, "fixes.json"), JSON.stringify(figures, null, 2));
    await show(beforeAfterView(figures.fixes, { reference: { label: "FP32", value: figures.fp32 } }), { file: path.join(out, "fixes.png") });
    console.log(`FP32 ${figures.fp32.toFixed(4)}; wrote ${out}/fixes.json and fixes.png; tensors left: ${tf.memory().numTensors}`);
  })();
}
