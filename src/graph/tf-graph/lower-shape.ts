import * as tf from "@tensorflow/tfjs";
import { registerTfOp, TfLoweringContext } from "./lowering";

/**
 * Ops that move, select or join values. Their shape arguments are folded
 * constants by now; sizes are read at the probe batch of 1, and an op that
 * keeps the batch axis first is lowered so that it works at any batch size.
 */

/** Reshapes input 0 to `shape` (a full shape at batch 1): keeping the batch axis when both ends lead with it. */
function reshapeTo(ctx: TfLoweringContext, shape: number[]): string {
  const inShape = ctx.shape(0);
  if (inShape.length >= 1 && shape.length >= 1 && inShape[0] === 1 && shape[0] === 1) return ctx.emit("reshape", [ctx.value(0)], { targetShape: shape.slice(1) });
  return ctx.emit("reshapeAll", [ctx.value(0)], { shape });
}

/** `target` with its -1 resolved against `inShape`'s size. */
function resolved(ctx: TfLoweringContext, inShape: number[], target: number[]): number[] {
  const size = inShape.reduce((a, b) => a * b, 1);
  const known = target.reduce((a, b) => (b === -1 ? a : a * b), 1);
  const out = target.map((d) => (d === -1 ? size / known : d));
  if (out.reduce((a, b) => a * b, 1) !== size || !out.every(Number.isInteger)) ctx.fail(`cannot reshape [${inShape.join(", ")}] to [${target.join(", ")}]`);
  return out;
}

registerTfOp("Reshape", (ctx) => reshapeTo(ctx, resolved(ctx, ctx.shape(0), ctx.ints(1, "shape"))));

registerTfOp("Squeeze", (ctx) => {
  const s = ctx.shape(0);
  const dims = ctx.attr<number[]>("squeeze_dims", []).map((a) => (a < 0 ? a + s.length : a));
  return reshapeTo(ctx, s.filter((d, i) => (dims.length ? !dims.includes(i) : d !== 1)));
});

registerTfOp("ExpandDims", (ctx) => {
  const s = ctx.shape(0);
  let [axis] = ctx.ints(1, "axis");
  if (axis < 0) axis += s.length + 1;
  const out = [...s.slice(0, axis), 1, ...s.slice(axis)];
  // A new leading axis pushes the batch out of first place.
  return axis === 0 ? ctx.emit("reshapeAll", [ctx.value(0)], { shape: out }) : reshapeTo(ctx, out);
});

registerTfOp("Transpose", (ctx) => ctx.emit("transpose", [ctx.value(0)], { perm: ctx.ints(1, "permutation") }));

/** Computed inputs of a join; constants among them become constant nodes. */
function joined(ctx: TfLoweringContext, count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    ctx.isConstant(i) ? ctx.emit("constant", [], {}, { value: tf.cast(ctx.constant(i, "value"), "float32") }, `const${i}`) : ctx.value(i),
  );
}

registerTfOp("ConcatV2", (ctx) => {
  const n = ctx.arity - 1;
  const rank = ctx.shape(0).length;
  let [axis] = ctx.ints(n, "axis");
  if (axis < 0) axis += rank;
  return ctx.emit("concat", joined(ctx, n), { axis });
});

registerTfOp("Pack", (ctx) => {
  const rank = ctx.shape(0).length;
  let axis = ctx.attr<number>("axis", 0);
  if (axis < 0) axis += rank + 1;
  return ctx.emit("pack", joined(ctx, ctx.arity), { axis });
});

/** One slice of input 0 per output, from per-axis begin/end/strides (full-size ends where unspecified). */
function slice(ctx: TfLoweringContext, begin: number[], end: number[], strides: number[], shape: number[], suffix?: string): string {
  const inShape = ctx.shape(0);
  if (strides.some((s) => s <= 0)) ctx.fail("slices with negative strides are not supported");
  const batchFree = inShape.length > 0 && shape.length > 0 && begin[0] === 0 && end[0] >= inShape[0] && strides[0] === 1 && inShape[0] === 1 && shape[0] === 1;
  const attrs = { begin, end: batchFree ? [1, ...end.slice(1)] : end, strides, shape: batchFree ? [-1, ...shape.slice(1)] : shape, batchFree };
  return ctx.emit("stridedSlice", [ctx.value(0)], attrs, {}, suffix);
}

registerTfOp("StridedSlice", (ctx) => {
  const s = ctx.shape(0);
  const m = (name: string) => ctx.attr<number>(name, 0);
  const info = tf.slice_util.sliceInfo(s, ctx.ints(1, "begin"), ctx.ints(2, "end"), ctx.ints(3, "strides"), m("begin_mask"), m("end_mask"), m("ellipsis_mask"), m("new_axis_mask"), m("shrink_axis_mask"));
  // A new leading axis or a dropped batch axis moves the batch: the reshape then has no batch to keep.
  const leadsWithBatch = (m("new_axis_mask") & 1) === 0 && (m("shrink_axis_mask") & 1) === 0;
  const shape = info.finalShape;
  if (!leadsWithBatch) return ctx.emit("stridedSlice", [ctx.value(0)], { begin: info.begin, end: info.end, strides: info.strides, shape, batchFree: false });
  return slice(ctx, info.begin, info.end, info.strides, shape);
});

registerTfOp("Slice", (ctx) => {
  const s = ctx.shape(0);
  const begin = ctx.ints(1, "begin");
  const size = ctx.ints(2, "size");
  const end = begin.map((b, i) => (size[i] === -1 ? s[i] : b + size[i]));
  return slice(ctx, begin, end, begin.map(() => 1), end.map((e, i) => e - begin[i]));
});

/** Split, SplitV and Unpack: one strided slice per output along `axis`. */
function pieces(ctx: TfLoweringContext, axis: number, sizes: number[], drop: boolean): string[] {
  const s = ctx.shape(0);
  if (axis < 0) axis += s.length;
  let at = 0;
  return sizes.map((size, k) => {
    const begin = s.map((_, i) => (i === axis ? at : 0));
    const end = s.map((d, i) => (i === axis ? at + size : d));
    at += size;
    const shape = drop ? s.filter((_, i) => i !== axis) : s.map((d, i) => (i === axis ? size : d));
    if (drop && axis === 0) return ctx.emit("stridedSlice", [ctx.value(0)], { begin, end, strides: s.map(() => 1), shape, batchFree: false }, {}, `${k}`);
    return slice(ctx, begin, end, s.map(() => 1), shape, `${k}`);
  });
}

registerTfOp("Unpack", (ctx) => {
  const s = ctx.shape(0);
  let axis = ctx.attr<number>("axis", 0);
  if (axis < 0) axis += s.length;
  return pieces(ctx, axis, new Array(s[axis]).fill(1), true);
});

registerTfOp("Split", (ctx) => {
  const [axis] = ctx.ints(0, "axis");
  const n = ctx.attr<number>("num_split");
  const s = (ctx.shape(1) as number[]);
  const a = axis < 0 ? axis + s.length : axis;
  // Split reads (axis, value): lower against the value as input 0.
  return piecesOf(ctx, 1, a, new Array(n).fill(s[a] / n));
});

registerTfOp("SplitV", (ctx) => {
  const s = ctx.shape(0);
  let [axis] = ctx.ints(2, "axis");
  if (axis < 0) axis += s.length;
  const sizes = ctx.ints(1, "sizes");
  const known = sizes.reduce((a, b) => (b === -1 ? a : a + b), 0);
  return pieces(ctx, axis, sizes.map((v) => (v === -1 ? s[axis] - known : v)), false);
});

/** `pieces` for an op whose value is input `i` rather than 0. */
function piecesOf(ctx: TfLoweringContext, i: number, axis: number, sizes: number[]): string[] {
  const shifted: TfLoweringContext = { ...ctx, value: (j) => ctx.value(j + i), shape: (j) => ctx.shape(j + i), isConstant: (j) => ctx.isConstant(j + i) };
  return pieces(shifted, axis, sizes, false);
}

registerTfOp(["Pad", "PadV2"], (ctx) => {
  const flat = ctx.ints(1, "paddings");
  const paddings = Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]] as [number, number]);
  const value = ctx.node.op === "PadV2" ? ctx.ints(2, "constant value")[0] : 0;
  // Zero padding of the image axes is a layers model's ZeroPadding2D.
  if (paddings.length === 4 && value === 0 && paddings[0].every((p) => p === 0) && paddings[3].every((p) => p === 0)) {
    return ctx.emit("zeroPad2d", [ctx.value(0)], { pads: [paddings[1], paddings[2]] });
  }
  return ctx.emit("pad", [ctx.value(0)], { paddings, value });
});

registerTfOp("Tile", (ctx) => ctx.emit("tile", [ctx.value(0)], { reps: ctx.ints(1, "multiples") }));

registerTfOp("DepthToSpace", (ctx) => {
  if (ctx.attr<string>("data_format", "NHWC") !== "NHWC") ctx.fail("only NHWC is supported");
  return ctx.emit("depthToSpace", [ctx.value(0)], { blockSize: ctx.attr<number>("block_size") });
});

for (const [op, method] of [["ResizeBilinear", "bilinear"], ["ResizeNearestNeighbor", "nearest"]] as const) {
  registerTfOp(op, (ctx) => {
    const size = ctx.ints(1, "size");
    return ctx.emit("resize", [ctx.value(0)], { method, size, alignCorners: ctx.attr<boolean>("align_corners", false), halfPixelCenters: ctx.attr<boolean>("half_pixel_centers", false) });
  });
}

registerTfOp("GatherV2", (ctx) => {
  if (ctx.attr<number>("batch_dims", 0) !== 0) ctx.fail("batch_dims other than 0 are not supported");
  const rank = ctx.shape(0).length;
  let [axis] = ctx.ints(2, "axis");
  if (axis < 0) axis += rank;
  const params = ctx.isConstant(0) ? ctx.emit("constant", [], {}, { value: tf.cast(ctx.constant(0, "params"), "float32") }, "params") : ctx.value(0);
  if (ctx.isConstant(1)) return ctx.emit("gather", [params], { axis, indices: ctx.ints(1, "indices"), indicesShape: ctx.shape(1) });
  return ctx.emit("gather", [params, ctx.value(1)], { axis });
});

registerTfOp("GatherNd", (ctx) => {
  const params = ctx.isConstant(0) ? ctx.emit("constant", [], {}, { value: tf.cast(ctx.constant(0, "params"), "float32") }, "params") : ctx.value(0);
  const ishape = ctx.shape(1);
  const depth = ishape[ishape.length - 1];
  if (ctx.isConstant(1)) return ctx.emit("gatherNd", [params], { indices: ctx.ints(1, "indices"), indicesShape: ishape, depth });
  return ctx.emit("gatherNd", [params, ctx.value(1)], { depth });
});
