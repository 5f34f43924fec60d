import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { channelsLast, pair } from "./config";

/** UpSampling2D: resize by integer factors, nearest or bilinear, as tfjs-layers does. */
registerOp({
  op: "upsample2d",
  run: (node, [x]) => {
    const [sh, sw] = node.attrs.size as [number, number];
    const size: [number, number] = [x.shape[1]! * sh, x.shape[2]! * sw];
    return node.attrs.interpolation === "bilinear"
      ? tf.image.resizeBilinear(x as tf.Tensor4D, size)
      : tf.image.resizeNearestNeighbor(x as tf.Tensor4D, size);
  },
  // tfjs resizes with alignCorners and halfPixelCenters off: ONNX's "asymmetric" coordinates, nearest rounding down.
  onnx: (ctx, node, [x]) => {
    const [sh, sw] = node.attrs.size as [number, number];
    const bilinear = node.attrs.interpolation === "bilinear";
    const attrs = { mode: bilinear ? "linear" : "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: bilinear ? undefined : "floor" };
    const y = ctx.node("Resize", [ctx.as(x, "channelsFirst"), "", ctx.constant([1, 1, sh, sw], [4])], attrs, { name: node.name });
    return { name: y, layout: "channelsFirst", rank: 4 };
  },
});

registerLayer({
  classNames: ["UpSampling2D"],
  lower: (call) => {
    channelsLast(call);
    const interpolation = call.config.interpolation ?? "nearest";
    if (interpolation !== "nearest" && interpolation !== "bilinear") {
      throw new Error(`layer "${call.name}" (UpSampling2D): interpolation "${String(interpolation)}" is not supported`);
    }
    return { op: "upsample2d", attrs: { size: pair(call, "size", 2), interpolation }, params: {} };
  },
});
