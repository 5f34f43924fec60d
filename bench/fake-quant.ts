import * as tf from "@tensorflow/tfjs";
import { computeEncoding } from "../src/quant/encoding";
import { fakeQuant, fakeQuantComposed } from "../src/quant/fake-quant";
import { compareMs } from "./timing";

export interface FakeQuantBench {
  shape: number[];
  /** Per tensor, 8-bit asymmetric: our fused kernel vs the composed tfjs ops, computation only. */
  fusedMs: number;
  composedMs: number;
  /** composed time / fused time, computation only. */
  speedup: number;
  /** The same two, each followed by `await y.data()` (reading the 25 MB result back, a cost both pay alike). */
  fusedWithReadMs: number;
  composedWithReadMs: number;
  /** Per channel along the last axis (one encoding per channel), computation only. */
  perChannelFusedMs: number;
  perChannelComposedMs: number;
  /** The outputs have the same values (up to the sign of zero), per tensor and per channel. */
  identical: boolean;
}

/**
 * Our fused kernel against the same math composed of tfjs ops on the active
 * backend (wasm for the recorded figures); medians of alternating runs after
 * warm-up. wasm and cpu kernels run synchronously, so the time of the call is
 * the time of the computation (asynchronous backends await the data); a second
 * pair of figures adds `await y.data()`, as the brief's protocol asks, though a
 * model's next layer would not read back.
 */
export async function benchFakeQuant(shape = [8, 112, 112, 64], runs = 9): Promise<FakeQuantBench> {
  const x = tf.randomNormal(shape, 0, 1, "float32", 1);
  const enc = computeEncoding(-3, 3, 8, "asymmetric");
  const channels = shape[shape.length - 1];
  const perChannel = Array.from({ length: channels }, (_, c) => computeEncoding(-3 - c / channels, 3 + c / channels, 8, "asymmetric"));
  const sync = tf.getBackend() !== "wasm" && tf.getBackend() !== "cpu";
  const computed = (f: typeof fakeQuant, e: typeof enc | typeof perChannel) => async () => {
    const y = f(x, e);
    if (sync) await y.data(); // asynchronous backends: wait for the work
    y.dispose();
  };
  const read = (f: typeof fakeQuant) => async () => {
    const y = f(x, enc);
    await y.data();
    y.dispose();
  };
  const same = (e: typeof enc | typeof perChannel) => tf.tidy(() => tf.max(tf.abs(tf.sub(fakeQuant(x, e), fakeQuantComposed(x, e)))).dataSync()[0] === 0);
  try {
    const [fusedMs, composedMs] = await compareMs(computed(fakeQuant, enc), computed(fakeQuantComposed, enc), runs, 2);
    const [fusedWithReadMs, composedWithReadMs] = await compareMs(read(fakeQuant), read(fakeQuantComposed), runs, 2);
    const [perChannelFusedMs, perChannelComposedMs] = await compareMs(computed(fakeQuant, perChannel), computed(fakeQuantComposed, perChannel), runs, 2);
    const identical = same(enc) && same(perChannel);
    return { shape, fusedMs, composedMs, speedup: composedMs / fusedMs, fusedWithReadMs, composedWithReadMs, perChannelFusedMs, perChannelComposedMs, identical };
  } finally {
    x.dispose();
  }
}

if (require.main === module) {
  (async () => {
    require("@tensorflow/tfjs-backend-wasm");
    await tf.setBackend(process.env.QDEBUG_BACKEND ?? "wasm");
    const r = await benchFakeQuant();
    const ms = (v: number) => `${v.toFixed(1)} ms`;
    console.log(
      `fake quant on [${r.shape.join("x")}] (${tf.getBackend()}), 8-bit asymmetric per tensor: fused ${ms(r.fusedMs)}, composed ${ms(r.composedMs)}, ` +
        `speedup ${r.speedup.toFixed(2)}x; with await data(): ${ms(r.fusedWithReadMs)} vs ${ms(r.composedWithReadMs)} ` +
        `(${(r.composedWithReadMs / r.fusedWithReadMs).toFixed(2)}x); per channel: ${ms(r.perChannelFusedMs)} vs ${ms(r.perChannelComposedMs)} ` +
        `(${(r.perChannelComposedMs / r.perChannelFusedMs).toFixed(2)}x); identical: ${r.identical}`,
    );
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
