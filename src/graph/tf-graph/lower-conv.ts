import * as tf from "@tensorflow/tfjs";
import { Params } from "../types";
import { paddingOf, registerTfOp, requireNhwc, TfLoweringContext } from "./lowering";

/**
 * Convolutions, matrix products and pooling of graph models, lowered to the
 * same graph ops a layers model has (conv2d, depthwiseConv2d, dense, ...), so
 * weight quantizers, per-channel settings, CLE, bias correction and AdaRound
 * treat them alike. Constant filters, biases and PReLU slopes become params.
 * Activations TF already fused into the op stay fused: one node, one output.
 */

/** Activations our conv/dense kernels apply themselves (tf.fused's set, as tfjs runs _FusedConv2D). */
const FUSED_ACTIVATIONS: Record<string, string> = { relu: "relu", relu6: "relu6", elu: "elu", sigmoid: "sigmoid" };

interface Fused {
  bias?: tf.Tensor;
  /** Our activation name, or "linear" when a separate node applies it. */
  activation: string;
  /** Emits the activation that cannot be fused (LeakyRelu, PReLU) after the op. */
  after: (y: string) => string;
}

/** Reads `fused_ops` (BiasAdd, then an activation) and the extra arguments from input 2 on. */
function fusedOps(ctx: TfLoweringContext, firstArg: number): Fused {
  const ops = ctx.attr<string[]>("fused_ops", []).map((o) => o.toLowerCase());
  let [extra, act] = ops;
  if (extra !== "biasadd") [extra, act] = [undefined as unknown as string, extra];
  if (ops.includes("fusedbatchnorm")) ctx.fail("fused BatchNorm is not supported (tfjs cannot run it either)");
  let arg = firstArg;
  const bias = extra === "biasadd" ? ctx.constant(arg++, "bias") : undefined;
  if (!act) return { bias, activation: "linear", after: (y) => y };
  if (FUSED_ACTIVATIONS[act]) return { bias, activation: FUSED_ACTIVATIONS[act], after: (y) => y };
  if (act === "leakyrelu") {
    const alpha = ctx.attr<number>("leakyrelu_alpha", 0.2);
    return { bias, activation: "linear", after: (y) => ctx.emit("activation", [y], { fn: "leakyRelu", alpha }, {}, "LeakyRelu") };
  }
  if (act === "prelu") {
    const alpha = ctx.constant(arg, "PReLU alpha");
    return { bias, activation: "linear", after: (y) => ctx.emit("prelu", [y], {}, { alpha: tf.clone(alpha) }, "Prelu") };
  }
  return ctx.fail(`fused activation "${act}" is not supported`);
}

/** Strides/dilations [1, h, w, 1] as [h, w]; EXPLICIT padding becomes a zero-padding node before the op. */
function spatial(ctx: TfLoweringContext): { x: string; strides: [number, number]; dilations: [number, number]; padding: "same" | "valid" } {
  requireNhwc(ctx);
  const s = ctx.attr<number[]>("strides", [1, 1, 1, 1]);
  const d = ctx.attr<number[]>("dilations", [1, 1, 1, 1]);
  let x = ctx.value(0);
  let padding: "same" | "valid";
  if (ctx.attr<string>("padding") === "EXPLICIT") {
    const e = ctx.attr<number[]>("explicit_paddings", []);
    if (e.length !== 8 || e[0] || e[1] || e[6] || e[7]) ctx.fail(`explicit_paddings ${JSON.stringify(e)} pad more than the spatial axes`);
    x = ctx.emit("zeroPad2d", [x], { pads: [[e[2], e[3]], [e[4], e[5]]] }, {}, "pad");
    padding = "valid";
  } else {
    padding = paddingOf(ctx);
  }
  return { x, strides: [s[1], s[2]], dilations: [d[1], d[2]], padding };
}

const withBias = (params: Params, bias?: tf.Tensor): Params => (bias ? { ...params, bias: tf.clone(bias) } : params);

registerTfOp(["Conv2D", "_FusedConv2D"], (ctx) => {
  const { x, strides, dilations, padding } = spatial(ctx);
  const kernel = ctx.constant(1, "filter");
  const fused = ctx.node.op === "Conv2D" ? { activation: "linear", after: (y: string) => y, bias: undefined } : fusedOps(ctx, 2);
  const y = ctx.emit("conv2d", [x], { strides, padding, dilations, activation: fused.activation }, withBias({ kernel: tf.clone(kernel) }, fused.bias));
  return fused.after(y);
});

registerTfOp(["DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"], (ctx) => {
  const { x, strides, dilations, padding } = spatial(ctx);
  const kernel = ctx.constant(1, "filter");
  const fused = ctx.node.op === "DepthwiseConv2dNative" ? { activation: "linear", after: (y: string) => y, bias: undefined } : fusedOps(ctx, 2);
  const attrs = { strides, padding, dilations, activation: fused.activation, fusedKernel: ctx.node.op === "FusedDepthwiseConv2dNative" };
  const y = ctx.emit("depthwiseConv2d", [x], attrs, withBias({ depthwise_kernel: tf.clone(kernel) }, fused.bias));
  return fused.after(y);
});

/** MatMul, _FusedMatMul and BatchMatMulV2: a dense layer when the right side is a constant matrix, else a product of two values. */
registerTfOp(["MatMul", "_FusedMatMul", "BatchMatMulV2", "BatchMatMul"], (ctx) => {
  const batched = ctx.node.op.startsWith("Batch");
  const ta = ctx.attr<boolean>(batched ? "adj_x" : "transpose_a", false);
  const tb = ctx.attr<boolean>(batched ? "adj_y" : "transpose_b", false);
  const fused = ctx.node.op === "_FusedMatMul" ? fusedOps(ctx, 2) : { activation: "linear", after: (y: string) => y, bias: undefined };
  if (!ctx.isConstant(0) && ctx.isConstant(1) && !ta && ctx.shape(1).length === 2) {
    const b = ctx.constant(1, "matrix");
    const kernel = tb ? tf.transpose(b) : tf.clone(b);
    // kernelTransposed: the stored TF weight is the kernel's transpose (an export writes it back that way).
    return fused.after(ctx.emit("dense", [ctx.value(0)], { activation: fused.activation, ...(tb ? { kernelTransposed: true } : {}) }, withBias({ kernel }, fused.bias)));
  }
  const side = (i: number) => (ctx.isConstant(i) ? ctx.emit("constant", [], {}, { value: tf.cast(ctx.constant(i, "operand"), "float32") }, `operand${i}`) : ctx.value(i));
  let y = ctx.emit("matMul", [side(0), side(1)], { transposeA: ta, transposeB: tb });
  if (fused.bias) y = ctx.emit("binary", [y], { fn: "add" }, { operand: tf.clone(fused.bias) }, "BiasAdd");
  if (fused.activation !== "linear") y = ctx.emit("activation", [y], { fn: fused.activation }, {}, "activation");
  return fused.after(y);
});

registerTfOp("Conv2DBackpropInput", (ctx) => {
  requireNhwc(ctx);
  const outputShape = ctx.ints(0, "output shape");
  const kernel = ctx.constant(1, "filter");
  const x = ctx.value(2);
  const s = ctx.attr<number[]>("strides", [1, 1, 1, 1]);
  const d = ctx.attr<number[]>("dilations", [1, 1, 1, 1]);
  if (d.some((v) => v !== 1)) ctx.fail("dilated transposed convolutions are not supported");
  const inShape = ctx.shape(2);
  const attrs = { inputSize: [inShape[1], inShape[2]], outputSize: [outputShape[1], outputShape[2]], strides: [s[1], s[2]], padding: paddingOf(ctx) };
  return ctx.emit("conv2dTranspose", [x], attrs, { kernel: tf.clone(kernel) });
});

function pool(op: string) {
  return (ctx: TfLoweringContext) => {
    requireNhwc(ctx);
    const k = ctx.attr<number[]>("ksize");
    const s = ctx.attr<number[]>("strides");
    if (k[0] !== 1 || k[3] !== 1 || s[0] !== 1 || s[3] !== 1) ctx.fail("pooling over the batch or channel axis is not supported");
    return ctx.emit(op, [ctx.value(0)], { poolSize: [k[1], k[2]], strides: [s[1], s[2]], padding: paddingOf(ctx) });
  };
}
registerTfOp("MaxPool", pool("maxPool2d"));
registerTfOp("AvgPool", pool("avgPool2d"));
