import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmGradientKernels } from "../src/train/wasm-gradient-kernels";
import { useBackend } from "../src/backend";
import { assertNoLeak } from "./helpers";

/** Gradients of conv and depthwise conv on wasm (our kernels) against the cpu backend's own. */
describe("wasm gradient kernels", () => {
  after(() => useBackend());

  const cases: { name: string; x: number[]; k: number[]; stride: number | [number, number]; pad: "same" | "valid"; depthwise: boolean }[] = [
    { name: "conv 3x3 stride 2 same", x: [2, 9, 8, 3], k: [3, 3, 3, 4], stride: 2, pad: "same", depthwise: false },
    { name: "conv 1x1 stride 1", x: [2, 5, 5, 6], k: [1, 1, 6, 3], stride: 1, pad: "same", depthwise: false },
    { name: "conv 3x3 valid", x: [1, 7, 6, 2], k: [3, 3, 2, 2], stride: 1, pad: "valid", depthwise: false },
    { name: "depthwise 3x3 stride 1 same", x: [2, 6, 6, 4], k: [3, 3, 4, 1], stride: 1, pad: "same", depthwise: true },
    { name: "depthwise 3x3 stride 2 same, multiplier 2", x: [2, 7, 8, 3], k: [3, 3, 3, 2], stride: 2, pad: "same", depthwise: true },
    { name: "depthwise 3x3 valid", x: [1, 6, 7, 2], k: [3, 3, 2, 1], stride: 1, pad: "valid", depthwise: true },
    // Stride 2 with odd sizes: "same" pads unevenly; "valid" leaves input rows/columns no output reads (cropped).
    { name: "depthwise 3x3 stride 2 same, odd sizes", x: [2, 9, 11, 5], k: [3, 3, 5, 1], stride: 2, pad: "same", depthwise: true },
    { name: "depthwise 3x3 stride 2 valid, odd and even sizes", x: [2, 10, 9, 3], k: [3, 3, 3, 1], stride: 2, pad: "valid", depthwise: true },
    { name: "depthwise 3x3 stride 2 valid, multiplier 2", x: [3, 8, 11, 2], k: [3, 3, 2, 2], stride: 2, pad: "valid", depthwise: true },
    { name: "depthwise 5x5 stride 1 same", x: [2, 7, 9, 3], k: [5, 5, 3, 1], stride: 1, pad: "same", depthwise: true },
    { name: "depthwise 5x5 stride 2 same, multiplier 2", x: [2, 11, 10, 2], k: [5, 5, 2, 2], stride: 2, pad: "same", depthwise: true },
    { name: "depthwise 5x5 stride 2 valid, multiplier 3", x: [1, 12, 13, 2], k: [5, 5, 2, 3], stride: 2, pad: "valid", depthwise: true },
    { name: "depthwise 5x3 strides [2, 1] same, batch 1", x: [1, 9, 6, 4], k: [5, 3, 4, 1], stride: [2, 1], pad: "same", depthwise: true },
    { name: "depthwise 3x3 stride 3 valid", x: [2, 10, 11, 3], k: [3, 3, 3, 1], stride: 3, pad: "valid", depthwise: true },
    { name: "depthwise 1x1 stride 2 same, even sizes (input rows no output reads)", x: [2, 6, 8, 3], k: [1, 1, 3, 2], stride: 2, pad: "same", depthwise: true },
    { name: "depthwise 5x5 same on a 3x2 input (kernel larger than the input)", x: [2, 3, 2, 3], k: [5, 5, 3, 1], stride: 1, pad: "same", depthwise: true },
    { name: "conv 1x1 stride 2 same, odd sizes", x: [2, 7, 9, 5], k: [1, 1, 5, 4], stride: 2, pad: "same", depthwise: false },
    { name: "conv 1x1 stride 2 valid, even sizes", x: [2, 8, 6, 3], k: [1, 1, 3, 2], stride: 2, pad: "valid", depthwise: false },
    { name: "conv 3x3 stride 2 valid, odd sizes", x: [2, 10, 11, 3], k: [3, 3, 3, 4], stride: 2, pad: "valid", depthwise: false },
    { name: "conv 5x5 stride 2 same", x: [2, 11, 9, 2], k: [5, 5, 2, 3], stride: 2, pad: "same", depthwise: false },
    { name: "conv 5x5 same on a 3x2 input (kernel larger than the input)", x: [2, 3, 2, 2], k: [5, 5, 2, 3], stride: 1, pad: "same", depthwise: false },
    { name: "conv 3x5 strides [1, 2] valid, batch 1", x: [1, 8, 11, 3], k: [3, 5, 3, 2], stride: [1, 2], pad: "valid", depthwise: false },
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
        assert.equal(a.length, b.length, `${what}: ${a.length} values vs ${b.length}`);
        const scale = Math.max(...Array.from(b, Math.abs));
        for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
      };
      close(wx, cx, "dx");
      close(wk, ck, "dfilter");
    });
  }

  it("leaves no tensor and no backend data behind (kernels run inside tf.grads)", async () => {
    await tf.setBackend("wasm");
    registerWasmGradientKernels();
    const backend = tf.engine().backend;
    const x = tf.randomNormal([2, 9, 8, 4], 0, 1, "float32", 1);
    const dk = tf.randomNormal([3, 3, 4, 2], 0, 1, "float32", 2);
    const k = tf.randomNormal([3, 3, 4, 6], 0, 1, "float32", 3);
    try {
      const step = () => {
        const f = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => {
          const y = tf.depthwiseConv2d(xx as tf.Tensor4D, a as tf.Tensor4D, 2, "same");
          return tf.sum(tf.square(tf.conv2d(xx as tf.Tensor4D, b as tf.Tensor4D, 2, "valid"))).add(tf.sum(tf.square(y)));
        };
        const g = tf.grads(f)([x, dk, k]);
        g.forEach((t) => t.dataSync());
        tf.dispose(g);
      };
      step(); // first run: kernels set up, operators created
      const dataIds = backend.numDataIds();
      await assertNoLeak("three gradient kernels, twice", () => {
        step();
        step();
      });
      assert.equal(backend.numDataIds(), dataIds, "backend data leaked");
    } finally {
      tf.dispose([x, dk, k]);
    }
  });
});
