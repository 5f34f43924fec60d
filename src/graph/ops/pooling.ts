import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { LayerCall, OnnxLowering } from "../types";
import { spatialAttrs } from "./onnx-common";
import { channelsLast, pair, padding } from "./config";

/** Max and average pooling over windows, and global pooling over all spatial axes. */
registerOp({
  op: "maxPool2d",
  run: (node, [x]) => tf.maxPool(x as tf.Tensor4D, node.attrs.poolSize as [number, number], node.attrs.strides as [number, number], node.attrs.padding as "same" | "valid"),
  onnx: windowedOnnx("MaxPool"),
});

registerOp({
  op: "avgPool2d",
  run: (node, [x]) => tf.avgPool(x as tf.Tensor4D, node.attrs.poolSize as [number, number], node.attrs.strides as [number, number], node.attrs.padding as "same" | "valid"),
  // Like TF, ONNX leaves the padding out of the average (count_include_pad = 0).
  onnx: windowedOnnx("AveragePool"),
});

registerOp({ op: "globalAvgPool", run: (node, [x]) => tf.mean(x, node.attrs.axes as number[]), onnx: globalOnnx("ReduceMean") });
registerOp({ op: "globalMaxPool", run: (node, [x]) => tf.max(x, node.attrs.axes as number[]), onnx: globalOnnx("ReduceMax") });

function windowedOnnx(opType: string): OnnxLowering {
  return (ctx, node, [x]) => {
    const a = node.attrs as { poolSize: number[]; strides: number[]; padding: "same" | "valid" };
    return { name: ctx.node(opType, [ctx.as(x, "channelsFirst")], spatialAttrs(a, a.poolSize, "pool"), { name: node.name }), layout: "channelsFirst", rank: 4 };
  };
}

/** Reduces the spatial axes of a channels-first tensor: [N, C, ...] to [N, C], which is the same in both layouts. */
function globalOnnx(opType: string): OnnxLowering {
  return (ctx, node, [x]) => {
    const axes = Array.from({ length: x.rank - 2 }, (_, i) => i + 2);
    return { name: ctx.node(opType, [ctx.as(x, "channelsFirst"), ctx.ints(axes)], { keepdims: 0 }, { name: node.name }), layout: "native", rank: 2 };
  };
}

function windowed(op: string) {
  return (call: LayerCall) => {
    channelsLast(call);
    const poolSize = pair(call, "poolSize", 2);
    // Keras: strides default to the pool size.
    const strides = call.config.strides == null ? poolSize : pair(call, "strides");
    return { op, attrs: { poolSize, strides, padding: padding(call) }, params: {} };
  };
}

function global(op: string, axes: number[]) {
  return (call: LayerCall) => {
    channelsLast(call);
    if (call.config.keepDims === true) {
      throw new Error(`layer "${call.name}" (${call.className}): keepDims is not supported`);
    }
    return { op, attrs: { axes }, params: {} };
  };
}

registerLayer({ classNames: ["MaxPooling2D", "MaxPool2D"], lower: windowed("maxPool2d") });
registerLayer({ classNames: ["AveragePooling2D", "AvgPool2D"], lower: windowed("avgPool2d") });
registerLayer({ classNames: ["GlobalAveragePooling2D"], lower: global("globalAvgPool", [1, 2]) });
registerLayer({ classNames: ["GlobalAveragePooling1D"], lower: global("globalAvgPool", [1]) });
registerLayer({ classNames: ["GlobalMaxPooling2D"], lower: global("globalMaxPool", [1, 2]) });
registerLayer({ classNames: ["GlobalMaxPooling1D"], lower: global("globalMaxPool", [1]) });
