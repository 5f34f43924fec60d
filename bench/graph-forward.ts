import * as tf from "@tensorflow/tfjs";
import { loadGraph, loadLayersModelFromFile } from "../src/graph/load-model";
import { forward } from "../src/graph/forward";
import { nsfwjsMobileNetV2 } from "../test/fixtures/models";
import { compareMs } from "./timing";

export interface GraphForwardBench {
  model: string;
  batch: number;
  graphMs: number;
  predictMs: number;
  /** graph runner time / model.predict time; goal <= 1.05. */
  ratio: number;
}

/** MobileNetV2 (nsfwjs) at batch 8: our graph runner against tfjs-layers' model.predict. */
export async function benchGraphForward(batch = 8): Promise<GraphForwardBench> {
  const file = nsfwjsMobileNetV2();
  const model = await loadLayersModelFromFile(file);
  const graph = await loadGraph(file);
  const x = tf.randomUniform([batch, 224, 224, 3], -1, 1, "float32", 3);
  try {
    const [graphMs, predictMs] = await compareMs(
      async () => {
        const [y] = forward(graph, x);
        await y.data();
        y.dispose();
      },
      async () => {
        const y = model.predict(x) as tf.Tensor;
        await y.data();
        y.dispose();
      },
    );
    return { model: "MobileNetV2 (nsfwjs@4.4.0)", batch, graphMs, predictMs, ratio: graphMs / predictMs };
  } finally {
    x.dispose();
    graph.dispose();
    model.dispose();
  }
}
