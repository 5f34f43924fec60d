import * as tf from "@tensorflow/tfjs";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { forward } from "../src/graph/forward";
import { nsfwjsMobileNetV2 } from "../test/fixtures/models";
import { compareMs } from "./timing";

export interface QuantSimForwardBench {
  model: string;
  batch: number;
  quantizers: number;
  simMs: number;
  fp32Ms: number;
  /** QuantSim forward / FP32 graph forward; goal <= 1.25. */
  ratio: number;
}

/** MobileNetV2 at batch 8: a calibrated W8A8 simulation against the FP32 graph. */
export async function benchQuantSimForward(batch = 8): Promise<QuantSimForwardBench> {
  const graph = await loadGraph(nsfwjsMobileNetV2());
  const x = tf.randomUniform([batch, 224, 224, 3], -1, 1, "float32", 3);
  const data = { name: "bench batch", size: batch, async *batches() { yield { inputs: [x.clone()] }; } };
  const sim = await QuantSim.create(graph).calibrate(data);
  try {
    const [simMs, fp32Ms] = await compareMs(
      async () => {
        const [y] = sim.forward(x);
        await y.data();
        y.dispose();
      },
      async () => {
        const [y] = forward(graph, x);
        await y.data();
        y.dispose();
      },
    );
    return { model: "MobileNetV2 (nsfwjs@4.4.0)", batch, quantizers: sim.sites.length, simMs, fp32Ms, ratio: simMs / fp32Ms };
  } finally {
    sim.dispose();
    x.dispose();
    graph.dispose();
  }
}
