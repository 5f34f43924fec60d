import { GraphNode, OnnxLayout, OnnxLoweringContext, OnnxValue, WeightLayout } from "../types";
import { ActivationAttrs } from "./activation";

/**
 * Shared pieces of the ONNX lowerings: weight layouts, convolution attributes
 * and activations, written once so each op file stays a few lines.
 */

/** The permutation that takes a channels-last tensor of `rank` to channels-first. */
export function channelsFirstPerm(rank: number): number[] {
  return [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
}

/** Where axis `axis` of the graph's (channels-last) tensor sits in `layout`. */
export function axisIn(layout: OnnxLayout, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  return layout === "native" ? a : channelsFirstPerm(rank).indexOf(a);
}

/** Transposes a dense row-major array. */
export function transposeData(data: Float32Array, shape: readonly number[], perm: readonly number[]): { data: Float32Array; dims: number[] } {
  const dims = perm.map((p) => shape[p]);
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < rank; i++) src += index[i] * strides[i];
    out[o] = data[src];
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i] < dims[i]) break;
      index[i] = 0;
    }
  }
  return { data: out, dims };
}

/** Keras conv kernels [k..., in, out] as ONNX's [out, in, k...]. */
export const convKernel: WeightLayout = (data, shape) => {
  const r = shape.length;
  return transposeData(data, shape, [r - 1, r - 2, ...Array.from({ length: r - 2 }, (_, i) => i)]);
};

/** A depthwise kernel [kh, kw, in, mult] as a grouped conv's [in*mult, 1, kh, kw] (output channel c*mult + m). */
export const depthwiseKernel: WeightLayout = (data, [kh, kw, cin, mult]) => {
  const t = transposeData(data, [kh, kw, cin * mult], [2, 0, 1]);
  return { data: t.data, dims: [cin * mult, 1, kh, kw] };
};

/** ONNX Conv/pool attributes from our strides, padding and dilations. */
export function spatialAttrs(a: { strides: number[]; padding: "same" | "valid"; dilations?: number[] }, kernel: number[], op: "conv" | "pool" = "conv"): Record<string, unknown> {
  // TF's "same" puts the odd extra pixel at the end, as SAME_UPPER does. A conv's "valid" is spelled as zero pads,
  // not auto_pad VALID: ONNX Runtime folds a zero Pad before a conv into explicit pads only (Keras's ZeroPadding2D
  // before MobileNetV2's stride-2 convs). Pools keep VALID: folded into a pool, zero padding would not be zeros.
  const padding = a.padding === "same" ? { auto_pad: "SAME_UPPER" } : op === "conv" ? { pads: new Array(2 * kernel.length).fill(0) } : { auto_pad: "VALID" };
  return { kernel_shape: kernel, strides: a.strides, dilations: a.dilations, ...padding };
}

/** Broadcasts a per-channel vector over a tensor of `rank` in `layout` (shape [C] or [C, 1, ...]). */
export function channelVector(ctx: OnnxLoweringContext, node: GraphNode, key: string, layout: OnnxLayout, rank: number): string {
  if (layout === "native") return ctx.param(node, key);
  return ctx.param(node, key, (data) => ({ data, dims: [data.length, ...new Array(rank - 2).fill(1)] }));
}

const SELU_ALPHA = 1.6732632423543772848170429916717;
const SELU_SCALE = 1.0507009873554804934193349852946;

/** Applies an activation with the formulas of tfjs-layers (see activation.ts). */
export function lowerActivation(ctx: OnnxLoweringContext, x: OnnxValue, a: ActivationAttrs): string {
  const n = x.name;
  const f = (v: number) => ({ f: v });
  switch (a.fn) {
    case "linear":
      return n;
    case "relu":
      if (Array.isArray(a.maxValue)) {
        const clip = x.layout === "native" ? ctx.constant(a.maxValue, [a.maxValue.length]) : ctx.constant(a.maxValue, [a.maxValue.length, ...new Array(x.rank - 2).fill(1)]);
        return ctx.node("Min", [ctx.node("Relu", [n]), clip]);
      }
      return a.maxValue != null ? ctx.node("Clip", [n, ctx.constant([0], []), ctx.constant([a.maxValue], [])]) : ctx.node("Relu", [n]);
    case "relu6":
      return ctx.node("Clip", [n, ctx.constant([0], []), ctx.constant([6], [])]);
    case "leakyRelu":
      return ctx.node("LeakyRelu", [n], { alpha: f(a.alpha ?? 0.3) });
    case "sigmoid":
      return exactSigmoid(ctx, n);
    case "tanh":
      return ctx.node("Tanh", [n]);
    case "softmax":
      return ctx.node("Softmax", [n], { axis: axisIn(x.layout, a.axis ?? -1, x.rank) });
    case "logSoftmax":
      return ctx.node("LogSoftmax", [n], { axis: axisIn(x.layout, -1, x.rank) });
    case "swish":
      return ctx.node("Mul", [exactSigmoid(ctx, n), n]);
    case "gelu": {
      const erf = ctx.node("Erf", [ctx.node("Div", [n, ctx.constant([Math.SQRT2], [])])]);
      return ctx.node("Mul", [n, ctx.node("Mul", [ctx.constant([0.5], []), ctx.node("Add", [ctx.constant([1], []), erf])])]);
    }
    case "gelu_new": {
      const cube = ctx.node("Pow", [n, ctx.constant([3], [])]);
      const inner = ctx.node("Mul", [ctx.constant([Math.sqrt(2 / Math.PI)], []), ctx.node("Add", [n, ctx.node("Mul", [ctx.constant([0.044715], []), cube])])]);
      return ctx.node("Mul", [ctx.node("Mul", [ctx.constant([0.5], []), n]), ctx.node("Add", [ctx.constant([1], []), ctx.node("Tanh", [inner])])]);
    }
    case "elu":
      return ctx.node("Elu", [n], { alpha: f(1) });
    case "selu":
      return ctx.node("Selu", [n], { alpha: f(SELU_ALPHA), gamma: f(SELU_SCALE) });
    case "softplus":
      return ctx.node("Softplus", [n]);
    case "softsign":
      return ctx.node("Div", [n, ctx.node("Add", [ctx.constant([1], []), ctx.node("Abs", [n])])]);
    case "hardSigmoid":
      return ctx.node("Clip", [ctx.node("Add", [ctx.node("Mul", [ctx.constant([0.2], []), n]), ctx.constant([0.5], [])]), ctx.constant([0], []), ctx.constant([1], [])]);
    case "mish":
      return ctx.node("Mul", [n, ctx.node("Tanh", [ctx.node("Softplus", [n])])]);
    default:
      throw new Error(`activation "${a.fn}" has no ONNX lowering`);
  }
}

/** A conv-like op's output: bias (already in the conv), then its activation. */
export function withActivation(ctx: OnnxLoweringContext, y: string, rank: number, activation: string): OnnxValue {
  const v: OnnxValue = { name: y, layout: "channelsFirst", rank };
  return { ...v, name: lowerActivation(ctx, v, { fn: activation }) };
}

/**
 * 1 / (1 + e^-x) written out: ONNX Runtime's Sigmoid kernel is an approximation whose relative error
 * grows where the result is tiny (1e-3 at x = -15), which a detector's flag output often is.
 */
export function exactSigmoid(ctx: OnnxLoweringContext, x: string): string {
  return ctx.node("Reciprocal", [ctx.node("Add", [ctx.constant([1], []), ctx.node("Exp", [ctx.node("Neg", [x])])])]);
}
