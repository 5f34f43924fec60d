import { BackendInfo, useBackend } from "../backend";
import { toDataset } from "../data/dataset";
import { takeExamples } from "../data/take";
import { Dataset, disposeBatch } from "../data/types";
import { MetricName, metricName } from "../eval/metric";
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
  value: ["data", "labels", "w-bits", "a-bits", "w-scheme", "a-scheme", "range-method", "scheme", "percentile", "config", "calib", "batch-size", "backend", "out", "outputs"],
};

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

/** --metric, or by default accuracy when the data has class labels, else agreement with FP32. */
export async function metricFromArgs(args: ParsedArgs, data: Dataset): Promise<MetricName> {
  if (args.flags.has("metric")) return metricName(args.flags.get("metric"));
  for await (const b of data.batches()) {
    const labelled = b.labels !== undefined && b.labels.rank === 1;
    disposeBatch(b);
    return labelled ? "accuracy" : "agreement";
  }
  return "agreement";
}
