import * as tf from "@tensorflow/tfjs";
import { toDataset } from "../src/data/dataset";
import { EXAMPLE_MODEL } from "../src/example";
import { adaround } from "../src/fix/adaround";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { qat } from "../src/fix/qat";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { medianMs } from "./timing";

export interface FixesBench {
  batch: number;
  forwardMs: number;
  /** One QAT step (simulated forward, backward through the STE, Adam update) / one simulated forward. */
  qatStepRatio: number;
  /** One AdaRound iteration, averaged over the model's layers / one simulated forward of the whole model. */
  adaroundIterationRatio: number;
}

/** The example model, BatchNorm folded, W4A8: the training fixes' cost in simulated forwards of the same batch. */
export async function benchFixes(batch = 32): Promise<FixesBench> {
  const original = await loadGraph(EXAMPLE_MODEL);
  const { graph } = foldBatchNorms(original);
  original.dispose();
  const data = toDataset(`mnist:0:${4 * batch}`, { batchSize: batch });
  const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(data);
  const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, "float32", 1);
  try {
    const forwardMs = await medianMs(async () => {
      const [y] = sim.forward(x);
      await y.data();
      y.dispose();
    });
    // Four steps of one epoch; each run includes the set-up once, which the medians of repeated runs share.
    const qatMs = await medianMs(async () => {
      const r = await qat(sim, { data, epochs: 1, batchSize: batch, seed: 0 });
      r.sim.dispose();
      r.graph.dispose();
    }, 3, 1);
    const iterations = 20;
    const adaroundMs = await medianMs(async () => {
      const r = await adaround(sim, { data, iterations, examples: batch, batchSize: batch, seed: 0 });
      r.sim.dispose();
    }, 3, 1);
    const layers = sim.sites.filter((s) => s.kind === "weight").length;
    return { batch, forwardMs, qatStepRatio: qatMs / 4 / forwardMs, adaroundIterationRatio: adaroundMs / (iterations * layers) / forwardMs };
  } finally {
    x.dispose();
    sim.dispose();
    graph.dispose();
  }
}
