/**
 * `qdebug/internals`: the building blocks behind the public calls, for tests,
 * benchmarks and people extending qdebug. Not part of the workflow API in
 * `qdebug` (src/index.ts), and free to change between minor versions.
 */

// Set-up.
export { parseBackendChoice } from "./backend";
export { registerFastBatchNormGradient } from "./train/wasm-gradient-kernels";

// Simulation: encodings and the quantize-dequantize arithmetic.
export { encodingToAimet, encodingFromAimet, quantizeDequantizeValue } from "./quant/encoding";
export { fakeQuantComposed } from "./quant/fake-quant";
export { TensorStats } from "./quant/stats";
export { quantizerArgs } from "./quant/aimet-encodings";

// Scoring.
export { compareWithFp32 } from "./eval/side-by-side";
export type { CompareOptions, SideBySide, Variant } from "./eval/side-by-side";

// The numeric helpers of the fixes.
export { batchNormStatsOf } from "./fix/fold-batch-norm";
export { equalizingScales } from "./fix/cross-layer-equalization";
export { awareScales } from "./fix/activation-aware-cle";
export { kernelTimesInputConstant } from "./fix/kernel-math";
export { clippedNormalMean, inputMeanFromBatchNorm } from "./fix/bias-correction";
export { resolveAdaroundOptions } from "./fix/adaround";
export { normalizeCandidates, candidateLabel } from "./fix/mixed-precision";
export { costModel, costOf, kernelMacs } from "./fix/cost";
export { disposable } from "./fix/fix-result";

// Display plumbing.
export { mimeBundle } from "./display/bundle";
