import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";
import { channelsFirstPerm } from "./onnx-common";

/** Constant padding on any axes (TF's Pad / PadV2): attrs paddings [[before, after], ...] and value. */
registerOp({
  op: "pad",
  run: (node, [x]) => tf.pad(x, node.attrs.paddings as [number, number][], node.attrs.value as number),
  onnx: (ctx, node, [x]) => {
    const paddings = node.attrs.paddings as [number, number][];
    // Padding moves with the axes, so the value stays in whichever layout it is.
    const order = x.layout === "channelsFirst" && x.rank >= 3 ? channelsFirstPerm(x.rank) : paddings.map((_, i) => i);
    const pads = [...order.map((a) => paddings[a][0]), ...order.map((a) => paddings[a][1])];
    const y = ctx.node("Pad", [x.name, ctx.ints(pads), ctx.constant([node.attrs.value as number], [])], { mode: "constant" }, { name: node.name });
    return { ...x, name: y };
  },
});
