import * as tf from "@tensorflow/tfjs";

/**
 * The wasm backend (tfjs 4.22) has no kernels for the filter gradient of
 * Conv2D, nor for either gradient of DepthwiseConv2dNative, so training
 * (training the example model, AdaRound, QAT) fails there. These kernels
 * compute each gradient as (at most) one convolution wasm does have, with
 * XNNPACK underneath, plus transposes/reshapes around it:
 *
 * - depthwise input gradient: a stride-1 depthwise convolution of dy, spread
 *   onto the input grid, with the spatially reversed filter ("full" padding);
 * - depthwise filter gradient: a depthwise convolution whose "image" is x with
 *   (channel, example) pairs as channels and whose "filter" is dy, dilated by
 *   the stride; its kh×kw output positions are the filter taps;
 * - conv filter gradient: the same with a regular convolution (input channels
 *   as the batch, examples as the channels summed over); 1×1 is one matMul.
 *
 * (The first version summed one strided-slice term per kernel tap; a stride-2
 * depthwise input gradient took ~100× longer.) Dilations other than 1, explicit
 * padding and NCHW are refused.
 */
type Pad = "same" | "valid";
interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad | number;
  dilations?: number | [number, number];
  dataFormat?: string;
}

const pairOf = (v: number | [number, number] | undefined): [number, number] => (v === undefined ? [1, 1] : typeof v === "number" ? [v, v] : v);

function checkAttrs(kernel: string, a: ConvAttrs): { stride: [number, number]; pad: Pad } {
  const [dh, dw] = pairOf(a.dilations);
  if (dh !== 1 || dw !== 1) throw new Error(`${kernel} on wasm: dilations other than 1 are not supported`);
  if (a.dataFormat !== undefined && a.dataFormat !== "NHWC" && a.dataFormat !== "channelsLast") throw new Error(`${kernel} on wasm: only NHWC is supported`);
  if (a.pad !== "same" && a.pad !== "valid") throw new Error(`${kernel} on wasm: explicit padding is not supported`);
  return { stride: pairOf(a.strides), pad: a.pad };
}

/** Leading padding per spatial axis for TF's "same"/"valid" rules. */
function padBefore(inSize: number, outSize: number, k: number, s: number, pad: Pad): number {
  if (pad === "valid") return 0;
  return Math.floor(Math.max((outSize - 1) * s + k - inSize, 0) / 2);
}

/** Spatial padding [[top, bottom], [left, right]] for a convolution; negative amounts mean rows/columns to drop. */
type Pads = [[number, number], [number, number]];

/**
 * Applies `pads` to the spatial axes of `t` [n, h, w, c]: drops the rows and
 * columns of negative amounts (a slice) and returns the remaining, non-negative
 * padding as the explicit padding of a convolution, so no padded copy is made.
 */
function cropForConv(t: tf.Tensor4D, pads: Pads): [tf.Tensor4D, [[0, 0], [number, number], [number, number], [0, 0]]] {
  const [n, h, w, c] = t.shape;
  const [[top, bottom], [left, right]] = pads;
  const ct = Math.max(-top, 0), cb = Math.max(-bottom, 0), cl = Math.max(-left, 0), cr = Math.max(-right, 0);
  const cropped = ct || cb || cl || cr ? tf.slice(t, [0, ct, cl, 0], [n, h - ct - cb, w - cl - cr, c]) : t;
  return [cropped, [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]]];
}

/**
 * Padding of x such that output (p, q), tap (i, j) reads row p*s + i, column
 * q*s + j, and nothing is left after the last tap of the last output
 * ("valid" can leave input rows no output reads: negative amounts).
 */
function inputPads(x: number[], oh: number, ow: number, kh: number, kw: number, s: [number, number], pad: Pad): Pads {
  const [, h, w] = x;
  const top = padBefore(h, oh, kh, s[0], pad);
  const left = padBefore(w, ow, kw, s[1], pad);
  return [[top, (oh - 1) * s[0] + kh - h - top], [left, (ow - 1) * s[1] + kw - w - left]];
}

/** dy [n, oh, ow, c] spread onto the stride grid: [n, (oh-1)*sh+1, (ow-1)*sw+1, c], sh-1 zero rows (sw-1 columns) between outputs. */
function spread(dy: tf.Tensor4D, s: [number, number]): tf.Tensor4D {
  if (s[0] === 1 && s[1] === 1) return dy;
  const [n, oh, ow, c] = dy.shape;
  let t: tf.Tensor = tf.reshape(dy, [n, oh, 1, ow, 1, c]);
  t = tf.pad(t, [[0, 0], [0, 0], [0, s[0] - 1], [0, 0], [0, s[1] - 1], [0, 0]]);
  t = tf.reshape(t, [n, oh * s[0], ow * s[1], c]);
  return tf.slice(t, [0, 0, 0, 0], [n, (oh - 1) * s[0] + 1, (ow - 1) * s[1] + 1, c]) as tf.Tensor4D;
}

/**
 * dfilter[i, j, a, b] = Σ_{n,p,q} x[n, p*s + i - top, q*s + j - left, a] · dy[n, p, q, b]:
 * a convolution of x, with its input channels as the batch and its examples as
 * the channels (summed over), by dy as the filter ([oh, ow, n, cout]) dilated by
 * the stride; the kh×kw outputs are the taps. 1×1 without padding: one matMul.
 */
function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  const { stride, pad } = checkAttrs("Conv2DBackpropFilter", a);
  const [kh, kw, cin, cout] = filterShape;
  const [n, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const pads = inputPads(x.shape, oh, ow, kh, kw, stride, pad);
    if (kh === 1 && kw === 1 && pads[0][0] === 0 && pads[1][0] === 0) {
      // No padding: output (p, q) reads x[p*s, q*s] (and oh = ⌈h/s⌉ for "same" and "valid" alike).
      const xs = stride[0] === 1 && stride[1] === 1 ? x : tf.stridedSlice(x, [0, 0, 0, 0], [n, (oh - 1) * stride[0] + 1, (ow - 1) * stride[1] + 1, cin], [1, stride[0], stride[1], 1]);
      const rows = tf.reshape(xs, [-1, cin]);
      // An explicit transpose: wasm's matMul with transposeA takes a slow path (~10x).
      return tf.reshape(tf.matMul(tf.transpose(rows), tf.reshape(dy, [-1, cout])), [1, 1, cin, cout]);
    }
    const [xt, padding] = cropForConv(tf.transpose(x, [3, 1, 2, 0]), pads); // [cin, h, w, n]
    const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [oh, ow, n, cout]
    const g = tf.conv2d(xt, f, 1, padding, "NHWC", stride); // [cin, kh, kw, cout]
    return tf.transpose(g, [1, 2, 0, 3]);
  });
}

/**
 * dfilter[i, j, c, m] = Σ_{n,p,q} x[n, p*s + i - top, q*s + j - left, c] · dy[n, p, q, c*mult + m]:
 * a depthwise convolution of x seen as one image with channels (c, n), by dy
 * as the filter ([oh, ow, c*n, mult]) dilated by the stride, summed over n.
 */
function depthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  const { stride, pad } = checkAttrs("DepthwiseConv2dNativeBackpropFilter", a);
  const [kh, kw, cin, mult] = filterShape;
  const [n, oh, ow] = dy.shape;
  const [, h, w] = x.shape;
  return tf.tidy(() => {
    const pads = inputPads(x.shape, oh, ow, kh, kw, stride, pad);
    const image = tf.reshape(tf.transpose(x, [1, 2, 3, 0]), [1, h, w, cin * n]) as tf.Tensor4D;
    const [xt, padding] = cropForConv(image, pads);
    const f = tf.reshape(tf.transpose(tf.reshape(dy, [n, oh, ow, cin, mult]), [1, 2, 3, 0, 4]), [oh, ow, cin * n, mult]) as tf.Tensor4D;
    const g = tf.depthwiseConv2d(xt, f, 1, padding, "NHWC", stride); // [1, kh, kw, cin*n*mult]
    return tf.sum(tf.reshape(g, [kh, kw, cin, n, mult]), 3);
  });
}

/**
 * dx = the stride-1 depthwise convolution of dy spread onto the input grid,
 * padded "full" (kh-1-top before, the rest after), by the filter reversed in
 * space, its output channel c*mult + m summed over m.
 */
function depthwiseInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, inShape: number[], a: ConvAttrs): tf.Tensor {
  const { stride, pad } = checkAttrs("DepthwiseConv2dNativeBackpropInput", a);
  const [n, h, w, cin] = inShape;
  const [kh, kw, , mult] = filter.shape;
  const [, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const top = kh - 1 - padBefore(h, oh, kh, stride[0], pad);
    const left = kw - 1 - padBefore(w, ow, kw, stride[1], pad);
    const grid = spread(dy, stride);
    const [, gh, gw] = grid.shape;
    const [g, padding] = cropForConv(grid, [[top, h + kh - 1 - gh - top], [left, w + kw - 1 - gw - left]]);
    const f = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, cin * mult, 1]) as tf.Tensor4D;
    const dx = tf.depthwiseConv2d(g, f, 1, padding); // [n, h, w, cin*mult]
    return mult === 1 ? dx : tf.sum(tf.reshape(dx, [n, h, w, cin, mult]), 4);
  });
}

/**
 * Runs a computation made of tf ops (on the wasm backend, the one running the
 * kernel) and hands its result over as the kernel's output without a copy: one
 * more reference on its data, then the tensor is disposed.
 */
function asWasmOutput(backend: unknown, compute: () => tf.Tensor): tf.TensorInfo {
  const result = tf.tidy(compute);
  if (tf.engine().backend === backend) {
    (backend as tf.KernelBackend).incRef(result.dataId);
    const out: tf.TensorInfo = { dataId: result.dataId, shape: result.shape, dtype: result.dtype };
    result.dispose();
    return out;
  }
  const wasm = backend as unknown as { makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo; typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
  const out = wasm.makeOutput(result.shape, "float32");
  wasm.typedArrayFromHeap(out).set(result.dataSync() as Float32Array);
  result.dispose();
  return out;
}

/**
 * A tensor viewing a kernel input. The engine's wrapper does not count a
 * reference on the backend, so count one here: disposing the view (at the end
 * of the tidy) must not free the caller's data.
 */
export function asTensor<R extends tf.Rank>(info: tf.TensorInfo): tf.Tensor<R> {
  const t = tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
  tf.engine().backend.incRef(info.dataId);
  return t;
}

let registered = false;

/** Registers the three kernels on the wasm backend (once); other backends are untouched. */
export function registerWasmGradientKernels(): void {
  if (registered || !tf.getKernelsForBackend("wasm").length) return;
  registered = true;
  const have = new Set(tf.getKernelsForBackend("wasm").map((k) => k.kernelName));
  const kernels: [string, tf.KernelFunc][] = [
    ["Conv2DBackpropFilter", ({ inputs, attrs, backend }) =>
      asWasmOutput(backend, () => conv2dFilterGrad(asTensor<tf.Rank.R4>(inputs.x as tf.TensorInfo), asTensor<tf.Rank.R4>(inputs.dy as tf.TensorInfo), attrs!.filterShape as number[], attrs as unknown as ConvAttrs))],
    ["DepthwiseConv2dNativeBackpropFilter", ({ inputs, attrs, backend }) =>
      asWasmOutput(backend, () => depthwiseFilterGrad(asTensor<tf.Rank.R4>(inputs.x as tf.TensorInfo), asTensor<tf.Rank.R4>(inputs.dy as tf.TensorInfo), attrs!.filterShape as number[], attrs as unknown as ConvAttrs))],
    ["DepthwiseConv2dNativeBackpropInput", ({ inputs, attrs, backend }) =>
      asWasmOutput(backend, () => depthwiseInputGrad(asTensor<tf.Rank.R4>(inputs.dy as tf.TensorInfo), asTensor<tf.Rank.R4>(inputs.filter as tf.TensorInfo), attrs!.inputShape as number[], attrs as unknown as ConvAttrs))],
  ];
  for (const [kernelName, kernelFunc] of kernels) if (!have.has(kernelName)) tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
}

let batchNormGradient = false;

/**
 * A faster gradient for tf.batchNorm when mean, variance, offset and scale are
 * per-channel vectors on the last axis (how BatchNormalization trains): tfjs's
 * own tiles every per-channel term to the full input shape first, which made it
 * ~70 ms for a 64x14x14x48 batch on wasm, 15 BatchNorms taking most of a
 * training step. Other shapes fall back to the original gradient.
 */
export function registerFastBatchNormGradient(): void {
  if (batchNormGradient) return;
  batchNormGradient = true;
  const original = tf.getGradient("FusedBatchNorm")!;
  tf.registerGradient({
    kernelName: "FusedBatchNorm",
    inputsToSave: original.inputsToSave,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved;
      const channels = x.shape[x.rank - 1];
      const perChannel = (t: tf.Tensor | undefined) => t === undefined || (t.rank === 1 && t.shape[0] === channels);
      if (!perChannel(mean) || !perChannel(variance) || !perChannel(scale)) return original.gradFunc(dy, saved, attrs);
      const g = dy as tf.Tensor;
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      const epsilon = (attrs as { varianceEpsilon: number }).varianceEpsilon;
      const inv = () => tf.rsqrt(tf.add(variance, epsilon));
      const gamma = () => (scale ?? tf.onesLike(mean));
      const centered = () => tf.sub(x, mean);
      const grads: Record<string, () => tf.Tensor> = {
        x: () => tf.mul(g, tf.mul(gamma(), inv())),
        mean: () => tf.neg(tf.mul(tf.sum(g, axes), tf.mul(gamma(), inv()))),
        variance: () => tf.mul(tf.sum(tf.mul(g, centered()), axes), tf.mul(tf.mul(gamma(), -0.5), tf.pow(inv(), 3))),
        offset: () => tf.sum(g, axes),
      };
      if (scale !== undefined) grads.scale = () => tf.sum(tf.mul(tf.mul(g, centered()), inv()), axes);
      return grads;
    },
  });
}
