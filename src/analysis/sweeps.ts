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
  quantizers: string[];
  score: number;
  /** FP32 score minus this score: how much this change costs (negative = it helps). */
  drop: number;
}

export interface SweepResult {
  step: "sweep-enabled" | "sweep-disabled";
  /** "enable one": only this group quantized; "disable one": everything quantized but this group. */
  mode: "enable-one" | "disable-one";
  granularity: Granularity;
  metric: MetricInfo;
  fp32Score: number;
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
  const all: ScoredVariant[] = [{ key: "\u0000fp32", sim: fp32, changedFrom: [] }, { key: "\u0000quantized", sim: quantized }, ...variants];
  const rowOf = new Map(groups.map((g, index) => [g.key, { index, group: g }]));
  let fp32Score: number | undefined;
  try {
    const scores = await scoreAll(step, all, {
      ...options,
      cacheFp32: cached,
      onPartial: options.onPartial
        ? (running, examples) => {
            const f = running.get("\u0000fp32")!;
            const rows = groups.map((g, index) => ({ index, key: g.key, node: g.node, quantizers: g.quantizers, score: running.get(g.key)!, drop: f - running.get(g.key)! }));
            const diagnosis = `Running: scores on the first ${examples} examples.`;
            options.onPartial!({ step, mode, granularity, metric: metricInfo(options), fp32Score: f, quantizedScore: running.get("\u0000quantized")!, rows, cached, diagnosis }, examples);
          }
        : undefined,
      onScore: (key, score) => {
        if (key === "\u0000fp32") fp32Score = score;
        const r = rowOf.get(key);
        if (r && fp32Score !== undefined) {
          options.onRow?.({ index: r.index, key, node: r.group.node, quantizers: r.group.quantizers, score, drop: fp32Score - score });
        }
      },
    });
    const f = scores.get("\u0000fp32")!;
    const q = scores.get("\u0000quantized")!;
    const rows = groups.map((g, index) => ({ index, key: g.key, node: g.node, quantizers: g.quantizers, score: scores.get(g.key)!, drop: f - scores.get(g.key)! }));
    return { step, mode, granularity, metric: metricInfo(options), fp32Score: f, quantizedScore: q, rows, cached, diagnosis: diagnose(mode, f, q, rows) };
  } finally {
    fp32.dispose();
    quantized.dispose();
    for (const v of variants) v.sim.dispose();
  }
}

const fmt = (v: number) => (Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(4));

function diagnose(mode: SweepResult["mode"], fp32: number, quantized: number, rows: SweepRow[]): string {
  const total = fp32 - quantized;
  if (mode === "enable-one") {
    const worst = [...rows].sort((a, b) => b.drop - a.drop).slice(0, 3).filter((r) => r.drop > 0);
    if (worst.length === 0) return `No layer loses anything when quantized alone (FP32 ${fmt(fp32)}); the drop of the whole model (${fmt(total)}) comes from errors adding up across layers.`;
    const share = total > 0 ? ` — ${Math.round((100 * worst[0].drop) / total)} % of the whole model's drop of ${fmt(total)}` : "";
    return `Quantized alone, ${worst.map((r) => `${r.key} (−${fmt(r.drop)})`).join(", ")} cost the most. ${worst[0].key} alone loses ${fmt(worst[0].drop)}${share}. Visualize its tensors next (per-channel weight ranges and activation histogram), then fix that quantizer: a custom range or a higher bit-width.`;
  }
  const best = [...rows].sort((a, b) => a.drop - b.drop).slice(0, 3);
  const recovered = total > 0 ? Math.round((100 * (best[0].score - quantized)) / total) : 0;
  return `Keeping one layer in float recovers the most for ${best.map((r) => `${r.key} (score ${fmt(r.score)})`).join(", ")}. ${best[0].key} in float recovers ${Math.max(0, Math.min(100, recovered))} % of the drop (${fmt(total)}): a candidate for a higher bit-width.`;
}
