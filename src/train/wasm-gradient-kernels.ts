import * as tf from "@tensorflow/tfjs";

/**
 * The wasm backend (tfjs 4.22) has no kernels for the filter gradient of
 * Conv2D, nor for either gradient of DepthwiseConv2dNative, so training
 * (training the example model, AdaRound, QAT) fails there. These kernels
 * compute them from ops wasm does have — strided slices, matMul, mul, sum, pad —
 * one term per kernel tap. Dilations other than 1 and NCHW are refused.
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

/** x padded so that tap (i, j) of output (p, q) reads xp[p*s + i, q*s + j]. */
function padInput(x: tf.Tensor4D, oh: number, ow: number, kh: number, kw: number, s: [number, number], pad: Pad): tf.Tensor4D {
  const [, h, w] = x.shape;
  const top = padBefore(h, oh, kh, s[0], pad);
  const left = padBefore(w, ow, kw, s[1], pad);
  const bottom = Math.max((oh - 1) * s[0] + kh - h - top, 0);
  const right = Math.max((ow - 1) * s[1] + kw - w - left, 0);
  return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
}

/** The input values tap (i, j) meets, one per output position: [n, oh, ow, c]. */
function tap(xp: tf.Tensor4D, i: number, j: number, oh: number, ow: number, s: [number, number]): tf.Tensor4D {
  const [n, , , c] = xp.shape;
  return tf.stridedSlice(xp, [0, i, j, 0], [n, i + (oh - 1) * s[0] + 1, j + (ow - 1) * s[1] + 1, c], [1, s[0], s[1], 1]) as tf.Tensor4D;
}

function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  const { stride, pad } = checkAttrs("Conv2DBackpropFilter", a);
  const [kh, kw, cin, cout] = filterShape;
  const [, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const xp = padInput(x, oh, ow, kh, kw, stride, pad);
    const dy2 = tf.reshape(dy, [-1, cout]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push(tf.matMul(tf.reshape(tap(xp, i, j, oh, ow, stride), [-1, cin]), dy2, true, false));
    return tf.reshape(tf.stack(taps), [kh, kw, cin, cout]);
  });
}

function depthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  const { stride, pad } = checkAttrs("DepthwiseConv2dNativeBackpropFilter", a);
  const [kh, kw, cin, mult] = filterShape;
  const [n, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const xp = padInput(x, oh, ow, kh, kw, stride, pad);
    // dy channel c*mult + m pairs with input channel c.
    const dyc = tf.reshape(dy, [n, oh, ow, cin, mult]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) taps.push(tf.sum(tf.mul(tf.expandDims(tap(xp, i, j, oh, ow, stride), 4), dyc), [0, 1, 2]));
    }
    return tf.reshape(tf.stack(taps), [kh, kw, cin, mult]);
  });
}

function depthwiseInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, inShape: number[], a: ConvAttrs): tf.Tensor {
  const { stride, pad } = checkAttrs("DepthwiseConv2dNativeBackpropInput", a);
  const [n, h, w, cin] = inShape;
  const [kh, kw, , mult] = filter.shape;
  const [, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const top = padBefore(h, oh, kh, stride[0], pad);
    const left = padBefore(w, ow, kw, stride[1], pad);
    const hp = Math.max(h + top, (oh - 1) * stride[0] + kh);
    const wp = Math.max(w + left, (ow - 1) * stride[1] + kw);
    // Spread dy onto the strided grid: zeros between outputs when stride > 1.
    let spread: tf.Tensor = tf.reshape(dy, [n, oh, 1, ow, 1, cin * mult]);
    spread = tf.pad(spread, [[0, 0], [0, 0], [0, stride[0] - 1], [0, 0], [0, stride[1] - 1], [0, 0]]);
    spread = tf.reshape(spread, [n, oh * stride[0], ow * stride[1], cin, mult]);
    spread = tf.slice(spread, [0, 0, 0, 0, 0], [n, (oh - 1) * stride[0] + 1, (ow - 1) * stride[1] + 1, cin, mult]);
    const gh = (oh - 1) * stride[0] + 1;
    const gw = (ow - 1) * stride[1] + 1;
    let acc: tf.Tensor = tf.zeros([n, hp, wp, cin]);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const weight = tf.reshape(tf.slice(filter, [i, j, 0, 0], [1, 1, cin, mult]), [cin, mult]);
        const term = tf.sum(tf.mul(spread, weight), 4);
        acc = tf.add(acc, tf.pad(term, [[0, 0], [i, hp - i - gh], [j, wp - j - gw], [0, 0]]));
      }
    }
    return tf.slice(acc, [0, top, left, 0], [n, h, w, cin]);
  });
}

/** Runs a computation made of tf ops and hands its values to the wasm backend as a fresh output. */
function asWasmOutput(backend: unknown, compute: () => tf.Tensor): tf.TensorInfo {
  const result = tf.tidy(compute);
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
function asTensor<R extends tf.Rank>(info: tf.TensorInfo): tf.Tensor<R> {
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
