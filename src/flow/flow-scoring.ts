import { resolveMetric } from "../analysis/evaluation";
import { scoreVariants } from "../analysis/score-variants";
import { Dataset } from "../data/types";
import { Graph } from "../graph/graph";
import { QuantSim } from "../quant/quantsim";
import { DebugFlowOptions } from "./flow-types";

/** What every flow step sees: the user's FP32 model, where the flow stands, and how to score. */
export interface FlowContext {
  /** The user's FP32 graph: the reference of built-in metrics, whatever the fixes do to the model. */
  reference: Graph;
  /** The current FP32 graph (after kept graph fixes). */
  graph: Graph;
  /** The current calibrated simulation over `graph`. */
  sim: QuantSim;
  calibration: Dataset;
  options: DebugFlowOptions;
  score: (sim: QuantSim) => Promise<number>;
}

/**
 * One score per simulation: the user's evaluate, or a built-in metric against
 * the user's own FP32 model (not the current graph, which CLE's ReLU6 → ReLU
 * may have changed), so every step of the record is on the same scale.
 * `fp32` marks the FP32 model itself, which an evaluate may score +Infinity
 * (a score against FP32).
 */
export function makeScorer(reference: Graph, options: DebugFlowOptions): (sim: QuantSim, fp32?: boolean) => Promise<number> {
  if (options.evaluate) {
    const evaluate = options.evaluate;
    return async (sim, fp32) => {
      const s = await evaluate(sim);
      if (typeof s !== "number" || !(Number.isFinite(s) || (fp32 && s === Infinity))) {
        const why = s === Infinity ? "; +Infinity is accepted on the FP32 model only" : "";
        throw new Error(`debugFlow: evaluate() returned ${String(s)}${fp32 ? " on the FP32 model" : ""} (expected a finite number${why})`);
      }
      return s;
    };
  }
  const metric = resolveMetric(options, reference);
  return async (sim) => (await scoreVariants(reference, options.data, [{ key: "sim", sim }], { metric, onProgress: options.onProgress, task: "debug flow: scoring" })).get("sim")!;
}
