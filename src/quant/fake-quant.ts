import * as tf from "@tensorflow/tfjs";
import { Encoding } from "./encoding";
import { channelShape, FakeQuantAttrs, KERNEL_BACKENDS, KERNEL_NAME, registerFakeQuantKernel, steMask } from "./fake-quant-kernel";

export interface FakeQuantOptions {
  /** Channel axis for per-channel encodings (default: the last axis). */
  axis?: number;
  /** "nearest" rounds half to even; "stochastic" rounds down or up at random (seeded). */
  rounding?: "nearest" | "stochastic";
  seed?: number;
}

registerFakeQuantKernel();

function attrsFor(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions): FakeQuantAttrs {
  const list = Array.isArray(enc) ? (enc as readonly Encoding[]) : [enc as Encoding];
  if (list.length === 0) throw new Error("fakeQuant: no encoding given");
  let inner = 1;
  if (list.length > 1) {
    const axis = options.axis === undefined ? x.rank - 1 : options.axis < 0 ? options.axis + x.rank : options.axis;
    if (axis < 0 || axis >= x.rank) throw new Error(`fakeQuant: axis ${options.axis} is out of range for a tensor of rank ${x.rank}`);
    if (x.shape[axis] !== list.length) {
      throw new Error(`fakeQuant: ${list.length} per-channel encodings for axis ${axis} of shape [${x.shape.join(", ")}]`);
    }
    inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  }
  const numSteps = list[0].numSteps;
  // One numSteps lets the kernel clamp every channel with the same code range.
  if (list.some((e) => e.numSteps !== numSteps)) throw new Error("fakeQuant: per-channel encodings must share one bit-width and scheme");
  return {
    scales: list.map((e) => e.scale),
    offsets: list.map((e) => e.offset),
    numSteps,
    inner,
    stochastic: options.rounding === "stochastic" ? 1 : 0,
    seed: options.seed ?? 0,
  };
}

/**
 * Quantize-dequantize `x` with one encoding, or one per channel along `axis`
 * (channel of flat index i = floor(i / inner) % C, inner = product of the dims
 * after `axis`), through our fused kernel on wasm and cpu, with a
 * straight-through gradient; on other backends (e.g. tfjs-node's "tensorflow")
 * through the composed ops, which compute the same values.
 */
export function fakeQuant(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions = {}): tf.Tensor {
  const attrs = attrsFor(x, enc, options);
  if (KERNEL_BACKENDS.includes(tf.getBackend()) && x.dtype === "float32") {
    return tf.engine().runKernel(KERNEL_NAME, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return composed(x, attrs);
}

/**
 * The same computation composed of tfjs ops: the reference for the kernel, and
 * the fallback on other backends. Values are identical to the kernel's for
 * "nearest" (same float32 operations in the same order); "stochastic" draws
 * from tfjs's seeded generator, not mulberry32, so it follows the same law with
 * another random stream.
 */
export function fakeQuantComposed(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions = {}): tf.Tensor {
  return composed(x, attrsFor(x, enc, options));
}

function composed(x: tf.Tensor, a: FakeQuantAttrs): tf.Tensor {
  const perTensor = a.scales.length === 1;
  const sharedOffset = a.offsets.every((o) => o === a.offsets[0]);
  const shape = channelShape(x.shape, a.scales.length, a.inner);
  const forward = (xin: tf.Tensor): tf.Tensor =>
    tf.tidy(() => {
      // Scalars for one encoding, [1, .., C, .., 1] tensors per channel.
      const values = (vs: number[]) => (perTensor ? tf.scalar(vs[0]) : tf.tensor(vs, shape));
      // Multiply by the float32 reciprocal, as the kernel does (see quantizeDequantizeValue).
      const v = tf.mul(xin.toFloat(), values(a.scales.map((s) => 1 / Math.fround(s))));
      const r = a.stochastic ? tf.floor(tf.add(v, tf.randomUniform(v.shape, 0, 1, "float32", a.seed))) : tf.round(v);
      // Clamp in grid units; with per-channel offsets, shift to codes 0..numSteps and back.
      const clamped = sharedOffset
        ? tf.clipByValue(r, a.offsets[0], a.offsets[0] + a.numSteps)
        : tf.add(tf.clipByValue(tf.sub(r, values(a.offsets)), 0, a.numSteps), values(a.offsets));
      return tf.mul(clamped, values(a.scales));
    });
  // customGrad's callback receives the inputs, then the save function, as one rest list.
  const fn = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xin = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([xin]);
    return {
      value: forward(xin),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, steMask(saved[0], a))],
    };
  };
  return (tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]) as (t: tf.Tensor) => tf.Tensor)(x);
}
