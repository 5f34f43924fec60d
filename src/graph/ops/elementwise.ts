import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";
import { GraphNode, OnnxLayout, OnnxLoweringContext, OnnxValue } from "../types";
import { channelsFirstPerm, exactSigmoid, transposeData } from "./onnx-common";

/**
 * Elementwise math of graph models (TF's Abs, Sub, RealDiv, Maximum, Equal, ...),
 * with TF's broadcasting. Every value in the graph is float32: comparisons give
 * 1 or 0 and integer casts keep whole numbers, so post-processing that TF runs
 * on int32 or bool tensors computes the same numbers here.
 *   - "unary": attrs.fn of one input.
 *   - "binary": attrs.fn of two inputs, or of one input and the constant param
 *     `operand` (attrs.operandFirst when the constant is the left operand).
 */
const UNARY: Record<string, { tf: (x: tf.Tensor) => tf.Tensor; onnx: (ctx: OnnxLoweringContext, x: string) => string }> = {
  abs: { tf: tf.abs, onnx: (c, x) => c.node("Abs", [x]) },
  neg: { tf: tf.neg, onnx: (c, x) => c.node("Neg", [x]) },
  exp: { tf: tf.exp, onnx: (c, x) => c.node("Exp", [x]) },
  log: { tf: tf.log, onnx: (c, x) => c.node("Log", [x]) },
  sqrt: { tf: tf.sqrt, onnx: (c, x) => c.node("Sqrt", [x]) },
  rsqrt: { tf: tf.rsqrt, onnx: (c, x) => c.node("Reciprocal", [c.node("Sqrt", [x])]) },
  square: { tf: tf.square, onnx: (c, x) => c.node("Mul", [x, x]) },
  reciprocal: { tf: tf.reciprocal, onnx: (c, x) => c.node("Reciprocal", [x]) },
  floor: { tf: tf.floor, onnx: (c, x) => c.node("Floor", [x]) },
  ceil: { tf: tf.ceil, onnx: (c, x) => c.node("Ceil", [x]) },
  round: { tf: tf.round, onnx: (c, x) => c.node("Round", [x]) },
  sign: { tf: tf.sign, onnx: (c, x) => c.node("Sign", [x]) },
  cos: { tf: tf.cos, onnx: (c, x) => c.node("Cos", [x]) },
  sin: { tf: tf.sin, onnx: (c, x) => c.node("Sin", [x]) },
  tan: { tf: tf.tan, onnx: (c, x) => c.node("Tan", [x]) },
  atan: { tf: tf.atan, onnx: (c, x) => c.node("Atan", [x]) },
  tanh: { tf: tf.tanh, onnx: (c, x) => c.node("Tanh", [x]) },
  sigmoid: { tf: tf.sigmoid, onnx: exactSigmoid },
  /** Cast to float: a no-op on the graph's float values, and what turns an int32 model input into them. */
  toFloat: { tf: (x) => tf.cast(x, "float32"), onnx: (c, x) => c.node("Cast", [x], { to: 1 }) },
  /** Cast to an integer type: truncation toward zero, kept as float. */
  truncate: { tf: (x) => tf.cast(tf.cast(x, "int32"), "float32"), onnx: (c, x) => c.node("Cast", [c.node("Cast", [x], { to: 6 })], { to: 1 }) },
  /** Cast to bool: 1 where non-zero. */
  nonZero: { tf: (x) => tf.cast(tf.notEqual(x, 0), "float32"), onnx: (c, x) => c.node("Cast", [c.node("Not", [c.node("Equal", [x, c.constant([0], [])])])], { to: 1 }) },
  logicalNot: { tf: (x) => tf.cast(tf.equal(x, 0), "float32"), onnx: (c, x) => c.node("Cast", [c.node("Equal", [x, c.constant([0], [])])], { to: 1 }) },
  // ConstantOfShape's default value is a float 0.
  zerosLike: { tf: tf.zerosLike, onnx: (c, x) => c.node("ConstantOfShape", [c.node("Shape", [x])]) },
};

/** Booleans as the graph's 1/0 floats (ONNX Cast to = 1 is FLOAT), and back (non-zero is true). */
const bool = (t: tf.Tensor) => tf.cast(t, "float32");
const toBool = (c: OnnxLoweringContext, x: string) => c.node("Cast", [x], { to: 1 });
const nz = (c: OnnxLoweringContext, x: string) => c.node("Not", [c.node("Equal", [x, c.constant([0], [])])]);

const BINARY: Record<string, { tf: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor; onnx: (ctx: OnnxLoweringContext, a: string, b: string) => string }> = {
  add: { tf: tf.add, onnx: (c, a, b) => c.node("Add", [a, b]) },
  sub: { tf: tf.sub, onnx: (c, a, b) => c.node("Sub", [a, b]) },
  mul: { tf: tf.mul, onnx: (c, a, b) => c.node("Mul", [a, b]) },
  div: { tf: tf.div, onnx: (c, a, b) => c.node("Div", [a, b]) },
  maximum: { tf: tf.maximum, onnx: (c, a, b) => c.node("Max", [a, b]) },
  minimum: { tf: tf.minimum, onnx: (c, a, b) => c.node("Min", [a, b]) },
  pow: { tf: tf.pow, onnx: (c, a, b) => c.node("Pow", [a, b]) },
  squaredDifference: { tf: tf.squaredDifference, onnx: (c, a, b) => { const d = c.node("Sub", [a, b]); return c.node("Mul", [d, d]); } },
  floorDiv: { tf: (a, b) => tf.floor(tf.div(a, b)), onnx: (c, a, b) => c.node("Floor", [c.node("Div", [a, b])]) },
  floorMod: { tf: (a, b) => tf.sub(a, tf.mul(tf.floor(tf.div(a, b)), b)), onnx: (c, a, b) => c.node("Sub", [a, c.node("Mul", [c.node("Floor", [c.node("Div", [a, b])]), b])]) },
  atan2: {
    tf: tf.atan2,
    // atan(a/b), moved to the right half-turn where b < 0; b = 0 gives atan(±inf) = ±pi/2 as atan2 does.
    onnx: (c, a, b) => {
      const base = c.node("Atan", [c.node("Div", [a, b])]);
      const turn = c.node("Where", [c.node("GreaterOrEqual", [a, c.constant([0], [])]), c.constant([Math.PI], []), c.constant([-Math.PI], [])]);
      return c.node("Where", [c.node("Less", [b, c.constant([0], [])]), c.node("Add", [base, turn]), base]);
    },
  },
  equal: { tf: (a, b) => bool(tf.equal(a, b)), onnx: (c, a, b) => toBool(c, c.node("Equal", [a, b])) },
  notEqual: { tf: (a, b) => bool(tf.notEqual(a, b)), onnx: (c, a, b) => toBool(c, c.node("Not", [c.node("Equal", [a, b])])) },
  greater: { tf: (a, b) => bool(tf.greater(a, b)), onnx: (c, a, b) => toBool(c, c.node("Greater", [a, b])) },
  greaterEqual: { tf: (a, b) => bool(tf.greaterEqual(a, b)), onnx: (c, a, b) => toBool(c, c.node("GreaterOrEqual", [a, b])) },
  less: { tf: (a, b) => bool(tf.less(a, b)), onnx: (c, a, b) => toBool(c, c.node("Less", [a, b])) },
  lessEqual: { tf: (a, b) => bool(tf.lessEqual(a, b)), onnx: (c, a, b) => toBool(c, c.node("LessOrEqual", [a, b])) },
  logicalAnd: { tf: (a, b) => bool(tf.logicalAnd(tf.notEqual(a, 0), tf.notEqual(b, 0))), onnx: (c, a, b) => toBool(c, c.node("And", [nz(c, a), nz(c, b)])) },
  logicalOr: { tf: (a, b) => bool(tf.logicalOr(tf.notEqual(a, 0), tf.notEqual(b, 0))), onnx: (c, a, b) => toBool(c, c.node("Or", [nz(c, a), nz(c, b)])) },
};

export const UNARY_FNS = Object.keys(UNARY);
export const BINARY_FNS = Object.keys(BINARY);

registerOp({
  op: "unary",
  run: (node, [x]) => UNARY[node.attrs.fn as string].tf(x),
  onnx: (ctx, node, [x]) => {
    const fn = node.attrs.fn as string;
    return { ...x, name: ctx.node("Identity", [UNARY[fn].onnx(ctx, x.name)], {}, { name: node.name }) };
  },
});

registerOp({
  op: "binary",
  run: (node, xs, p) => {
    const f = BINARY[node.attrs.fn as string].tf;
    if (!p.operand) return f(xs[0], xs[1]);
    return node.attrs.operandFirst ? f(p.operand, xs[0]) : f(xs[0], p.operand);
  },
  onnx: (ctx, node, xs) => {
    const f = BINARY[node.attrs.fn as string].onnx;
    let a: string, b: string, out: OnnxValue;
    if (node.params.operand) {
      const [x] = xs;
      const operand = node.params.operand;
      // The constant follows x's layout; one of higher rank than x meets it in the graph's own order.
      const layout: OnnxLayout = operand.rank > x.rank ? "native" : x.layout;
      const v = ctx.as(x, layout);
      const c = constantIn(ctx, node, layout, Math.max(x.rank, operand.rank));
      [a, b] = node.attrs.operandFirst ? [c, v] : [v, c];
      out = { name: "", layout, rank: Math.max(x.rank, operand.rank) };
    } else {
      const layout: OnnxLayout = xs[0].rank === xs[1].rank && xs[0].rank >= 3 && xs.some((x) => x.layout === "channelsFirst") ? "channelsFirst" : "native";
      [a, b] = xs.map((x) => ctx.as(x, layout));
      out = { name: "", layout, rank: Math.max(xs[0].rank, xs[1].rank) };
    }
    return { ...out, name: ctx.node("Identity", [f(ctx, a, b)], {}, { name: node.name }) };
  },
});

/** The constant operand broadcast against a tensor of `rank` in `layout`. */
function constantIn(ctx: OnnxLoweringContext, node: GraphNode, layout: OnnxLayout, rank: number): string {
  const shape = node.params.operand.shape;
  if (layout === "native" || rank < 3) return ctx.param(node, "operand");
  return ctx.param(node, "operand", (data) => {
    const full = [...new Array(rank - shape.length).fill(1), ...shape];
    return transposeData(data, full, channelsFirstPerm(rank));
  });
}
