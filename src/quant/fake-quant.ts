import * as tf from "@tensorflow/tfjs";
import { Encoding } from "./encoding";
import { channelShape, FakeQuantAttrs, KERNEL_NAME, registerFakeQuantKernel, steMask } from "./fake-quant-kernel";

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
 * Quantize-dequantize `x` with one encoding, or one per channel along `axis`,
 * through our fused kernel (wasm and cpu) with a straight-through gradient; on
 * other backends (e.g. tfjs-node's "tensorflow") through composed tfjs ops.
 */
export function fakeQuant(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions = {}): tf.Tensor {
  const attrs = attrsFor(x, enc, options);
  const backend = tf.getBackend();
  if ((backend === "wasm" || backend === "cpu") && x.dtype === "float32") {
    return tf.engine().runKernel(KERNEL_NAME, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return composed(x, attrs);
}

/** The same computation composed of tfjs ops: the reference, and the fallback on other backends. */
export function fakeQuantComposed(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions = {}): tf.Tensor {
  return composed(x, attrsFor(x, enc, options));
}

function composed(x: tf.Tensor, a: FakeQuantAttrs): tf.Tensor {
  // customGrad's callback receives the inputs, then the save function, as one rest list.
  const fn = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xin = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([xin]);
    const shape = channelShape(xin.shape, a.scales.length, a.inner);
    const y = tf.tidy(() => {
      const scale = tf.tensor(a.scales, shape);
      const inv = tf.tensor(a.scales.map((v) => 1 / Math.fround(v)), shape);
      const lo = tf.tensor(a.offsets, shape);
      const hi = tf.tensor(a.offsets.map((o) => o + a.numSteps), shape);
      // Multiply by the reciprocal, as the kernel does (it differs from x / scale only at rare exact ties).
      let v = tf.mul(xin.toFloat(), inv);
      // Stochastic rounding here draws from tfjs's generator, not the kernel's: same law, other stream.
      v = a.stochastic ? tf.floor(tf.add(v, tf.randomUniform(v.shape, 0, 1, "float32", a.seed))) : tf.round(v);
      return tf.mul(tf.minimum(tf.maximum(v, lo), hi), scale);
    });
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, steMask(saved[0], a))],
    };
  };
  return (tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]) as (t: tf.Tensor) => tf.Tensor)(x);
}
