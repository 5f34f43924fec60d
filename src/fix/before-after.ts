import { EvaluationOptions, MetricInfo, metricInfo, scoreAll } from "../analysis/evaluation";
import { QuantSim } from "../quant/quantsim";

/** A fix's effect on the score: what every fix reports next to its new model or simulation. */
export interface BeforeAfter {
  metric: MetricInfo;
  before: number;
  after: number;
  /** after − before: positive when the fix helped. */
  change: number;
}

/**
 * Scores the simulation before a fix and the one after it, in one pass over the
 * data (built-in metric) or with two calls of the user's `evaluate`. With a
 * built-in metric the FP32 reference is `before`'s graph, so a fix that changes
 * the graph (CLE, bias correction) is judged against the model the user gave.
 */
export async function scoreBeforeAfter(step: string, before: QuantSim, after: QuantSim, options: EvaluationOptions): Promise<BeforeAfter> {
  const scores = await scoreAll(step, [{ key: "before", sim: before }, { key: "after", sim: after }], options);
  const b = scores.get("before")!;
  const a = scores.get("after")!;
  return { metric: metricInfo(options), before: b, after: a, change: a - b };
}
