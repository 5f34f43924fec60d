import * as tf from "@tensorflow/tfjs";
import { Encoding } from "./encoding";
import { channelTensors, FakeQuantAttrs, KERNEL_BACKENDS, KERNEL_NAME, registerFakeQuantKernel, steMask } from "./fake-quant-kernel";

export interface FakeQuantOptions {
  /** Channel axis for per-channel encodings (default: the last axis; negative counts from the end). */
  axis?: number;
  /** "nearest" rounds half to even (like tf.round); "stochastic" rounds down or up at random (seeded). */
  rounding?: "nearest" | "stochastic";
  /** Seed of the stochastic rounding stream: the same seed gives the same result. */
  seed?: number;
}

registerFakeQuantKernel();

function attrsFor(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions): FakeQuantAttrs {
  const list = Array.isArray(enc) ? (enc as readonly Encoding[]) : [enc as Encoding];
  if (list.length === 0) throw new Error("fakeQuant: no encoding given");
  if (options.rounding !== undefined && options.rounding !== "nearest" && options.rounding !== "stochastic") {
    throw new Error(`fakeQuant: invalid rounding ${JSON.stringify(options.rounding)} (expected "nearest" or "stochastic")`);
  }
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
 * after `axis`): delta * clamp(round(x / delta), offset, offset + numSteps), round
 * half to even. Runs our fused kernel on wasm and cpu, with a straight-through
 * gradient; on other backends (e.g. tfjs-node's "tensorflow") the composed ops,
 * which compute the same values.
 */
export function fakeQuant(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions = {}): tf.Tensor {
  const attrs = attrsFor(x, enc, options);
  if (KERNEL_BACKENDS.includes(tf.getBackend()) && x.dtype === "float32") {
    return tf.engine().runKernel(KERNEL_NAME, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return composed(x, attrs);
}

/**
 * The same computation composed of tfjs ops (div, round, clipByValue, mul; per
 * channel with different offsets: sub, clipByValue, add, as AIMET's torch code
 * writes it): the reference for the kernel, and the fallback on other backends.
 * For "nearest" and finite inputs the values are the kernel's, bit for bit up to
 * the sign of zero, at every bit-width. NaN: on wasm
 * tf.clipByValue turns NaN into the lower bound, where the kernel (like
 * torch.clamp in AIMET) lets it through; tf.maximum/minimum would keep it but
 * run ~50x slower on wasm. "stochastic" draws from tfjs's seeded generator,
 * not mulberry32: the same law, another stream.
 */
export function fakeQuantComposed(x: tf.Tensor, enc: Encoding | readonly Encoding[], options: FakeQuantOptions = {}): tf.Tensor {
  return composed(x, attrsFor(x, enc, options));
}

function composed(x: tf.Tensor, a: FakeQuantAttrs): tf.Tensor {
  const sharedOffset = a.offsets.every((o) => o === a.offsets[0]);
  const forward = (xin: tf.Tensor): tf.Tensor =>
    tf.tidy(() => {
      const { scales, los, his } = channelTensors(xin.shape, a);
      const v = tf.div(xin.toFloat(), scales);
      const r = a.stochastic ? tf.floor(tf.add(v, tf.randomUniform(v.shape, 0, 1, "float32", a.seed))) : tf.round(v);
      const clamped = sharedOffset
        ? tf.clipByValue(r, a.offsets[0], a.offsets[0] + a.numSteps)
        : a.numSteps < 2 ** 24
          ? tf.add(tf.clipByValue(tf.sub(r, los), 0, a.numSteps), los) // exact: integers below 2^24 in float32
          : tf.minimum(tf.maximum(r, los), his); // wider codes lose bits in r - offset; max/min are exact (slow on wasm)
      return tf.mul(clamped, scales);
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
