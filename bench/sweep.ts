import * as tf from "@tensorflow/tfjs";
import { sweepEnabled } from "../src/analysis/sweeps";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { nsfwjsMobileNetV2 } from "../test/fixtures/models";

export interface SweepBench {
  layers: number;
  cachedMs: number;
  naiveMs: number;
  /** cached sweep time / naive sweep time; goal <= 0.6. */
  ratio: number;
  identical: boolean;
}

/** The "enable one layer" sweep on MobileNetV2 at batch 8: FP32 intermediates cached vs recomputed. */
export async function benchSweep(batch = 8): Promise<SweepBench> {
  const graph = await loadGraph(nsfwjsMobileNetV2());
  const x = tf.randomUniform([batch, 224, 224, 3], -1, 1, "float32", 4);
  const data = { name: "bench batch", size: batch, async *batches() { yield { inputs: [x.clone()] }; } };
  const sim = await QuantSim.create(graph).calibrate(data);
  try {
    let t0 = Date.now();
    const naive = await sweepEnabled(sim, { data, metric: "sqnr", cache: false });
    const naiveMs = Date.now() - t0;
    t0 = Date.now();
    const cached = await sweepEnabled(sim, { data, metric: "sqnr" });
    const cachedMs = Date.now() - t0;
    const identical = cached.rows.every((r, i) => r.score === naive.rows[i].score);
    return { layers: cached.rows.length, cachedMs, naiveMs, ratio: cachedMs / naiveMs, identical };
  } finally {
    sim.dispose();
    x.dispose();
    graph.dispose();
  }
}
