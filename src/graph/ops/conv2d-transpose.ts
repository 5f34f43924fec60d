import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/**
 * Transposed convolution (TF's Conv2DBackpropInput): param kernel [kh, kw, out, in]
 * and optional bias [out]; attrs inputSize and outputSize [h, w] (the batch follows the input),
 * strides and padding.
 */
interface Conv2dTransposeAttrs {
  inputSize: [number, number];
  outputSize: [number, number];
  strides: [number, number];
  padding: "same" | "valid";
}

registerOp({
  op: "conv2dTranspose",
  run: (node, [x], p) => {
    const a = node.attrs as unknown as Conv2dTransposeAttrs;
    const outC = p.kernel.shape[2] as number;
    const y = tf.conv2dTranspose(x as tf.Tensor4D, p.kernel as tf.Tensor4D, [x.shape[0], ...a.outputSize, outC], a.strides, a.padding);
    return p.bias ? tf.add(y, p.bias) : y;
  },
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as unknown as Conv2dTransposeAttrs;
    const [kh, kw] = node.params.kernel.shape as number[];
    const [h, w] = node.attrs.inputSize as number[];
    // TF puts the odd pixel of "same" padding at the end, as the forward convolution does.
    const pads = [0, 1].map((i) => {
      const total = Math.max(0, ((i === 0 ? h : w) - 1) * a.strides[i] + [kh, kw][i] - a.outputSize[i]);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    });
    const outputPadding = [0, 1].map((i) => a.outputSize[i] - (((i === 0 ? h : w) - 1) * a.strides[i] + [kh, kw][i] - pads[i][0] - pads[i][1]));
    // [kh, kw, out, in] as ConvTranspose's [in, out, kh, kw].
    const kernel = ctx.param(node, "kernel", (data, shape) => {
      const [r0, r1, o, i] = shape;
      const out = new Float32Array(data.length);
      for (let y = 0; y < r0; y++) for (let x2 = 0; x2 < r1; x2++) for (let oc = 0; oc < o; oc++) for (let ic = 0; ic < i; ic++) {
        out[((ic * o + oc) * r0 + y) * r1 + x2] = data[((y * r1 + x2) * o + oc) * i + ic];
      }
      return { data: out, dims: [i, o, r0, r1] };
    });
    const ins = [ctx.as(x, "channelsFirst"), kernel];
    if (node.params.bias) ins.push(ctx.param(node, "bias"));
    const attrs = { kernel_shape: [kh, kw], strides: a.strides, pads: [pads[0][0], pads[1][0], pads[0][1], pads[1][1]], output_padding: outputPadding };
    return { name: ctx.node("ConvTranspose", ins, attrs, { name: node.name }), layout: "channelsFirst", rank: 4 };
  },
});
