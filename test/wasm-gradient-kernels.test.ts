import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmGradientKernels } from "../src/train/wasm-gradient-kernels";
import { useBackend } from "../src/backend";

/** Gradients of conv and depthwise conv on wasm (our kernels) against the cpu backend's own. */
describe("wasm gradient kernels", () => {
  after(() => useBackend());

  const cases: { name: string; x: number[]; k: number[]; stride: number; pad: "same" | "valid"; depthwise: boolean }[] = [
    { name: "conv 3x3 stride 2 same", x: [2, 9, 8, 3], k: [3, 3, 3, 4], stride: 2, pad: "same", depthwise: false },
    { name: "conv 1x1 stride 1", x: [2, 5, 5, 6], k: [1, 1, 6, 3], stride: 1, pad: "same", depthwise: false },
    { name: "conv 3x3 valid", x: [1, 7, 6, 2], k: [3, 3, 2, 2], stride: 1, pad: "valid", depthwise: false },
    { name: "depthwise 3x3 stride 1 same", x: [2, 6, 6, 4], k: [3, 3, 4, 1], stride: 1, pad: "same", depthwise: true },
    { name: "depthwise 3x3 stride 2 same, multiplier 2", x: [2, 7, 8, 3], k: [3, 3, 3, 2], stride: 2, pad: "same", depthwise: true },
    { name: "depthwise 3x3 valid", x: [1, 6, 7, 2], k: [3, 3, 2, 1], stride: 1, pad: "valid", depthwise: true },
  ];

  async function grads(backend: string, c: (typeof cases)[number]): Promise<[Float32Array, Float32Array]> {
    await tf.setBackend(backend);
    if (backend === "wasm") registerWasmGradientKernels();
    return tf.tidy(() => {
      const x = tf.randomNormal(c.x, 0, 1, "float32", 1);
      const k = tf.randomNormal(c.k, 0, 1, "float32", 2);
      const w = tf.randomNormal([c.x[0], 1, 1, 1], 1, 0.5, "float32", 3);
      const f = (xx: tf.Tensor, kk: tf.Tensor) => {
        const y = c.depthwise
          ? tf.depthwiseConv2d(xx as tf.Tensor4D, kk as tf.Tensor4D, c.stride, c.pad)
          : tf.conv2d(xx as tf.Tensor4D, kk as tf.Tensor4D, c.stride, c.pad);
        return tf.sum(tf.mul(tf.square(y), w));
      };
      const [dx, dk] = tf.grads(f)([x, k]);
      return [dx.dataSync() as Float32Array, dk.dataSync() as Float32Array] as [Float32Array, Float32Array];
    });
  }

  for (const c of cases) {
    it(`${c.name}: same gradients as the cpu backend`, async () => {
      const [cx, ck] = await grads("cpu", c);
      const [wx, wk] = await grads("wasm", c);
      const close = (a: Float32Array, b: Float32Array, what: string) => {
        const scale = Math.max(...Array.from(b, Math.abs));
        for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
      };
      close(wx, cx, "dx");
      close(wk, ck, "dfilter");
    });
  }
});
