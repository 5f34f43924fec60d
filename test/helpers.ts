import * as tf from "@tensorflow/tfjs";
import { strict as assert } from "assert";
import { useBackend } from "../src/backend";

/** Tests run on the backend qdebug picks by default (wasm here), or QDEBUG_BACKEND. */
export async function setupBackend(): Promise<void> {
  // Explicitly, so a test that switched to another backend (cpu) does not leave it to the next ones.
  await useBackend(process.env.QDEBUG_BACKEND || "auto");
}

/** Runs `fn` and asserts it left tf.memory().numTensors as it found it. */
export async function assertNoLeak<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await fn();
  const after = tf.memory().numTensors;
  assert.equal(after, before, `${what} leaked ${after - before} tensor(s)`);
  return result;
}

/** Gives every weight of a model seeded random values (BN variances positive), so tests are not trivial. */
export function randomizeWeights(model: tf.LayersModel, seed = 1): void {
  let s = seed;
  for (const layer of model.layers) {
    const values = layer.getWeights().map((w) => {
      const name = layer.weights[layer.getWeights().indexOf(w)]?.originalName ?? "";
      s += 1;
      return name.endsWith("moving_variance") || name.endsWith("gamma")
        ? tf.randomUniform(w.shape, 0.5, 1.5, "float32", s)
        : tf.randomNormal(w.shape, 0, 0.5, "float32", s);
    });
    if (values.length) {
      layer.setWeights(values);
      tf.dispose(values);
    }
  }
}

/** A dataset over a tensor the test owns (batches are slices, disposed by the consumer). */
export function sliceDataset(x: tf.Tensor, batchSize: number, labels?: tf.Tensor): import("../src/data/types").Dataset {
  const n = x.shape[0];
  return {
    name: `test tensor [${x.shape.join(", ")}]`,
    size: n,
    async *batches() {
      for (let s = 0; s < n; s += batchSize) {
        const e = Math.min(n, s + batchSize);
        yield { inputs: [x.slice(s, e - s)], labels: labels?.slice(s, e - s) };
      }
    },
  };
}
