/**
 * The transformer case study's figures (README "Transformer case study"): the
 * text encoder (models/text-encoder) on its committed evaluation subset (256
 * mails, which also calibrate): FP32 accuracy; the W8A8 simulation's accuracy,
 * agreement with FP32 and output SQNR; weights vs activations; the quantizers
 * the two per-layer sweeps single out; the outlier-dimension diagnosis; and,
 * at activation bit-widths 8, 6 and 4, the fixes for outlier dimensions.
 *
 * Run: node dist/scripts/measure-text-encoder.js
 */
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { toDataset } from "../src/data/dataset";
import { activeEngine } from "../src/engine/engine";
import { loadGraph } from "../src/graph/load-model";
import { outlierDimensions } from "../src/analysis/outlier-dimensions";
import { outlierFixes } from "../src/analysis/outlier-fixes";
import { score } from "../src/analysis/score";
import { sweepDisabled, sweepEnabled } from "../src/analysis/sweeps";
import { weightsVsActivations } from "../src/analysis/weights-vs-activations";
import { QuantSim } from "../src/quant/quantsim";
import { TEXT_ENCODER_EVAL, TEXT_ENCODER_MODEL } from "../src/text-encoder";

export async function measureTextEncoder() {
  const graph = await loadGraph(TEXT_ENCODER_MODEL);
  const data = toDataset(TEXT_ENCODER_EVAL, { batchSize: 64 });
  const sim = await QuantSim.create(graph, {}).calibrate(data);
  try {
    const fp32 = (await score(graph, { data, metric: "accuracy" })).score;
    const w8a8 = {} as Record<string, number>;
    for (const metric of ["accuracy", "agreement", "sqnr"] as const) w8a8[metric] = (await score(sim, { data, metric })).score;
    const wva = await weightsVsActivations(sim, { data, metric: "agreement" });
    const enabled = await sweepEnabled(sim, { data, metric: "sqnr" });
    const disabled = await sweepDisabled(sim, { data, metric: "sqnr" });
    const outliers = await outlierDimensions(graph, { data });
    const fixes = [];
    for (const bw of [8, 6, 4]) {
      const s = sim.with({ "*.output": { bitwidth: bw } });
      try {
        for (const metric of ["agreement", "sqnr"] as const) {
          const f = await outlierFixes(s, { data, metric });
          fixes.push({ activations: bw, metric, rows: f.rows.map((r) => ({ fix: r.fix, score: r.score, recovered: r.recovered })) });
        }
      } finally {
        s.dispose();
      }
    }
    return {
      fp32,
      w8a8,
      weightsVsActivations: wva.rows,
      enabled: [...enabled.rows].sort((a, b) => a.score - b.score).slice(0, 5).map((r) => [r.key, r.score]),
      disabled: [...disabled.rows].sort((a, b) => b.score - a.score).slice(0, 5).map((r) => [r.key, r.score]),
      outliers: outliers.diagnosis,
      fixes,
    };
  } finally {
    sim.dispose();
    graph.dispose();
  }
}

if (require.main === module) {
  (async () => {
    await useBackend();
    const t = Date.now();
    const cpu = process.cpuUsage();
    const r = await measureTextEncoder();
    console.log(JSON.stringify(r, null, 1));
    const used = process.cpuUsage(cpu);
    console.log(`engine ${activeEngine().name}; ${((Date.now() - t) / 1000).toFixed(0)} s wall, ${((used.user + used.system) / 1e6).toFixed(0)} s CPU; tensors left: ${tf.memory().numTensors}`);
  })();
}
