import * as tf from "@tensorflow/tfjs";
import { registerTfOp, TfLoweringContext } from "./lowering";

/**
 * Elementwise math, activations and reductions of graph models. A bias added to
 * a convolution or dense node that has none, and a Relu/Relu6 after one, are
 * fused into it (as TF's own grappler does for _FusedConv2D), so quantizers sit
 * where a runtime would put them.
 */
const FUSABLE_INTO = new Set(["conv2d", "depthwiseConv2d", "dense"]);

/** The conv/dense node input 0 comes from, if this node may fuse into it. */
function fusionTarget(ctx: TfLoweringContext, i = 0): string | undefined {
  if (ctx.isConstant(i)) return undefined;
  const name = ctx.value(i);
  const e = ctx.emitted(name);
  if (!e || !FUSABLE_INTO.has(e.op) || e.attrs.activation !== "linear" || !ctx.soleReader(name)) return undefined;
  return name;
}

// Sigmoid is elementwise math (see ops/elementwise.ts), for its exact ONNX lowering.
registerTfOp("Sigmoid", (ctx) => ctx.emit("unary", [ctx.value(0)], { fn: "sigmoid" }));
const ACTIVATIONS: Record<string, string> = { Relu: "relu", Relu6: "relu6", Tanh: "tanh", Elu: "elu", Selu: "selu", Softplus: "softplus", Softsign: "softsign" };
for (const [op, fn] of Object.entries(ACTIVATIONS)) {
  registerTfOp(op, (ctx) => {
    const target = fn === "relu" || fn === "relu6" ? fusionTarget(ctx) : undefined;
    if (target) {
      const e = ctx.emitted(target)!;
      ctx.rewrite(target, { ...e.attrs, activation: fn }, e.params);
      return target;
    }
    return ctx.emit("activation", [ctx.value(0)], { fn });
  });
}
registerTfOp("LeakyRelu", (ctx) => ctx.emit("activation", [ctx.value(0)], { fn: "leakyRelu", alpha: ctx.attr<number>("alpha", 0.2) }));
registerTfOp("Softmax", (ctx) => ctx.emit("activation", [ctx.value(0)], { fn: "softmax", axis: -1 }));
registerTfOp("LogSoftmax", (ctx) => ctx.emit("activation", [ctx.value(0)], { fn: "logSoftmax" }));
registerTfOp("Prelu", (ctx) => ctx.emit("prelu", [ctx.value(0)], {}, { alpha: tf.cast(ctx.constant(1, "alpha"), "float32") }));

const UNARY: Record<string, string> = {
  Abs: "abs", Neg: "neg", Exp: "exp", Log: "log", Sqrt: "sqrt", Rsqrt: "rsqrt", Square: "square", Reciprocal: "reciprocal", Inv: "reciprocal",
  Floor: "floor", Ceil: "ceil", Round: "round", Sign: "sign", Cos: "cos", Sin: "sin", Tan: "tan", Atan: "atan", LogicalNot: "logicalNot", ZerosLike: "zerosLike",
};
for (const [op, fn] of Object.entries(UNARY)) registerTfOp(op, (ctx) => ctx.emit("unary", [ctx.value(0)], { fn }));

/** Casts keep values as floats: to an integer type they truncate, to bool they test for non-zero. */
registerTfOp("Cast", (ctx) => {
  const to = ctx.attr<string>("DstT");
  if (to === "DT_FLOAT" || to === "DT_HALF" || to === "DT_DOUBLE") return ctx.emit("unary", [ctx.value(0)], { fn: "toFloat" });
  if (to === "DT_BOOL") return ctx.emit("unary", [ctx.value(0)], { fn: "nonZero" });
  if (/^DT_U?INT\d+$/.test(to)) return ctx.emit("unary", [ctx.value(0)], { fn: "truncate" });
  return ctx.fail(`cast to ${to} is not supported`);
});

const BINARY: Record<string, string> = {
  Add: "add", AddV2: "add", BiasAdd: "add", Sub: "sub", Mul: "mul", RealDiv: "div", Div: "div", DivNoNan: "div", Maximum: "maximum", Minimum: "minimum",
  Pow: "pow", SquaredDifference: "squaredDifference", FloorDiv: "floorDiv", FloorMod: "floorMod", Atan2: "atan2", Equal: "equal", NotEqual: "notEqual",
  Greater: "greater", GreaterEqual: "greaterEqual", Less: "less", LessEqual: "lessEqual", LogicalAnd: "logicalAnd", LogicalOr: "logicalOr",
};
for (const [op, fn] of Object.entries(BINARY)) {
  registerTfOp(op, (ctx) => {
    const [c0, c1] = [ctx.isConstant(0), ctx.isConstant(1)];
    if (!c0 && !c1) {
      // Two computed values: the merge ops a layers model has where they exist.
      if (fn === "add") return ctx.emit("add", [ctx.value(0), ctx.value(1)]);
      if (fn === "mul") return ctx.emit("multiply", [ctx.value(0), ctx.value(1)]);
      return ctx.emit("binary", [ctx.value(0), ctx.value(1)], { fn });
    }
    const [xi, ci] = c1 ? [0, 1] : [1, 0];
    const operand = ctx.constant(ci, "operand");
    const target = fn === "add" ? fusionTarget(ctx, xi) : undefined;
    if (target) {
      const e = ctx.emitted(target)!;
      const channels = ctx.shape(xi)[ctx.shape(xi).length - 1];
      if (!e.params.bias && operand.size === channels && operand.shape[operand.rank - 1] === channels && operand.rank <= ctx.shape(xi).length) {
        const attrs = e.op === "depthwiseConv2d" ? e.attrs : { ...e.attrs, biasAfter: true };
        ctx.rewrite(target, attrs, { ...e.params, bias: tf.tidy(() => tf.cast(tf.reshape(operand, [channels]), "float32")) });
        return target;
      }
    }
    return ctx.emit("binary", [ctx.value(xi)], { fn, operandFirst: ci === 0 }, { operand: tf.cast(operand, "float32") });
  });
}

registerTfOp("AddN", (ctx) => {
  const xs = Array.from({ length: ctx.arity }, (_, i) => (ctx.isConstant(i) ? ctx.fail("adding a constant with AddN is not supported") : ctx.value(i)));
  return xs.length === 1 ? ctx.emit("identity", xs) : ctx.emit("add", xs);
});

function axes(ctx: TfLoweringContext, i: number, rank: number): number[] {
  return ctx.ints(i, "axes").map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

const REDUCE: Record<string, string> = { Mean: "mean", Sum: "sum", Max: "max", Min: "min", Prod: "prod" };
for (const [op, fn] of Object.entries(REDUCE)) {
  registerTfOp(op, (ctx) => {
    const rank = ctx.shape(0).length;
    const a = axes(ctx, 1, rank);
    const keepDims = ctx.attr<boolean>("keep_dims", false);
    // Averaging all pixels of an image is a layers model's GlobalAveragePooling2D.
    if (fn === "mean" && !keepDims && rank === 4 && a.join() === "1,2") return ctx.emit("globalAvgPool", [ctx.value(0)], { axes: [1, 2] });
    if (fn === "max" && !keepDims && rank === 4 && a.join() === "1,2") return ctx.emit("globalMaxPool", [ctx.value(0)], { axes: [1, 2] });
    return ctx.emit("reduce", [ctx.value(0)], { fn, axes: a, keepDims });
  });
}

registerTfOp("ArgMax", (ctx) => {
  const [axis] = axes(ctx, 1, ctx.shape(0).length);
  return ctx.emit("argMax", [ctx.value(0)], { axis });
});

/** TopKV2 over the last axis: values under the TF name, indices (as floats) under "<name>/indices". */
registerTfOp("TopKV2", (ctx) => {
  const [k] = ctx.ints(1, "k");
  const sorted = ctx.attr<boolean>("sorted", true);
  const x = ctx.value(0);
  return [ctx.emit("topK", [x], { k, sorted, output: 0 }), ctx.emit("topK", [x], { k, sorted, output: 1 }, {}, "indices")];
});

/** Select / SelectV2; a rank-1 condition of Select (v1) picks whole rows of higher-rank values, as TF.js's where does. */
registerTfOp(["Select", "SelectV2"], (ctx) => {
  const side = (i: number) => (ctx.isConstant(i) ? ctx.emit("constant", [], {}, { value: tf.cast(ctx.constant(i, "operand"), "float32") }, `operand${i}`) : ctx.value(i));
  const [c, a] = [ctx.shape(0), ctx.shape(1)];
  const rows = ctx.node.op === "Select" && c.length === 1 && a.length > 1;
  return ctx.emit("select", [side(0), side(1), side(2)], rows ? { conditionShape: [-1, ...new Array(a.length - 1).fill(1)] } : {});
});
