import { metricInfo } from "../analysis/evaluation";
import { allBypassed } from "../analysis/variants";
import { weightsVsActivations } from "../analysis/weights-vs-activations";
import { Graph } from "../graph/graph";
import { loadGraph } from "../graph/load-model";
import { QuantSim } from "../quant/quantsim";
import { fp32SanityCheck } from "../quant/sanity-check";
import { ACTIVATION_FIXES, FlowFix, LAST_RESORT_FIXES, WEIGHT_FIXES } from "./flow-fixes";
import { FlowContext, makeScorer } from "./flow-scoring";
import { DebugFlowOptions, FlowBox, FlowRecord, FlowStep } from "./flow-types";

/** What `debugFlow` returns: the JSON record, and the model and simulation it ended with (the caller disposes them). */
export interface DebugFlowResult {
  record: FlowRecord;
  /** The final FP32 graph (the input graph itself when no fix changed it). */
  graph: Graph;
  /** The final calibrated simulation over `graph`. */
  sim: QuantSim;
  /** Frees the final simulation, and the graph when the flow made it (or loaded it from a path). */
  dispose(): void;
}

/**
 * The guidebook's flow chart as one guided run: FP32 sanity check → quantized
 * baseline → weights vs activations → the fixes for the guilty side (weights:
 * BatchNorm folding, CLE, high-bias absorption, bias correction, per-channel,
 * AdaRound; activations: range setting) → per-layer analysis and fixing the most
 * sensitive quantizers → QAT. Each step is scored; a fix is kept only if it
 * raises the score (folding is kept always: runtimes fold). The flow stops as
 * soon as the drop from FP32 is within `target`, and records every step.
 */
export async function debugFlow(model: Graph | string, options: DebugFlowOptions): Promise<DebugFlowResult> {
  if (!(options.target >= 0)) throw new Error(`debugFlow: target must be the largest acceptable drop from FP32, a number ≥ 0 (got ${options.target})`);
  const reference = typeof model === "string" ? await loadGraph(model) : model;
  const ownsReference = typeof model === "string";
  const calibration = options.calibration ?? options.data;
  const score = makeScorer(reference, options);
  const ctx: FlowContext = { reference, graph: reference, sim: await QuantSim.create(reference, options.config ?? {}).calibrate(calibration, { onProgress: options.onProgress }), calibration, options, score };
  const fp32Sim = allBypassed(ctx.sim);
  const fp32 = await score(fp32Sim);
  fp32Sim.dispose();
  const target = fp32 - options.target;
  const record: FlowRecord = {
    step: "debug-flow",
    model: reference.name,
    metric: metricInfo(options),
    fp32,
    allowedDrop: options.target,
    target,
    met: false,
    steps: [],
    final: { score: NaN, drop: NaN, config: options.config ?? {}, overrides: [], graphChanges: [] },
    diagnosis: "",
  };
  let current = NaN;
  const push = async (box: FlowBox, title: string, kind: FlowStep["kind"], s: number, kept: boolean, finding: string, result: unknown, started: number, skipped = false) => {
    const before = current;
    if (kept) current = s;
    const step: FlowStep = { index: record.steps.length + 1, box, title, kind, score: s, drop: fp32 - s, before, fp32, target, kept, skipped, met: current >= target, finding, result, seconds: (Date.now() - started) / 1000 };
    record.steps.push(step);
    record.met = step.met;
    await options.onStep?.(step, record);
  };

  try {
    // 1. FP32 sanity check: if 32-bit quantizers do not reproduce FP32, nothing after it can be trusted.
    let t = Date.now();
    const sanity = await fp32SanityCheck(ctx.sim, { data: calibration, onProgress: options.onProgress });
    await push("fp32-sanity-check", "FP32 sanity check", "analysis", fp32, true, sanity.diagnosis, sanity, t);
    if (!sanity.pass) return finish("The simulation does not reproduce FP32 at 32 bits: fix the pipeline (custom layers, data) before debugging quantization.");

    t = Date.now();
    const baseline = await score(ctx.sim);
    await push("quantized-baseline", "Quantized baseline", "analysis", baseline, true, `Quantized as configured, the score is ${fmt(baseline)} against FP32 ${fmt(fp32)} (drop ${fmt(fp32 - baseline)}; allowed ${fmt(options.target)}).`, { fp32, quantized: baseline }, t);
    if (current >= target) return finish("The quantized model already meets the target: nothing to fix.");

    t = Date.now();
    const split = await weightsVsActivations(ctx.sim, { data: options.data, metric: options.metric, evaluate: options.evaluate, onProgress: options.onProgress });
    await push("weights-vs-activations", "Weights vs activations", "analysis", current, true, split.diagnosis, split, t);

    const order: FlowFix[] = split.culprit === "activations" ? [...ACTIVATION_FIXES, ...WEIGHT_FIXES] : [...WEIGHT_FIXES, ...ACTIVATION_FIXES];
    for (const fix of [...order, ...LAST_RESORT_FIXES]) {
      if (current >= target) break;
      t = Date.now();
      const outcome = await fix.run(ctx, current, target);
      if ("skip" in outcome) {
        await push(fix.box, fix.title, fix.kind, current, false, `Skipped: ${outcome.skip}`, undefined, t, true);
        continue;
      }
      if ("analysis" in outcome) {
        await push(fix.box, fix.title, "analysis", current, true, outcome.finding, outcome.analysis, t);
        continue;
      }
      const candidate = outcome;
      const s = candidate.score ?? (await score(candidate.sim));
      const kept = candidate.always === true || s > current;
      if (kept) {
        if (candidate.sim !== ctx.sim) ctx.sim.dispose();
        if (candidate.graph && candidate.graph !== ctx.graph) {
          if (ctx.graph !== reference) ctx.graph.dispose();
          ctx.graph = candidate.graph;
          record.final.graphChanges.push(fix.box);
        }
        ctx.sim = candidate.sim;
      } else {
        if (candidate.sim !== ctx.sim) candidate.sim.dispose();
        if (candidate.graph && candidate.graph !== ctx.graph) candidate.graph.dispose();
      }
      const verdict = kept ? (candidate.always && s <= current ? "kept (as runtimes deploy it)" : "kept") : "not kept: it did not raise the score";
      await push(fix.box, fix.title, "fix", s, kept, `${candidate.finding} Score ${fmt(current)} → ${fmt(s)}, ${verdict}.`, candidate.result, t);
    }
    return finish(
      current >= target
        ? `Target met: drop ${fmt(fp32 - current)} ≤ ${fmt(options.target)} after ${record.steps.length} steps (${record.steps.filter((s) => s.kind === "fix" && s.kept).map((s) => s.title).join(", ") || "no fix needed"}).`
        : `Target not met: the best drop reached is ${fmt(fp32 - current)} (allowed ${fmt(options.target)}). Consider higher bit-widths for the layers the per-layer analysis names, or QAT with more data.`,
    );
  } catch (err) {
    ctx.sim.dispose();
    if (ctx.graph !== reference) ctx.graph.dispose();
    if (ownsReference) reference.dispose();
    throw err;
  }

  function finish(diagnosis: string): DebugFlowResult {
    record.diagnosis = diagnosis;
    record.final = { ...record.final, score: current, drop: fp32 - current, config: ctx.sim.config, overrides: [...ctx.sim.overrides] };
    const { graph, sim } = ctx;
    return {
      record,
      graph,
      sim,
      dispose() {
        sim.dispose();
        if (graph !== reference || ownsReference) graph.dispose();
        if (ownsReference && graph !== reference) reference.dispose();
      },
    };
  }
}

function fmt(v: number): string {
  return Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(4);
}
