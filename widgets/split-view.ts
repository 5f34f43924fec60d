import type { SplitResult } from "../src/analysis/weights-vs-activations";
import { registerView } from "./registry";
import { COLORS, metricFormat, scoreDomain, View, view, WIDTH } from "./spec";

/**
 * Weights vs activations: the scores as lollipops from FP32's score (task
 * scores) or from the fully quantized score (fidelity scores, which FP32 has
 * none of), so differences of a fraction of a point stay visible. Each score is written on
 * the side away from FP32 with its change, so labels never sit on the lines.
 */
export function splitView(result: SplitResult): View {
  const colors = [...(result.fp32 !== null ? [COLORS.fp32] : []), COLORS.weights, COLORS.activations, COLORS.quantized];
  const format = metricFormat(result.metric);
  // A task score: lollipops from FP32's score. A fidelity score has no FP32 score: from the fully quantized score, each labelled with its own score.
  const base = result.fp32 ?? result.both;
  const rows = result.rows.map((r) => ({
    ...r,
    base,
    change: r.score - base,
    side: r.score < base ? "left" : "right",
    label: result.fp32 === null || r.variant === "FP32" ? format.text(r.score) : `${format.text(r.score)} (${format.changeText(r.score - result.fp32)})`,
  }));
  const y = { field: "variant", type: "nominal", sort: null, title: null } as const;
  const x = { type: "quantitative", scale: { domain: scoreDomain(result.rows.map((r) => r.score), result.metric, 0.45), nice: false }, title: result.metric.label, axis: { format: format.axis } } as const;
  const color = { field: "variant", type: "nominal", sort: null, scale: { range: colors }, legend: null } as const;
  return view(`Weights vs activations (${result.metric.label}): ${reading(result)}`, result.diagnosis, {
    width: WIDTH,
    height: 120,
    data: { values: rows },
    layer: [
      { mark: { type: "rule", strokeWidth: 2 }, encoding: { y, x: { field: "base", ...x }, x2: { field: "score" }, color } },
      { mark: { type: "point", filled: true, size: 160 }, encoding: { y, x: { field: "score", ...x }, color, tooltip: [{ field: "variant" }, { field: "score", format: format.score }, ...(result.fp32 !== null ? [{ field: "change", format: format.change }] : [])] } },
      { transform: [{ filter: "datum.side === 'right'" }], mark: { type: "text", align: "left", dx: 10 }, encoding: { y, x: { field: "score", ...x }, text: { field: "label" } } },
      { transform: [{ filter: "datum.side === 'left'" }], mark: { type: "text", align: "right", dx: -10 }, encoding: { y, x: { field: "score", ...x }, text: { field: "label" } } },
    ],
  });
}

/** The title's reading: a drop from FP32 for task scores, the error for fidelity scores (FP32 has no score of its own). */
function reading(result: SplitResult): string {
  const what = result.fp32 !== null ? "drop" : "error";
  return result.culprit === "none" ? `no side causes ${result.fp32 !== null ? "a drop" : "an error"}` : result.culprit === "both" ? `both sides cause the ${what}` : `${result.culprit} cause most of the ${what}`;
}

registerView<SplitResult>("splitView", { steps: ["weights-vs-activations"] }, splitView);
