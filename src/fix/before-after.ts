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

/** The two simulations a fix is judged by. */
export interface BeforeAfterPair {
  before: QuantSim;
  after: QuantSim;
}

export interface BeforeAfterOptions extends EvaluationOptions {
  /** The fix's name, in progress and error messages (default "before/after"). */
  step?: string;
}

/**
 * Scores the simulation before a fix and the one after it, in one pass over the
 * data (built-in metric) or with two calls of the user's `evaluate`. With a
 * built-in metric the FP32 reference is `before`'s graph, so a fix that changes
 * the graph (CLE, bias correction) is judged against the model the user gave.
 *
 *     scoreBeforeAfter({ before, after }, { data, metric: "psnr" })
 *
 * The older form `scoreBeforeAfter(step, before, after, options)` still works.
 */
export async function scoreBeforeAfter(pair: BeforeAfterPair, options: BeforeAfterOptions): Promise<BeforeAfter>;
/** @deprecated use scoreBeforeAfter({ before, after }, { step, ...options }) */
export async function scoreBeforeAfter(step: string, before: QuantSim, after: QuantSim, options: EvaluationOptions): Promise<BeforeAfter>;
export async function scoreBeforeAfter(...args: [BeforeAfterPair, BeforeAfterOptions] | [string, QuantSim, QuantSim, EvaluationOptions]): Promise<BeforeAfter> {
  const [pair, options]: [BeforeAfterPair, BeforeAfterOptions] = typeof args[0] === "string" ? [{ before: args[1] as QuantSim, after: args[2] as QuantSim }, { ...(args[3] as EvaluationOptions), step: args[0] }] : [args[0], args[1] as BeforeAfterOptions];
  if (!pair || !(pair.before instanceof QuantSim) || !(pair.after instanceof QuantSim)) throw new Error("scoreBeforeAfter: give the two simulations as { before, after }");
  if (!options || (options.data === undefined && options.evaluate === undefined)) throw new Error("scoreBeforeAfter: give { data } (with a metric) or { evaluate } as the options");
  const step = options.step ?? "before/after";
  const scores = await scoreAll(step, [{ key: "before", sim: pair.before }, { key: "after", sim: pair.after }], options);
  const b = scores.get("before")!;
  const a = scores.get("after")!;
  return { metric: metricInfo(options, options.evaluate ? undefined : pair.before.graph), before: b, after: a, change: a - b };
}
