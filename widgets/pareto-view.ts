import type { MixedPrecisionResult } from "../src/fix/mixed-precision";
import { COLORS, metricFormat, View, view, WIDTH } from "./spec";
import { registerView } from "./registry";

const KIND_LABELS: Record<MixedPrecisionResult["pareto"][number]["kind"], string> = {
  lowest: "all lowest",
  highest: "all highest",
  "one lowered": "one layer lowered",
  "one raised": "one layer raised",
  step: "search step",
};

/** "W4A8", or "W4" when activations were not searched (views import only types from src). */
const labelOf = (r: MixedPrecisionResult, i: number) => {
  const c = r.candidates[i];
  return `W${c.weights}${c.activations !== undefined ? `A${c.activations}` : ""}`;
};

/**
 * Mixed precision, score against cost: every configuration scored as a point,
 * the Pareto front as a line, the search path numbered, the chosen one ringed,
 * and the target (FP32 − allowed drop) as a rule.
 */
export function paretoView(result: MixedPrecisionResult): View {
  const high = labelOf(result, result.candidates.length - 1);
  const costTitle = `cost (share of all-${high} ${result.costUnit})`;
  const points = result.pareto.map((p) => ({ ...p, kindLabel: KIND_LABELS[p.kind], step: p.step ?? null }));
  const front = points.filter((p) => p.onFront).sort((a, b) => a.relativeCost - b.relativeCost || a.score - b.score);
  const path = result.table.map((r) => ({ ...r, label: r.step === 0 ? "start" : `${r.step}` }));
  // Step numbers only where they do not run into the previous one (steps a few tenths of a percent apart would overprint).
  const costs = result.pareto.map((p) => p.relativeCost);
  const minGap = (Math.max(...costs) - Math.min(...costs)) * 0.025;
  let lastLabelled = -Infinity;
  const labelledSteps = path.filter((r) => {
    if (r.step === 0 || r.relativeCost - lastLabelled < minGap) return false;
    lastLabelled = r.relativeCost;
    return true;
  });
  const chosen = points.filter((p) => p.chosen);
  const x = { field: "relativeCost", type: "quantitative", title: costTitle, axis: { format: "%" }, scale: { zero: false, nice: true } };
  const y = { field: "score", type: "quantitative", title: result.metric.label, scale: { zero: false }, axis: { format: metricFormat(result.metric).axis } };
  const references = [
    // The target's label goes under its line (the front usually runs just above it), FP32's over its own.
    { ref: `target ${metricFormat(result.metric).text(result.target)}`, score: result.target, color: COLORS.fail, dy: 10 },
    { ref: "FP32", score: result.reference.fp32, color: COLORS.fp32, dy: -6 },
  ];
  const kinds = [...new Set(points.map((p) => p.kindLabel))];
  const palette: Record<string, string> = { "all lowest": COLORS.quantized, "all highest": COLORS.fp32, "one layer lowered": "#bab0ac", "one layer raised": "#bab0ac", "search step": COLORS.weights };
  return view(`Mixed precision: ${result.metric.label} against cost`, result.diagnosis, {
    width: WIDTH,
    height: 300,
    layer: [
      ...references.flatMap((r) => [
        { data: { values: [r] }, mark: { type: "rule", strokeDash: [4, 3], color: r.color }, encoding: { y: { field: "score", type: "quantitative" }, tooltip: [{ field: "ref", title: "reference" }, { field: "score", format: ".4f" }] } },
        { data: { values: [r] }, mark: { type: "text", align: "right", dx: -2, dy: r.dy, color: r.color, x: "width" }, encoding: { y: { field: "score", type: "quantitative" }, text: { field: "ref" } } },
      ]),
      {
        data: { values: front },
        mark: { type: "line", interpolate: "step-after", color: "#333", strokeWidth: 1.5 },
        encoding: { x, y, order: { field: "relativeCost", type: "quantitative" } },
      },
      {
        data: { values: path },
        mark: { type: "line", color: COLORS.weights, strokeDash: [2, 2], opacity: 0.7 },
        encoding: { x, y, order: { field: "step", type: "quantitative" } },
      },
      {
        data: { values: points },
        mark: { type: "point", filled: true, size: 50, opacity: 0.85 },
        encoding: {
          x,
          y,
          color: { field: "kindLabel", type: "nominal", title: null, scale: { domain: kinds, range: kinds.map((k) => palette[k]) }, legend: { orient: "bottom" } },
          shape: { condition: { test: "datum.onFront", value: "diamond" }, value: "circle" },
          tooltip: [
            { field: "kindLabel", title: "configuration" },
            { field: "step", title: "step" },
            { field: "changed", title: "layer changed" },
            { field: "config", title: "bit-widths" },
            { field: "score", format: ".4f" },
            { field: "relativeCost", format: ".1%", title: "relative cost" },
            { field: "cost", format: ",.0f", title: result.costUnit },
            { field: "onFront", title: "on the front" },
          ],
        },
      },
      {
        data: { values: labelledSteps },
        mark: { type: "text", align: "right", dx: -6, dy: -6, fontSize: 9, color: COLORS.weights },
        encoding: { x, y, text: { field: "label" }, tooltip: [{ field: "step" }, { field: "changed", title: "layer raised" }, { field: "candidate", title: "to" }, { field: "score", format: ".4f" }, { field: "relativeCost", format: ".1%", title: "relative cost" }] },
      },
      {
        data: { values: chosen },
        mark: { type: "point", filled: false, size: 320, strokeWidth: 2.5, color: "black" },
        encoding: { x, y, tooltip: [{ field: "config", title: "chosen" }, { field: "score", format: ".4f" }, { field: "relativeCost", format: ".1%", title: "relative cost" }] },
      },
      {
        data: { values: chosen },
        mark: { type: "text", align: "left", dx: 12, dy: 10, fontWeight: "bold" },
        encoding: { x, y, text: { value: "chosen" } },
      },
    ],
  });
}

/** The chosen bit-width of every searched layer, as a heat strip (weights, and activations when searched). */
export function mixedPrecisionTableView(result: MixedPrecisionResult): View {
  const values = result.layers.flatMap((l) => [
    ...(l.chosen.weights !== undefined ? [{ part: "weights", bits: l.chosen.weights }] : []),
    ...(l.chosen.activations !== undefined ? [{ part: "activations", bits: l.chosen.activations }] : []),
  ].map((v) => ({
    ...v,
    index: l.index,
    layer: l.key,
    chosen: l.chosen.label,
    levels: l.levels.join(" / "),
    gain: l.gain,
    raisedAt: l.raisedAt.length ? l.raisedAt.join(", ") : "never",
    quantizers: l.quantizers.join(", "),
  })));
  const bits = [...new Set(result.candidates.flatMap((c) => [c.weights, ...(c.activations !== undefined ? [c.activations] : [])]))].sort((a, b) => a - b);
  const low = labelOf(result, 0);
  const raised = result.layers.filter((l) => l.chosen.level > 0).length;
  const subtitle = `${raised} of ${result.layers.length} layers kept wider than ${low}; ${result.met ? "the target is met" : "the target is not met"} (score ${result.score.toFixed(4)}, target ${result.target.toFixed(4)}). Hover a cell for the layer's sensitivity and the step that raised it.`;
  const x = { field: "layer", type: "ordinal", sort: { field: "index" }, title: "layer (execution order)", axis: { labelAngle: -45, labelLimit: 140 } };
  const y = { field: "part", type: "nominal", title: null, sort: ["weights", "activations"] };
  return view("Mixed precision: chosen bit-width per layer", subtitle, {
    width: WIDTH,
    height: { step: 28 },
    data: { values },
    layer: [
      {
        mark: { type: "rect", stroke: "white" },
        encoding: {
          x,
          y,
          color: { field: "bits", type: "ordinal", title: "bits", scale: { domain: bits, scheme: "blues" }, legend: { orient: "right" } },
          tooltip: [
            { field: "layer" },
            { field: "chosen", title: "chosen" },
            { field: "levels", title: "candidates" },
            { field: "gain", format: ".4f", title: `${result.sensitivity.metric.label}: gain when raised alone` },
            { field: "raisedAt", title: "raised at step" },
            { field: "quantizers" },
          ],
        },
      },
      {
        mark: { type: "text", fontSize: 10 },
        encoding: {
          x,
          y,
          text: { field: "bits", type: "quantitative" },
          color: { condition: { test: `datum.bits > ${bits[0]}`, value: "white" }, value: "black" },
        },
      },
    ],
  });
}

registerView<MixedPrecisionResult>("paretoView", { steps: ["mixed-precision"] }, paretoView);
