import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/**
 * Resizes the spatial axes of an NHWC tensor to a fixed `size` (TF's
 * ResizeBilinear / ResizeNearestNeighbor), with TF's alignCorners and
 * halfPixelCenters coordinate rules.
 */
interface ResizeAttrs {
  method: "bilinear" | "nearest";
  size: [number, number];
  alignCorners: boolean;
  halfPixelCenters: boolean;
}

registerOp({
  op: "resize",
  run: (node, [x]) => {
    const a = node.attrs as unknown as ResizeAttrs;
    return a.method === "bilinear"
      ? tf.image.resizeBilinear(x as tf.Tensor4D, a.size, a.alignCorners, a.halfPixelCenters)
      : tf.image.resizeNearestNeighbor(x as tf.Tensor4D, a.size, a.alignCorners, a.halfPixelCenters);
  },
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as unknown as ResizeAttrs;
    const cf = ctx.as(x, "channelsFirst");
    // Sizes rather than scales, so ONNX Runtime maps coordinates with the exact in/out ratio as TF does.
    const batchAndChannels = ctx.node("Slice", [ctx.node("Shape", [cf]), ctx.ints([0]), ctx.ints([2])]);
    const sizes = ctx.node("Concat", [batchAndChannels, ctx.ints(a.size)], { axis: 0 });
    const mode = a.alignCorners ? "align_corners" : a.halfPixelCenters ? (a.method === "bilinear" ? "half_pixel" : "tf_half_pixel_for_nn") : "asymmetric";
    const attrs = {
      mode: a.method === "bilinear" ? "linear" : "nearest",
      coordinate_transformation_mode: mode,
      nearest_mode: a.method === "nearest" ? (a.alignCorners ? "round_prefer_ceil" : "floor") : undefined,
    };
    return { name: ctx.node("Resize", [cf, "", "", sizes], attrs, { name: node.name }), layout: "channelsFirst", rank: 4 };
  },
});
