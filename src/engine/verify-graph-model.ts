import * as tf from "@tensorflow/tfjs";
import { forward } from "../graph/forward";
import { Graph } from "../graph/graph";

export interface OutputDifference {
  output: string;
  shape: number[];
  maxAbsDiff: number;
  /** max |graph - execute| / max |execute|: the error relative to the output's scale. */
  maxRelDiff: number;
}

export interface GraphModelVerifyResult {
  batchSize: number;
  seed: number;
  inputShapes: number[][];
  outputs: OutputDifference[];
  /** The largest relative difference over all outputs. */
  maxRelDiff: number;
}

export interface GraphModelVerifyOptions {
  batchSize?: number;
  seed?: number;
  /** The TF tensors the graph was cut at (the `outputs` given to loadGraph); default the model's outputs. */
  outputs?: readonly string[];
  /** The batch to run, one tensor per graph input (default: seeded uniform values in [0, 1)); the caller keeps it. */
  inputs?: readonly tf.Tensor[];
  /** Which engine computes the graph's side: tfjs (the runner) or ONNX Runtime (the engine's lowering). */
  engine?: "tfjs" | "onnx";
}

/**
 * Runs the imported graph and `GraphModel.execute` on the same batch (seeded
 * uniform values in [0, 1), or the caller's) and measures how far apart their outputs are, relative to
 * each output's largest magnitude. A model whose inputs fix a batch of 1 is
 * executed one example at a time, so the graph's batch is checked too.
 */
export async function verifyAgainstGraphModel(graph: Graph, model: tf.GraphModel, options: GraphModelVerifyOptions = {}): Promise<GraphModelVerifyResult> {
  const batchSize = options.batchSize ?? 2;
  const seed = options.seed ?? 42;
  const names = options.outputs ?? model.outputNodes;
  const fixedBatch = model.inputs.some((i) => i.shape?.[0] === 1);
  const given = options.inputs;
  const inputs = given ? given.map((t) => t.clone()) : graph.inputSpecs.map((spec, i) => {
    const shape = spec.shape.map((d, axis) => (axis === 0 ? (d ?? batchSize) : (d as number)));
    return spec.dtype === "int32" ? tf.randomUniform(shape, 0, 10, "int32", seed + i) : tf.randomUniform(shape, 0, 1, "float32", seed + i);
  });
  const n = inputs[0].shape[0];
  let expected: tf.Tensor[] = [];
  let ours: tf.Tensor[] = [];
  try {
    expected = tf.tidy(() => {
      const run = (xs: tf.Tensor[]) => {
        const out = model.execute(Object.fromEntries(graph.inputs.map((name, i) => [name, xs[i]])), [...names]);
        return Array.isArray(out) ? out : [out];
      };
      if (!fixedBatch || n === 1) return run(inputs);
      const parts = Array.from({ length: n }, (_, b) => run(inputs.map((x) => x.slice(b, 1))));
      return names.map((_, o) => tf.concat(parts.map((p) => p[o]), 0));
    });
    ours = options.engine === "onnx" ? await onnxForward(graph, inputs) : forward(graph, inputs);
    const outputs: OutputDifference[] = graph.outputs.map((output, i) =>
      tf.tidy(() => {
        if (ours[i].shape.join() !== expected[i].shape.join()) throw new Error(`output ${output}: shape [${ours[i].shape}] but GraphModel.execute gives [${expected[i].shape}]`);
        const maxAbsDiff = tf.max(tf.abs(tf.sub(ours[i], tf.cast(expected[i], "float32")))).dataSync()[0];
        const scale = tf.max(tf.abs(tf.cast(expected[i], "float32"))).dataSync()[0];
        return { output, shape: ours[i].shape, maxAbsDiff, maxRelDiff: scale > 0 ? maxAbsDiff / scale : maxAbsDiff };
      }),
    );
    return { batchSize: n, seed, inputShapes: inputs.map((t) => t.shape), outputs, maxRelDiff: Math.max(...outputs.map((o) => o.maxRelDiff)) };
  } finally {
    tf.dispose([...inputs, ...expected, ...ours]);
  }
}

/** The graph's FP32 outputs from ONNX Runtime, through the lowering the engine uses. */
async function onnxForward(graph: Graph, inputs: tf.Tensor[]): Promise<tf.Tensor[]> {
  const { lowerGraph } = await import("./onnx/lower-graph");
  const { createSession, toOrtTensor } = await import("./onnx/runtime");
  const lowered = lowerGraph(graph);
  const session = await createSession(lowered.bytes, { threads: 1 });
  try {
    const feeds = Object.fromEntries(lowered.inputs.map((i) => {
      if (i.kind !== "model") throw new Error(`unexpected input ${i.onnx}`);
      return [i.onnx, toOrtTensor(inputs[graph.inputs.indexOf(i.node)])];
    }));
    const result = await session.run(feeds);
    return lowered.outputs.map((o) => {
      const t = result[o.onnx];
      return tf.tensor(t.data as Float32Array, t.dims as number[], "float32");
    });
  } finally {
    await session.release();
  }
}
