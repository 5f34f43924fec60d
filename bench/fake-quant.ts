import * as tf from "@tensorflow/tfjs";
import { computeEncoding } from "../src/quant/encoding";
import { fakeQuant, fakeQuantComposed } from "../src/quant/fake-quant";
import { compareMs } from "./timing";

export interface FakeQuantBench {
  shape: number[];
  fusedMs: number;
  composedMs: number;
  /** composed time / fused time; goal >= 2.5. */
  speedup: number;
  identical: boolean;
}

/**
 * Our fused kernel against the same math composed of tfjs ops, 8-bit asymmetric
 * per tensor. wasm and cpu kernels run synchronously, so the time of the call is
 * the time of the computation; reading the 25 MB result back is left out of both.
 */
export async function benchFakeQuant(shape = [8, 112, 112, 64]): Promise<FakeQuantBench> {
  const x = tf.randomNormal(shape, 0, 1, "float32", 1);
  const enc = computeEncoding(-3, 3, 8, "asymmetric");
  try {
    const [fusedMs, composedMs] = await compareMs(
      async () => fakeQuant(x, enc).dispose(),
      async () => fakeQuantComposed(x, enc).dispose(),
    );
    const identical = tf.tidy(() => tf.max(tf.abs(tf.sub(fakeQuant(x, enc), fakeQuantComposed(x, enc)))).dataSync()[0] === 0);
    return { shape, fusedMs, composedMs, speedup: composedMs / fusedMs, identical };
  } finally {
    x.dispose();
  }
}
