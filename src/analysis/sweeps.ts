import { changeText, scoreText } from "../eval/score-text";
import { QuantSim } from "../quant/quantsim";
import { EvaluationOptions, metricInfo, MetricInfo, scoreAll } from "./evaluation";
import { ScoredVariant } from "./score-variants";
import { allBypassed, Granularity, groupQuantizers, onlyEnabled, QuantizerGroup, without } from "./variants";

export interface SweepRow {
  /** Execution-order position of the group. */
  index: number;
  /** Layer (node) name, or quantizer name at per-quantizer granularity. */
  key: string;
  node: string;
  /** A short readable name where the graph has one (a graph model's "conv2d_9" for "StatefulPartitionedCall/…/conv2d_9/BiasAdd"). */
  label?: string;
  quantizers: string[];
  score: number;
  /** FP32 score minus this score: how much this change costs (negative = it helps); null for a fidelity score (FP32 has none). */
  drop: number | null;
}

export interface SweepResult {
  step: "sweep-enabled" | "sweep-disabled";
  /** "enable one": only this group quantized; "disable one": everything quantized but this group. */
  mode: "enable-one" | "disable-one";
  granularity: Granularity;
  metric: MetricInfo;
  /** FP32's own score (task scores); null for a fidelity score, whose reference FP32 is. */
  fp32Score: number | null;
  quantizedScore: number;
  rows: SweepRow[];
  /** Whether FP32 intermediates upstream of each group were reused ("enable one" only). */
  cached: boolean;
  diagnosis: string;
}

export interface SweepOptions extends EvaluationOptions {
  granularity?: Granularity;
  /** "enable one" only: reuse FP32 intermediates (default true; false runs the naive sweep, for checking). */
  cache?: boolean;
  /** Called as each group's score is known (with an evaluate function, one by one as it goes). */
  onRow?: (row: SweepRow) => void;
  /**
   * Built-in metrics: the sweep's result so far (every row's running score on the
   * examples seen), after each batch — what a live view redraws while it runs.
   */
  onPartial?: (partial: SweepResult, examples: number) => void;
}

/**
 * Per-layer analysis, "enable one": each layer's quantizers alone at their
 * target settings, everything else bypassed, in execution order (AIMET's
 * QuantAnalyzer "enabled" sweep). The layers whose own quantization costs the
 * most show up directly. With built-in metrics, the FP32 part of the graph
 * before each layer is computed once per batch and reused.
 */
export async function sweepEnabled(sim: QuantSim, options: SweepOptions): Promise<SweepResult> {
  const granularity = options.granularity ?? "layer";
  const groups = groupQuantizers(sim, granularity);
  const cached = options.cache !== false && !options.evaluate;
  const variants = groups.map((g) => ({ key: g.key, sim: onlyEnabled(sim, g.quantizers), changedFrom: [g.node] }));
  return sweep("sweep-enabled", "enable-one", sim, groups, variants, granularity, cached, options);
}

/**
 * Per-layer analysis, "disable one": everything quantized but one layer. The
 * layers whose removal recovers the most are the ones to keep at higher precision.
 */
export async function sweepDisabled(sim: QuantSim, options: SweepOptions): Promise<SweepResult> {
  const granularity = options.granularity ?? "layer";
  const groups = groupQuantizers(sim, granularity);
  const variants = groups.map((g) => ({ key: g.key, sim: without(sim, g.quantizers) }));
  return sweep("sweep-disabled", "disable-one", sim, groups, variants, granularity, false, options);
}

async function sweep(
  step: SweepResult["step"],
  mode: SweepResult["mode"],
  sim: QuantSim,
  groups: QuantizerGroup[],
  variants: ScoredVariant[],
  granularity: Granularity,
  cached: boolean,
  options: SweepOptions,
): Promise<SweepResult> {
  const fp32 = allBypassed(sim);
  // A copy, so that the caller's simulation is left as it was (no cached quantized weights).
  const quantized = sim.with({});
  const all: ScoredVariant[] = [{ key: "\u0000fp32", sim: fp32, changedFrom: [], fp32: true }, { key: "\u0000quantized", sim: quantized }, ...variants];
  const rowOf = new Map(groups.map((g, index) => [g.key, { index, group: g }]));
  // The node's label names the row where the graph has one; a per-quantizer key keeps its quantizer suffix.
  const labelOf = (g: { key: string; node: string }): { label?: string } => {
    const label = sim.graph.has(g.node) ? sim.graph.node(g.node).attrs.label : undefined;
    if (typeof label !== "string" || label === g.node) return {};
    return { label: g.key.startsWith(g.node) ? label + g.key.slice(g.node.length) : label };
  };
  // A task score's FP32 score comes first; a fidelity score never has one (then drops are null).
  let fp32Score: number | null = null;
  const task = (score: number | undefined) => score !== undefined && Number.isFinite(score);
  const rowsOf = (scores: Map<string, number>, f: number | null) =>
    groups.map((g, index) => ({ index, key: g.key, node: g.node, ...labelOf(g), quantizers: g.quantizers, score: scores.get(g.key)!, drop: f !== null ? f - scores.get(g.key)! : null }));
  try {
    const scores = await scoreAll(step, all, {
      ...options,
      cacheFp32: cached,
      onPartial: options.onPartial
        ? (running, examples) => {
            const f = task(running.get("\u0000fp32")) ? running.get("\u0000fp32")! : null;
            const diagnosis = `Running: scores on the first ${examples} examples.`;
            options.onPartial!({ step, mode, granularity, metric: metricInfo(options, sim.graph, f ?? Infinity), fp32Score: f, quantizedScore: running.get("\u0000quantized")!, rows: rowsOf(running, f), cached, diagnosis }, examples);
          }
        : undefined,
      onScore: (key, score) => {
        if (key === "\u0000fp32" && task(score)) fp32Score = score;
        const r = rowOf.get(key);
        if (r) options.onRow?.({ index: r.index, key, node: r.group.node, ...labelOf(r.group), quantizers: r.group.quantizers, score, drop: fp32Score !== null ? fp32Score - score : null });
      },
    });
    const metric = metricInfo(options, options.evaluate ? undefined : sim.graph, scores.get("\u0000fp32"));
    const f = metric.kind === "task" ? scores.get("\u0000fp32")! : null;
    const q = scores.get("\u0000quantized")!;
    const rows = rowsOf(scores, f);
    return { step, mode, granularity, metric, fp32Score: f, quantizedScore: q, rows, cached, diagnosis: diagnose(mode, metric, f, q, rows) };
  } finally {
    fp32.dispose();
    quantized.dispose();
    for (const v of variants) v.sim.dispose();
  }
}

/** Sweep rows ranked worst first: the lowest score for "enable one", the highest for "disable one" (the most recovered). */
export function rankedRows(result: Pick<SweepResult, "mode" | "rows">): SweepRow[] {
  return [...result.rows].sort((a, b) => (result.mode === "enable-one" ? a.score - b.score : b.score - a.score));
}

function diagnose(mode: SweepResult["mode"], metric: MetricInfo, fp32: number | null, quantized: number, rows: SweepRow[]): string {
  const t = (v: number) => scoreText(metric, v);
  const ranked = rankedRows({ mode, rows });
  const allQuantized = `all quantized: ${t(quantized)}`;
  if (mode === "enable-one") {
    const lossy = ranked.filter((r) => (fp32 !== null ? r.score < fp32 : true)).slice(0, 3);
    if (lossy.length === 0) return `No layer loses anything when quantized alone (FP32 ${t(fp32!)}); the ${allQuantized} comes from errors adding up across layers.`;
    const worst = lossy[0];
    const next = "Visualize its tensors next (per-channel weight ranges and activation histogram), then fix that quantizer: a custom range or a higher bit-width.";
    if (fp32 !== null) {
      const total = fp32 - quantized;
      const share = total > 0 ? ` — ${Math.round((100 * (fp32 - worst.score)) / total)} % of the whole model's drop` : "";
      return `Quantized alone, ${lossy.map((r) => `${r.label ?? r.key} (${changeText(metric, r.score - fp32)})`).join(", ")} cost the most against FP32 ${t(fp32)}. ${worst.label ?? worst.key} quantized alone: ${t(worst.score)} (${allQuantized})${share}. ${next}`;
    }
    return `Quantized alone, ${lossy.map((r) => `${r.label ?? r.key} (${t(r.score)})`).join(", ")} score lowest. ${worst.label ?? worst.key} quantized alone: ${t(worst.score)} (${allQuantized})${errorShare(metric, worst.score, quantized)}. ${next}`;
  }
  const best = ranked.slice(0, 3);
  const head = best[0];
  if (head.score <= quantized) return `Keeping no single layer in float raises the score above the ${allQuantized}: the error is spread over many layers.`;
  const recovered = fp32 !== null && fp32 > quantized ? `, ${Math.max(0, Math.min(100, Math.round((100 * (head.score - quantized)) / (fp32 - quantized))))} % of the drop from FP32 ${t(fp32)}` : "";
  return `Keeping one layer in float raises the score the most for ${best.map((r) => `${r.label ?? r.key} (${t(r.score)})`).join(", ")}. ${head.label ?? head.key} in float: ${t(head.score)} (${allQuantized}${recovered}): a candidate for a higher bit-width.`;
}

/** Where errors add (SQNR, PSNR, MSE): a layer's own error as a share of the whole model's. */
function errorShare(metric: MetricInfo, alone: number, quantized: number): string {
  const m = metric.metric;
  if (m !== "sqnr" && m !== "psnr" && m !== "mse") return "";
  const share = m === "mse" ? alone / quantized : 10 ** ((quantized - alone) / 10);
  return share > 0 && Number.isFinite(share) ? `: its error alone is ${Math.round(100 * share)} % of the whole model's` : "";
}
