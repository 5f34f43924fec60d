import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/**
 * A strided slice with its masks already resolved at import (TF's StridedSlice,
 * Slice, Split, SplitV, Unpack): per-axis begin, end and strides, then a
 * reshape to `shape` for the axes it drops or adds. With `batchFree`, axis 0 is
 * the whole batch in and out, whatever its size (`shape[0]` is then -1).
 */
interface SliceAttrs {
  begin: number[];
  end: number[];
  strides: number[];
  shape: number[];
  batchFree: boolean;
}

registerOp({
  op: "stridedSlice",
  run: (node, [x]) => {
    const a = node.attrs as unknown as SliceAttrs;
    const end = a.batchFree ? [x.shape[0], ...a.end.slice(1)] : a.end;
    const y = tf.stridedSlice(x, a.begin, end, a.strides);
    return tf.reshape(y, a.batchFree ? [x.shape[0], ...a.shape.slice(1)] : a.shape);
  },
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as unknown as SliceAttrs;
    const axes = a.begin.map((_, i) => i);
    // ONNX clamps ends to the axis size; the batch axis runs to its end, whatever its size.
    const end = a.batchFree ? [Number.MAX_SAFE_INTEGER, ...a.end.slice(1)] : a.end;
    const sliced = ctx.node("Slice", [ctx.as(x, "native"), ctx.ints(a.begin), ctx.ints(end), ctx.ints(axes), ctx.ints(a.strides)]);
    const shape = a.batchFree ? [0, ...a.shape.slice(1)] : a.shape;
    return { name: ctx.node("Reshape", [sliced, ctx.ints(shape)], {}, { name: node.name }), layout: "native", rank: a.shape.length };
  },
});
