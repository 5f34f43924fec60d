import { BackendInfo, useBackend } from "../backend";
import { DatasetOptions, toDataset } from "../data/dataset";
import { takeExamples } from "../data/take";
import { Dataset, disposeBatch } from "../data/types";
import { MetricName, metricName, metricSpec, outputShapes } from "../eval/metric";
import { Graph } from "../graph/graph";
import { loadGraph, LoadGraphOptions } from "../graph/load-model";
import { QuantScheme } from "../quant/encoding";
import { QuantSim } from "../quant/quantsim";
import { QuantSimConfig, RangeMethod, readConfigFile } from "../quant/settings";
import { reportDate } from "../report/reproducible";
import { numberFlag, ParsedArgs } from "./args";
import { checkFlags } from "./flag-rules";
import { OutputSet } from "./output-dir";

/** Quantization options shared by the quantize and analyze commands. */
export const QUANT_FLAGS = {
  boolean: ["per-channel"],
  value: ["data", "labels", "w-bits", "a-bits", "w-scheme", "a-scheme", "range-method", "scheme", "percentile", "config", "calib", "batch-size", "backend", "out", "outputs", "input-range", "mean", "std"],
};

/** How analyze and debug score: the metric, the outputs it scores, PSNR's peak. */
export const SCORE_FLAGS = ["metric", "score-outputs", "peak"] as const;

export function configFromArgs(args: ParsedArgs): QuantSimConfig {
  const base: QuantSimConfig = args.flags.has("config") ? readConfigFile(String(args.flags.get("config"))) : {};
  const weights = { ...base.weights };
  const activations = { ...base.activations };
  if (args.flags.has("w-bits")) weights.bitwidth = numberFlag(args, "w-bits", 8);
  if (args.flags.has("a-bits")) activations.bitwidth = numberFlag(args, "a-bits", 8);
  if (args.flags.has("per-channel")) weights.perChannel = true;
  // Values were checked by checkFlags (flag-rules.ts), and are again with the other settings when the simulation is created.
  if (args.flags.has("w-scheme")) weights.scheme = String(args.flags.get("w-scheme")) as QuantScheme;
  if (args.flags.has("a-scheme")) activations.scheme = String(args.flags.get("a-scheme")) as QuantScheme;
  const rangeMethod = args.flags.get("range-method") ?? args.flags.get("scheme");
  if (rangeMethod !== undefined) activations.rangeMethod = String(rangeMethod) as RangeMethod;
  if (args.flags.has("percentile")) activations.percentile = numberFlag(args, "percentile", 99.99);
  return { ...base, weights, activations };
}

/** `loadGraph`'s options from --outputs (graph models: cut at these TF tensor names). */
export function loadOptionsFromArgs(args: ParsedArgs): LoadGraphOptions {
  const outputs = args.flags.get("outputs");
  return typeof outputs === "string" ? { outputs: outputs.split(",").map((s) => s.trim()) } : {};
}

/** What both commands start from: backend, graph, a checked simulation, the data and its calibration slice. */
export interface QuantRun {
  backend: BackendInfo;
  graph: Graph;
  config: QuantSimConfig;
  uncalibrated: QuantSim;
  data: Dataset;
  calibration: Dataset;
  /** --out as given, for messages. */
  outDir: string;
  /** Where the files go: write into `output.dir`, then `output.commit()`; `output.close()` on every path. */
  output: OutputSet;
}

/**
 * Validates everything that can be checked without the model (required options,
 * every flag's range, SOURCE_DATE_EPOCH, the config file, --out and its lock),
 * then loads the model and data. The caller disposes `graph` and closes `output`.
 */
export async function prepareQuantRun(command: string, args: ParsedArgs, usage: string): Promise<QuantRun> {
  if (args.positionals.length !== 1) throw new Error(`${command} needs one model path\n${usage}`);
  for (const required of ["data", "out"]) if (!args.flags.has(required)) throw new Error(`${command} needs --${required}\n${usage}`);
  checkFlags(args);
  reportDate();
  const config = configFromArgs(args);
  const outDir = String(args.flags.get("out"));
  const output = OutputSet.open(outDir, command);
  try {
    const backend = await useBackend(args.flags.get("backend") as string | undefined);
    const graph = await loadGraph(args.positionals[0], loadOptionsFromArgs(args));
    let uncalibrated: QuantSim | undefined;
    try {
      uncalibrated = QuantSim.create(graph, config);
      const data = toDataset(String(args.flags.get("data")), {
        batchSize: numberFlag(args, "batch-size", 32),
        labels: args.flags.get("labels") as string | undefined,
        inputSpecs: graph.inputSpecs,
        ...inputScalingFromArgs(args),
      });
      const calibration = takeExamples(data, numberFlag(args, "calib", 500));
      return { backend, graph, config, uncalibrated, data, calibration, outDir, output };
    } catch (err) {
      uncalibrated?.dispose();
      graph.dispose();
      throw err;
    }
  } catch (err) {
    output.close();
    throw err;
  }
}

/** --input-range a,b (pixels 0..255 onto [a, b]: images and uint8 .npy), --mean and --std (one value, or one per channel). */
export function inputScalingFromArgs(args: ParsedArgs): Pick<DatasetOptions, "imageRange" | "mean" | "std"> {
  const list = (key: string) => (args.flags.has(key) ? numberList(String(args.flags.get(key))) : undefined);
  const range = list("input-range");
  const mean = list("mean");
  const std = list("std");
  return {
    ...(range ? { imageRange: [range[0], range[1]] as [number, number] } : {}),
    ...(mean ? { mean: mean.length === 1 ? mean[0] : mean } : {}),
    ...(std ? { std: std.length === 1 ? std[0] : std } : {}),
  };
}

/** "0,255" → [0, 255] (checked by checkFlags). */
export function numberList(value: string): number[] {
  return value.split(",").map((v) => Number(v.trim()));
}

/** The scoring options of analyze and debug, from --metric, --score-outputs and --peak. */
export interface ScoringFlags {
  metric: MetricName;
  outputs?: Record<string, number>;
  peak?: number;
}

/**
 * --metric, or by default accuracy when the data has class labels, else agreement
 * when the model's (first) output is a class distribution, else output SQNR.
 * Checked against the model's outputs: agreement on an image output is an error naming it.
 */
export async function metricFromArgs(args: ParsedArgs, data: Dataset, graph?: Graph): Promise<ScoringFlags> {
  const outputs = args.flags.has("score-outputs") ? outputWeightsFlag(String(args.flags.get("score-outputs"))) : undefined;
  const peak = args.flags.has("peak") ? numberFlag(args, "peak", 1) : undefined;
  let metric: MetricName | undefined = args.flags.has("metric") ? metricName(args.flags.get("metric")) : targetMetric(args);
  if (metric === undefined) {
    for await (const b of data.batches()) {
      const labelled = b.labels !== undefined && b.labels.rank === 1;
      disposeBatch(b);
      if (labelled) metric = "accuracy";
      break;
    }
  }
  const resolved = graph ? metricSpec({ metric, outputs, peak }, outputShapes(graph)).metric : (metric ?? "agreement");
  return { metric: resolved, ...(outputs ? { outputs } : {}), ...(peak !== undefined ? { peak } : {}) };
}

/** The metric an absolute target flag names (--min-psnr 40 scores PSNR). */
export function targetMetric(args: ParsedArgs): MetricName | undefined {
  const flag = TARGET_FLAGS.find((f) => args.flags.has(f));
  return flag === undefined || flag === "target" ? undefined : (flag.replace(/^(min|max)-/, "") as MetricName);
}

/** The debug command's target flags: a drop from FP32, or an absolute score. */
export const TARGET_FLAGS = ["target", "min-psnr", "min-sqnr", "min-cosine", "min-agreement", "min-accuracy", "max-mse"] as const;

/** "boxes=2,scores=1" or "boxes,scores" → weights by output name. */
export function outputWeightsFlag(value: string): Record<string, number> {
  return Object.fromEntries(value.split(",").map((part) => {
    const [name, weight] = part.split("=").map((x) => x.trim());
    return [name, weight === undefined ? 1 : Number(weight)];
  }));
}
