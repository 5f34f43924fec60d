import { MetricInfo, metricInfo } from "../analysis/evaluation";
import { METRICS, MetricName } from "../eval/metric";
import { atLeastText, changeText, scoreText } from "../eval/score-text";
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
  // 1. Normalize the metric and the target, before anything runs.
  const goal = parseTarget(options);
  options = { ...options, metric: goal.metric ?? options.metric };
  const reference = typeof model === "string" ? await loadGraph(model) : model;
  const ownsReference = typeof model === "string";
  let info: MetricInfo;
  let score: (sim: QuantSim, fp32?: boolean) => Promise<number>;
  try {
    info = metricInfo(options, reference);
    score = makeScorer(reference, options);
    if (info.kind === "fidelity" && goal.drop !== undefined) {
      // Scores with a known perfect value (identical outputs: agreement 1, cosine 1, MSE 0) take a drop from it, as before; dB scores have none.
      const perfect = PERFECT[info.metric];
      if (perfect === undefined) throw new Error(dropOfFidelity(info));
      goal.score = perfect - goal.drop;
      goal.fromPerfect = goal.drop;
      goal.drop = undefined;
    }
  } catch (err) {
    if (ownsReference) reference.dispose();
    throw err;
  }
  const calibration = options.calibration ?? options.data;
  let fp32: number | null = null;
  let target: number;
  let reachable: FlowRecord["reachable"];
  let ctx: FlowContext;
  try {
    // 2. FP32's own score, for task scores (a fidelity score has none: FP32 is its reference).
    if (info.kind === "task") {
      const fp32Sim = QuantSim.create(reference, {}).with({ "**": { enabled: false } });
      try {
        fp32 = await score(fp32Sim, true);
      } finally {
        fp32Sim.dispose();
      }
      if (fp32 === Infinity) {
        // The user's evaluate scores against FP32 (a PSNR): a fidelity score.
        info = metricInfo(options, reference, Infinity);
        fp32 = null;
        if (goal.drop !== undefined) throw new Error(dropOfFidelity(info));
      }
    }
    if (fp32 !== null) {
      target = goal.drop !== undefined ? fp32 - goal.drop : goal.score!;
      if (target > fp32) throw new Error(`debugFlow: the target ${atLeastText(info, target)} is above the FP32 model's own score ${scoreText(info, fp32)}: no quantized model can reach it. Lower the target, or give it as a drop from FP32.`);
    } else target = goal.score!;
    ctx = { reference, graph: reference, sim: await QuantSim.create(reference, options.config ?? {}).calibrate(calibration, { onProgress: options.onProgress }), calibration, options, score };
  } catch (err) {
    if (ownsReference) reference.dispose();
    throw err;
  }
  try {
    // 3. A fidelity target is checked against what 16-bit weights and activations reach: if even they fall short, no fix at the target bit-width can reach it.
    if (fp32 === null) {
      const wide = ctx.sim.with({ "**": { bitwidth: 16 } });
      let wideScore: number;
      try {
        wideScore = await score(wide);
      } finally {
        wide.dispose();
      }
      reachable = { bits: 16, score: wideScore };
      if (wideScore < target) {
        throw new Error(`debugFlow: the target ${atLeastText(info, target)} is out of reach: with every weight and activation at 16 bits the model scores ${scoreText(info, wideScore)}, and no fix at fewer bits does better. Lower the target (below ${scoreText(info, wideScore)}).`);
      }
    }
  } catch (err) {
    ctx.sim.dispose();
    if (ownsReference) reference.dispose();
    throw err;
  }
  const drop = (s: number | null) => (fp32 === null || s === null ? null : fp32 - s);
  const targetText = goal.drop !== undefined ? `drop ≤ ${changeText(info, goal.drop).replace(/^[+−]/, "")} from FP32 (${scoreText(info, target)})` : `${atLeastText(info, target)}${goal.fromPerfect !== undefined ? ` (a drop of ${changeText(info, goal.fromPerfect).replace(/^[+−]/, "")} from identical outputs)` : ""}`;
  const record: FlowRecord = {
    step: "debug-flow",
    model: reference.name,
    metric: info,
    fp32,
    allowedDrop: goal.drop ?? goal.fromPerfect ?? null,
    target,
    targetText,
    ...(reachable ? { reachable } : {}),
    met: false,
    steps: [],
    final: { score: NaN, drop: null, config: options.config ?? {}, overrides: [], graphChanges: [] },
    diagnosis: "",
  };
  let current = NaN;
  const push = async (box: FlowBox, title: string, kind: FlowStep["kind"], s: number | null, kept: boolean, finding: string, result: unknown, started: number, skipped = false) => {
    const before = Number.isNaN(current) ? null : current;
    if (kept && s !== null) current = s;
    const step: FlowStep = { index: record.steps.length + 1, box, title, kind, score: s, drop: drop(s), before, fp32, target, kept, skipped, met: current >= target, finding, result, seconds: (Date.now() - started) / 1000 };
    record.steps.push(step);
    record.met = step.met;
    await options.onStep?.(step, record);
  };
  // Fixes in flow-fixes score with the metric and evaluate only: with chosen outputs or a stated peak, the flow scores their candidates itself.
  const rescore = options.outputs !== undefined || options.peak !== undefined;

  try {
    // 1. FP32 sanity check: if 32-bit quantizers do not reproduce FP32, nothing after it can be trusted.
    let t = Date.now();
    const sanity = await fp32SanityCheck(ctx.sim, { data: calibration, onProgress: options.onProgress });
    await push("fp32-sanity-check", "FP32 sanity check", "analysis", fp32, true, sanity.diagnosis, sanity, t);
    if (!sanity.pass) return finish("The simulation does not reproduce FP32 at 32 bits: fix the pipeline (custom layers, data) before debugging quantization.");

    t = Date.now();
    const baseline = await score(ctx.sim);
    const against = fp32 !== null ? ` against FP32 ${scoreText(info, fp32)} (${changeText(info, baseline - fp32)})` : "";
    const reach = reachable ? ` With every quantizer at 16 bits it would score ${scoreText(info, reachable.score)}.` : "";
    await push("quantized-baseline", "Quantized baseline", "analysis", baseline, true, `Quantized as configured, the model scores ${scoreText(info, baseline)}${against}; the target is ${targetText}.${reach}`, { fp32, quantized: baseline, ...(reachable ? { reachable } : {}) }, t);
    if (current >= target) return finish("The quantized model already meets the target: nothing to fix.");

    t = Date.now();
    const split = await weightsVsActivations(ctx.sim, { data: options.data, metric: options.metric, evaluate: options.evaluate, outputs: options.outputs, peak: options.peak, onProgress: options.onProgress });
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
      const s = candidate.score !== undefined && !rescore ? candidate.score : await score(candidate.sim);
      const before = current;
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
      await push(fix.box, fix.title, "fix", s, kept, `${candidate.finding} Score ${scoreText(info, before)} → ${scoreText(info, s)}, ${verdict}.`, candidate.result, t);
    }
    return finish(
      current >= target
        ? `Target met (${targetText}): ${reached()} after ${record.steps.length} steps (${record.steps.filter((s) => s.kind === "fix" && s.kept).map((s) => s.title).join(", ") || "no fix needed"}).`
        : `Target not met (${targetText}): the best reached is ${reached()}. Consider higher bit-widths for the layers the per-layer analysis names, or QAT with more data.`,
    );
  } catch (err) {
    ctx.sim.dispose();
    if (ctx.graph !== reference) ctx.graph.dispose();
    if (ownsReference) reference.dispose();
    throw err;
  }

  function reached(): string {
    return fp32 !== null ? `${scoreText(info, current)} (${changeText(info, current - fp32)} from FP32)` : scoreText(info, current);
  }

  function finish(diagnosis: string): DebugFlowResult {
    record.diagnosis = diagnosis;
    record.final = { ...record.final, score: current, drop: drop(current), config: ctx.sim.config, overrides: [...ctx.sim.overrides] };
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

/** The target, normalized: a drop from FP32, or an absolute score (and the metric it names). */
/** Fidelity scores of outputs identical to FP32's: a drop from these means something. */
const PERFECT: Partial<Record<string, number>> = { agreement: 1, cosine: 1, mse: 0 };

function parseTarget(options: DebugFlowOptions): { drop?: number; score?: number; metric?: MetricName; fromPerfect?: number } {
  const t = options.target;
  const bad = (why: string) => new Error(`debugFlow: invalid target ${JSON.stringify(t)}: ${why} (target must be a drop from FP32's score such as 0.01 or { drop: 0.01 }, or an absolute score such as { psnr: 40 }, { sqnr: 30 }, { accuracy: 0.9 }, { mse: 1e-4 }, { score: 0.9 })`);
  if (typeof t === "number") {
    if (!(t >= 0) || !Number.isFinite(t)) throw bad("a drop must be a finite number ≥ 0");
    return { drop: t };
  }
  if (t === null || typeof t !== "object") throw bad("no target");
  const entries = Object.entries(t);
  if (entries.length !== 1) throw bad("give one target");
  const [key, value] = entries[0] as [string, number];
  if (typeof value !== "number" || !Number.isFinite(value)) throw bad(`the ${key} target must be a finite number`);
  if (key === "drop") {
    if (value < 0) throw bad("a drop must be ≥ 0");
    return { drop: value };
  }
  if (key === "score") return { score: value };
  if (!(METRICS as readonly string[]).includes(key)) throw bad(`unknown target "${key}"`);
  const metric = key as MetricName;
  if (options.evaluate) throw bad(`a ${key} target names a built-in metric, but an evaluate function scores this flow: give { score: x } on its scale`);
  if (options.metric !== undefined && options.metric !== metric) throw bad(`the target is a ${key} score, but metric is "${options.metric}"`);
  if (metric === "mse" && value < 0) throw bad("an MSE target is the largest acceptable MSE, a number ≥ 0");
  // Scores are higher-is-better: the MSE target becomes −MSE.
  return { score: metric === "mse" ? -value : value, metric };
}

function dropOfFidelity(info: MetricInfo): string {
  const name = info.metric === "custom" ? "your evaluate function" : `metric "${info.metric}"`;
  const example = info.metric === "custom" ? "target: { score: x }" : info.metric === "mse" ? "target: { mse: 1e-4 } (CLI: --max-mse 1e-4)" : `target: { ${info.metric}: ${info.metric === "sqnr" || info.metric === "psnr" ? 40 : 0.99} } (CLI: --min-${info.metric} ${info.metric === "sqnr" || info.metric === "psnr" ? 40 : 0.99})`;
  return `debugFlow: ${name} scores the model against FP32, which has no score of its own${info.metric === "custom" ? " (evaluate returned +Infinity on FP32)" : ""}, so a drop from FP32 means nothing. Give an absolute target: ${example}.`;
}
