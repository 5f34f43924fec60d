import { scoreVariants } from "../analysis/score-variants";
import { Dataset } from "../data/types";
import { metricName } from "../eval/metric";
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
 */
export function makeScorer(reference: Graph, options: DebugFlowOptions): (sim: QuantSim) => Promise<number> {
  if (options.evaluate) {
    const evaluate = options.evaluate;
    return async (sim) => {
      const s = await evaluate(sim);
      if (typeof s !== "number" || !Number.isFinite(s)) throw new Error(`debugFlow: evaluate() returned ${String(s)} (expected a finite number)`);
      return s;
    };
  }
  const metric = metricName(options.metric ?? "agreement");
  return async (sim) => (await scoreVariants(reference, options.data, [{ key: "sim", sim }], { metric, onProgress: options.onProgress, task: "debug flow: scoring" })).get("sim")!;
}
