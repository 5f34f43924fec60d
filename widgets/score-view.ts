import type { ScoreResult } from "../src/analysis/score";
import { registerView } from "./registry";
import { COLORS, metricFormat, scoreDomain, View, view, WIDTH } from "./spec";

/**
 * One score (`qd.score`): a point on the metric's axis, its value written beside
 * it, the subject in the title. A multi-output model's score is drawn with each
 * output's own score on its own row (hollow points), so the combined number
 * never hides which output loses.
 */
export function scoreView(result: ScoreResult): View {
  const format = metricFormat(result.metric);
  const subject = result.subject === "fp32" ? "FP32 model" : "simulation";
  const outputs = result.outputs && result.outputs.length > 1 ? result.outputs : [];
  const rows = [
    { row: outputs.length ? "combined" : subject, score: result.score, label: format.text(result.score), kind: "combined" },
    ...outputs.map((o) => ({ row: `${o.output} (weight ${Number(o.weight.toPrecision(3))})`, score: o.score, label: format.text(o.score), kind: "output" })),
  ];
  const color = result.subject === "fp32" ? COLORS.fp32 : COLORS.quantized;
  const y = { field: "row", type: "nominal", sort: null, title: null } as const;
  return view(`Score of the ${subject}: ${format.text(result.score)} (${result.metric.label})`, result.diagnosis, {
    width: WIDTH,
    height: outputs.length ? { step: 26 } : 40,
    data: { values: rows },
    encoding: { x: { field: "score", type: "quantitative", title: result.metric.label, scale: { domain: scoreDomain(rows.map((r) => r.score), result.metric, outputs.length ? 0.4 : 40), nice: false }, axis: { format: format.axis } }, ...(outputs.length ? { y } : {}) },
    layer: [
      {
        mark: { type: "point", size: 140, strokeWidth: 2, color },
        encoding: { fill: { condition: { test: "datum.kind === 'combined'", value: color }, value: "white" }, tooltip: [{ field: "row" }, { field: "score", format: format.score }] },
      },
      { mark: { type: "text", align: "left", dx: 10, fontSize: 12 }, encoding: { text: { field: "label" } } },
    ],
  });
}

registerView<ScoreResult>("scoreView", { steps: ["score"] }, scoreView);
