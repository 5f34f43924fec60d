import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/** TF's DepthToSpace (NHWC): channel blocks become blockSize x blockSize pixels; ONNX's DCR order is TF's. */
registerOp({
  op: "depthToSpace",
  run: (node, [x]) => tf.depthToSpace(x as tf.Tensor4D, node.attrs.blockSize as number, "NHWC"),
  onnx: (ctx, node, [x]) => ({
    name: ctx.node("DepthToSpace", [ctx.as(x, "channelsFirst")], { blocksize: node.attrs.blockSize as number, mode: "DCR" }, { name: node.name }),
    layout: "channelsFirst",
    rank: 4,
  }),
});
