import * as tf from "@tensorflow/tfjs";
import { computeEncoding } from "../src/quant/encoding";
import { fakeQuant, fakeQuantComposed } from "../src/quant/fake-quant";
import { compareMs } from "./timing";

export interface FakeQuantBench {
  shape: number[];
  fusedMs: number;
  composedMs: number;
  /** composed time / fused time, computation only. */
  speedup: number;
  /** The same two, each followed by reading the 25 MB result back to JS (a cost both pay alike). */
  fusedWithReadMs: number;
  composedWithReadMs: number;
  /** The two outputs have the same values (up to the sign of zero). */
  identical: boolean;
}

/**
 * Our fused kernel against the same math composed of tfjs ops, 8-bit asymmetric
 * per tensor, on the active backend (wasm for the recorded figures); medians of
 * alternating runs after warm-up. wasm and cpu kernels run synchronously, so the
 * time of the call is the time of the computation; a second pair of figures adds
 * reading the result back, as a model's next layer would not.
 */
export async function benchFakeQuant(shape = [8, 112, 112, 64], runs = 9): Promise<FakeQuantBench> {
  const x = tf.randomNormal(shape, 0, 1, "float32", 1);
  const enc = computeEncoding(-3, 3, 8, "asymmetric");
  const computed = (f: typeof fakeQuant) => async () => {
    const y = f(x, enc);
    if (tf.getBackend() !== "wasm" && tf.getBackend() !== "cpu") await y.data(); // asynchronous backends: wait for the work
    y.dispose();
  };
  const read = (f: typeof fakeQuant) => async () => {
    const y = f(x, enc);
    await y.data();
    y.dispose();
  };
  try {
    const [fusedMs, composedMs] = await compareMs(computed(fakeQuant), computed(fakeQuantComposed), runs, 2);
    const [fusedWithReadMs, composedWithReadMs] = await compareMs(read(fakeQuant), read(fakeQuantComposed), runs, 2);
    const identical = tf.tidy(() => tf.max(tf.abs(tf.sub(fakeQuant(x, enc), fakeQuantComposed(x, enc)))).dataSync()[0] === 0);
    return { shape, fusedMs, composedMs, speedup: composedMs / fusedMs, fusedWithReadMs, composedWithReadMs, identical };
  } finally {
    x.dispose();
  }
}

if (require.main === module) {
  (async () => {
    require("@tensorflow/tfjs-backend-wasm");
    await tf.setBackend(process.env.QDEBUG_BACKEND ?? "wasm");
    const r = await benchFakeQuant();
    console.log(`fake quant on [${r.shape.join("x")}] (${tf.getBackend()}): fused ${r.fusedMs.toFixed(1)} ms, composed ${r.composedMs.toFixed(1)} ms, speedup ${r.speedup.toFixed(2)}x, identical: ${r.identical}`);
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
