import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { LayerCall } from "../types";
import { channelsLast } from "./config";

/** ZeroPadding2D: attrs pads [[top, bottom], [left, right]]. */
registerOp({
  op: "zeroPad2d",
  run: (node, [x]) => {
    const [[t, b], [l, r]] = node.attrs.pads as [[number, number], [number, number]];
    return tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]);
  },
  onnx: (ctx, node, [x]) => {
    const [[t, b], [l, r]] = node.attrs.pads as [[number, number], [number, number]];
    return { name: ctx.node("Pad", [ctx.as(x, "channelsFirst"), ctx.ints([0, 0, t, l, 0, 0, b, r])], {}, { name: node.name }), layout: "channelsFirst", rank: 4 };
  },
});

function pads(call: LayerCall): [[number, number], [number, number]] {
  const v = call.config.padding ?? 1;
  if (typeof v === "number") return [[v, v], [v, v]];
  if (Array.isArray(v) && v.length === 2) {
    const [h, w] = v as unknown[];
    if (typeof h === "number" && typeof w === "number") return [[h, h], [w, w]];
    if (Array.isArray(h) && Array.isArray(w)) return [[Number(h[0]), Number(h[1])], [Number(w[0]), Number(w[1])]];
  }
  throw new Error(`layer "${call.name}" (ZeroPadding2D): padding ${JSON.stringify(v)} is not understood`);
}

registerLayer({
  classNames: ["ZeroPadding2D"],
  lower: (call) => {
    channelsLast(call);
    return { op: "zeroPad2d", attrs: { pads: pads(call) }, params: {} };
  },
});
