/**
 * qdebug: debug quantized TensorFlow.js models step by step.
 *
 * The exports follow the pipeline, the guidebook's flow chart:
 *
 *     model.json, tf.LayersModel, graph model
 *       │ 1. load          loadGraph
 *       ▼
 *     Graph ─────────────────────────────────────────────┐
 *       │ 2. simulate      QuantSim.create(graph).calibrate({ data })
 *       ▼                                                │
 *     QuantSim ──► 3. analyze: score, fp32SanityCheck,   │ 4. fix the graph: foldBatchNorms,
 *       │             weightsVsActivations, sweeps,      │    crossLayerEqualization,
 *       │             layerError, ranges, histograms …   │    highBiasAbsorption
 *       │ 4. fix the simulation: biasCorrection, adaround, mixedPrecision, qat, sim.with(…)
 *       │ 5. guided: debugFlow runs 2–4 until the drop is within a target
 *       ▼
 *     6. export: exportQuantizedModel (TF.js), exportGraphModel (TF.js graph model), exportOnnxModel, writeEncodings (AIMET)
 *     7. show: every result carries a `step`; show(result) draws its view (widgets/)
 *
 * Every analysis and fix is `fn(subject, { data, ... })`; results carry `step`
 * and `diagnosis`, and a result that holds a new graph or simulation frees it
 * with `dispose()`. Building blocks that are not part of this workflow (the
 * numeric helpers behind the fixes) are in `qdebug/internals`.
 */

// 0. Set-up: where tensors run.
export { useBackend, ensureBackend } from "./backend";
export type { BackendChoice, BackendInfo } from "./backend";
export { useEngine, activeEngine } from "./engine/engine";
export type { EngineChoice, EngineInfo } from "./engine/engine";
export { registerWasmGradientKernels } from "./train/wasm-gradient-kernels";
export { terminalProgress } from "./progress";
export type { ProgressEvent, ProgressFn } from "./progress";

// 1. Load: a model becomes an explicit graph (and runs).
export { EXAMPLE_MODEL } from "./example";
export { TEXT_ENCODER_MODEL, TEXT_ENCODER_EVAL } from "./text-encoder";
export { loadGraph, loadLayersModelFromFile } from "./graph/load-model";
export { importLayersModel } from "./graph/import-layers";
// TF.js graph models (tfjs-converter's format): loadGraph detects them; these read, import and check them directly.
export { loadGraphModelFromFile } from "./graph/load-model";
export type { LoadGraphOptions } from "./graph/load-model";
export { importGraphModel } from "./graph/tf-graph/import-graph-model";
export type { GraphModelImportOptions } from "./graph/tf-graph/import-graph-model";
export { verifyAgainstGraphModel } from "./engine/verify-graph-model";
export type { GraphModelVerifyOptions, GraphModelVerifyResult } from "./engine/verify-graph-model";
export { registerTfOp, supportedTfOps } from "./graph/tf-graph/lowering";
export { Graph } from "./graph/graph";
export type { NodeSummary } from "./graph/graph";
export type { GraphNode, Params, Attrs, OpKernel, LayerLowering, LayerCall, Lowered } from "./graph/types";
export { registerOp, registerLayer, supportedLayerClasses } from "./graph/registry";
export { forward } from "./graph/forward";
export type { ForwardOptions, NodeHook, GraphInputs } from "./graph/forward";
export { runDataset } from "./runner/run-dataset";
export type { RunDatasetOptions, RunSummary } from "./runner/run-dataset";
export { verifyAgainstModel } from "./runner/verify";
export type { VerifyOptions, VerifyResult } from "./runner/verify";

// Data: what every call's `data` option takes.
export { toDataset } from "./data/dataset";
export type { DataSource, DatasetOptions } from "./data/dataset";
export type { Batch, Dataset, InputSpec } from "./data/types";
export { disposeBatch } from "./data/types";
export { takeExamples } from "./data/take";
export { readNpy, writeNpy } from "./data/npy";

// 2. Simulate: quantizers, encodings, calibration.
export { QuantSim } from "./quant/quantsim";
export type { QuantizerInfo, FrozenWeight, FixedEncodings } from "./quant/quantsim";
export type { QuantSimConfig, QuantizerSettings, SettingsPatch, RangeMethod } from "./quant/settings";
export { computeEncoding } from "./quant/encoding";
export type { Encoding, QuantScheme, AimetEncoding } from "./quant/encoding";
export { fakeQuant } from "./quant/fake-quant";
export { exportEncodings, writeEncodings, importEncodings } from "./quant/aimet-encodings";
export type { AimetEncodingsFile, AimetQuantizerArgs } from "./quant/aimet-encodings";

// 3. Analyze: scores and findings, plain JSON with `step` and `diagnosis`.
export { score } from "./analysis/score";
export type { ScoreOptions, ScoreResult } from "./analysis/score";
export type { EvaluateFn, EvaluationOptions, MetricInfo } from "./analysis/evaluation";
export type { MetricName, ScoreKind, OutputSelection, OutputScore } from "./eval/metric";
export { compareImages } from "./analysis/image-comparison";
export type { ImageComparisonOptions, ImageComparisonResult, ImagePanel } from "./analysis/image-comparison";
export { fp32SanityCheck } from "./quant/sanity-check";
export type { SanityCheckResult, SanityCheckOptions } from "./quant/sanity-check";
export { weightsVsActivations } from "./analysis/weights-vs-activations";
export { sweepEnabled, sweepDisabled } from "./analysis/sweeps";
export type { SweepResult, SweepRow, SweepOptions } from "./analysis/sweeps";
export { layerError } from "./analysis/layer-error";
export { encodingRanges } from "./analysis/ranges";
export { weightChannelStats } from "./analysis/weight-channels";
export { activationHistograms } from "./analysis/histograms";
export { activationAxes } from "./analysis/activation-axes";
export { outlierDimensions, sequenceRole } from "./analysis/outlier-dimensions";
export type { OutlierDimensionsResult, OutlierDimensionsOptions, EmbeddingRange, TokenDimensionCell, SequenceNodeSummary, SequenceRole } from "./analysis/outlier-dimensions";
export { outlierFixes } from "./analysis/outlier-fixes";
export type { OutlierFixesResult, OutlierFixesOptions, OutlierFixRow } from "./analysis/outlier-fixes";
export { meanShifts } from "./fix/bias-correction";
export type { MeanShiftRow, MeanShiftsResult } from "./fix/bias-correction";
export { modelCost } from "./fix/cost";
export type { ModelCost, ModelCostResult, LayerCost, CostModel } from "./fix/cost";
export { toCsv, writeResults } from "./analysis/export";

// 4. Fix: each returns a result with a new graph or simulation, `step`, `diagnosis` and `dispose()`.
export type { FixResult } from "./fix/fix-result";
export { scoreBeforeAfter } from "./fix/before-after";
export type { BeforeAfter, BeforeAfterPair, BeforeAfterOptions } from "./fix/before-after";
export type { CurvePoint } from "./fix/training-curve";
export { foldBatchNorms } from "./fix/fold-batch-norm";
export type { FoldResult, BatchNormStats } from "./fix/fold-batch-norm";
export { crossLayerEqualization } from "./fix/cross-layer-equalization";
export type { CleResult, CleResult as CrossLayerEqualizationResult } from "./fix/cross-layer-equalization";
export { activationAwareCle } from "./fix/activation-aware-cle";
export type { ActivationAwareCleOptions, ActivationAwareCleResult, ActivationChannelRanges, AwareRelu6Mode } from "./fix/activation-aware-cle";
export { highBiasAbsorption } from "./fix/high-bias-absorption";
export type { HighBiasResult, AbsorbedPair } from "./fix/high-bias-absorption";
export { biasCorrection } from "./fix/bias-correction";
export type { BiasCorrectionOptions, BiasCorrectionResult, CorrectedLayer, BiasCorrectionMethod, EmpiricalSchedule } from "./fix/bias-correction";
export { adaround } from "./fix/adaround";
export type { AdaroundOptions, AdaroundResult, AdaroundLayerRow, AdaroundSkip, ResolvedAdaroundOptions, AdaroundInputs } from "./fix/adaround";
export { mixedPrecision } from "./fix/mixed-precision";
export type { MixedPrecisionOptions, MixedPrecisionResult, MixedPrecisionStep, MixedPrecisionLayer, ParetoPoint, Candidate } from "./fix/mixed-precision";
export { qat } from "./fix/qat";
export type { QatOptions, QatResult, QatLoss, LearnedRangeRow } from "./fix/qat";

// 5. Guided: the whole flow chart as one run.
export { debugFlow } from "./flow/debug-flow";
export type { DebugFlowResult } from "./flow/debug-flow";
export type { DebugFlowOptions, FlowRecord, FlowStep, FlowBox, FlowTarget } from "./flow/flow-types";

// 6. Export: the fixed model and its encodings.
export { exportQuantizedModel } from "./export/tfjs-quantized";
export type { ExportOptions, ExportResult, ExportedWeight } from "./export/tfjs-quantized";
export { exportOnnxModel } from "./export/onnx-model";
export { exportGraphModel } from "./export/graph-model";
export type { GraphModelExportResult, ExportedGraphWeight } from "./export/graph-model";
// tfjs-converter's --quantize_uint8/uint16/float16 weight storage, simulated weight by weight.
export { converterQuantize, simulateConverter, converterFlags, resolvePreset, graphWeights } from "./quant/converter-preset";
export type { ConverterDtype, ConverterPreset, ConverterWeight, ConverterSimulation, GraphWeight } from "./quant/converter-preset";
export type { OnnxExportResult } from "./export/onnx-model";

// 7. Show: results drawn as Vega-Lite views, in a notebook, a file or a report.
export { show, live, viewOf, flowStepView } from "./display/show";
export type { Showable } from "./display/show";
export { renderSvg } from "./display/render";
export { buildReport } from "./report/report";
export type { ReportSection } from "./report/report";
export type { View } from "../widgets/spec";
export { sanityView } from "../widgets/sanity-view";
export { splitView } from "../widgets/split-view";
export { sweepView } from "../widgets/sweep-view";
export { imageComparisonView } from "../widgets/image-comparison-view";
export { layerErrorView } from "../widgets/layer-error-view";
export { rangesView } from "../widgets/ranges-view";
export { weightChannelsView } from "../widgets/weight-channels-view";
export { histogramView } from "../widgets/histogram-view";
export { activationAxesView } from "../widgets/activation-axes-view";
export { outlierDimensionsView } from "../widgets/outlier-dimensions-view";
export { outlierFixesView } from "../widgets/outlier-fixes-view";
export { layerExplorerView } from "../widgets/layer-explorer-view";
export { bitwidthView } from "../widgets/bitwidth-view";
export { flowView, fixStepView } from "../widgets/flow-view";
export { channelRangesView } from "../widgets/channel-ranges-view";
export { trainingCurveView } from "../widgets/training-curve-view";
export type { TrainingCurveViewOptions } from "../widgets/training-curve-view";
export { paretoView, mixedPrecisionTableView } from "../widgets/pareto-view";
export { beforeAfterView } from "../widgets/before-after-view";
export { scoreView } from "../widgets/score-view";
export { foldView } from "../widgets/fold-view";
export { cleView } from "../widgets/cle-view";
export { highBiasView } from "../widgets/high-bias-view";
export { biasCorrectionView, meanShiftsView } from "../widgets/bias-correction-view";
export { adaroundView } from "../widgets/adaround-view";
export { rangeSettingView, raisedQuantizersView } from "../widgets/range-setting-view";
export { registerView, registeredViews } from "../widgets/registry";
export { analysisReport, analysisSummary, analysisSections } from "./report/analysis-report";
export type { AnalysisResults } from "./report/analysis-report";
export { flowReport, flowSummary, flowSections } from "./report/flow-report";
export type { ReportSummary, ReportTable } from "./report/report";
export { notebookPage, checkNotebook } from "./report/notebook-page";
export type { Notebook, NotebookCell, NotebookOutput } from "./report/notebook-page";
export { activationAwareCleView } from "../widgets/activation-aware-cle-view";
