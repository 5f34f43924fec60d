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
