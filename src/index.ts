/**
 * qdebug: debug quantized TensorFlow.js models step by step.
 *
 * Layers, bottom up: backend → model graph (import, ops) → runner → data.
 */
export { useBackend, ensureBackend, parseBackendChoice } from "./backend";
export type { BackendChoice, BackendInfo } from "./backend";
export { Graph } from "./graph/graph";
export type { NodeSummary } from "./graph/graph";
export type { GraphNode, Params, Attrs, OpKernel, LayerLowering, LayerCall, Lowered } from "./graph/types";
export { registerOp, registerLayer, supportedLayerClasses } from "./graph/registry";
export { importLayersModel } from "./graph/import-layers";
export { loadGraph, loadLayersModelFromFile } from "./graph/load-model";
export { verifyAgainstModel } from "./graph/verify";
export type { VerifyOptions, VerifyResult } from "./graph/verify";
export { forward } from "./runner/forward";
export type { ForwardOptions, NodeHook, GraphInputs } from "./runner/forward";
export { runDataset } from "./runner/run-dataset";
export type { RunDatasetOptions, RunSummary } from "./runner/run-dataset";
export { terminalProgress } from "./progress";
export type { ProgressEvent, ProgressFn } from "./progress";
export type { Batch, Dataset, InputSpec } from "./data/types";
export { disposeBatch } from "./data/types";
export { toDataset } from "./data/dataset";
export type { DataSource, DatasetOptions } from "./data/dataset";
export { takeExamples } from "./data/take";
export { readNpy, writeNpy } from "./data/npy";

export { QuantSim } from "./quant/quantsim";
export type { QuantizerInfo, FrozenWeight, FixedEncodings } from "./quant/quantsim";
export type { QuantSimConfig, QuantizerSettings, SettingsPatch, RangeMethod } from "./quant/settings";
export { computeEncoding, encodingToAimet, encodingFromAimet, quantizeDequantizeValue } from "./quant/encoding";
export type { Encoding, QuantScheme, AimetEncoding } from "./quant/encoding";
export { fakeQuant, fakeQuantComposed } from "./quant/fake-quant";
export { TensorStats } from "./quant/stats";
export { exportEncodings, writeEncodings, importEncodings } from "./quant/aimet-encodings";
export { fp32SanityCheck } from "./quant/sanity-check";
export type { SanityCheckResult } from "./quant/sanity-check";

export { weightsVsActivations } from "./analysis/weights-vs-activations";
export { sweepEnabled, sweepDisabled } from "./analysis/sweeps";
export type { SweepResult, SweepRow, SweepOptions } from "./analysis/sweeps";
export { layerError } from "./analysis/layer-error";
export { encodingRanges } from "./analysis/ranges";
export { weightChannelStats } from "./analysis/weight-channels";
export { activationHistograms } from "./analysis/histograms";
export { activationAxes } from "./analysis/activation-axes";
export { toCsv, writeResults } from "./analysis/export";
export type { EvaluateFn } from "./analysis/evaluation";
export { compareWithFp32 } from "./eval/side-by-side";
export { registerWasmGradientKernels, registerFastBatchNormGradient } from "./train/wasm-gradient-kernels";

export { show, live, viewOf } from "./display/show";
export type { Showable } from "./display/show";
export { mimeBundle } from "./display/bundle";
export { renderSvg } from "./display/render";
export type { View } from "../widgets/spec";
export { sanityView } from "../widgets/sanity-view";
export { splitView } from "../widgets/split-view";
export { sweepView } from "../widgets/sweep-view";
export { layerErrorView } from "../widgets/layer-error-view";
export { rangesView } from "../widgets/ranges-view";
export { weightChannelsView } from "../widgets/weight-channels-view";
export { histogramView } from "../widgets/histogram-view";
export { activationAxesView } from "../widgets/activation-axes-view";
export { EXAMPLE_MODEL } from "./example";
export { layerExplorerView } from "../widgets/layer-explorer-view";
export { bitwidthView } from "../widgets/bitwidth-view";
export { buildReport } from "./report/report";
export type { ReportSection } from "./report/report";
export { foldBatchNorms } from "./fix/fold-batch-norm";
export { batchNormStatsOf } from "./fix/fold-batch-norm";
export type { FoldResult, BatchNormStats } from "./fix/fold-batch-norm";
export { scoreBeforeAfter } from "./fix/before-after";
export type { BeforeAfter } from "./fix/before-after";
export type { CurvePoint } from "./fix/training-curve";
export { crossLayerEqualization } from "./fix/cross-layer-equalization";
export type { CleResult } from "./fix/cross-layer-equalization";
export { equalizingScales } from "./fix/cross-layer-equalization";
export { exportQuantizedModel } from "./export/tfjs-quantized";
export type { ExportOptions, ExportResult, ExportedWeight } from "./export/tfjs-quantized";
export { debugFlow } from "./flow/debug-flow";
export type { DebugFlowResult } from "./flow/debug-flow";
export type { DebugFlowOptions, FlowRecord, FlowStep, FlowBox } from "./flow/flow-types";
export { flowView, fixStepView } from "../widgets/flow-view";
export { channelRangesView } from "../widgets/channel-ranges-view";
