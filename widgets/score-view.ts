import type { ScoreResult } from "../src/analysis/score";
import { registerView } from "./registry";
import { COLORS, metricFormat, scoreDomain, View, view, WIDTH } from "./spec";

/** One score (`qd.score`): a point on the metric's axis, its value written beside it, the subject in the title. */
export function scoreView(result: ScoreResult): View {
  const format = metricFormat(result.metric);
  const subject = result.subject === "fp32" ? "FP32 model" : "simulation";
  return view(`Score of the ${subject}: ${format.text(result.score)} (${result.metric.label})`, result.diagnosis, {
    width: WIDTH,
    height: 40,
    data: { values: [{ subject, score: result.score, label: format.text(result.score) }] },
    encoding: { x: { field: "score", type: "quantitative", title: result.metric.label, scale: { domain: scoreDomain([result.score], result.metric, 40), nice: false }, axis: { format: format.axis } } },
    layer: [
      { mark: { type: "point", filled: true, size: 140, color: result.subject === "fp32" ? COLORS.fp32 : COLORS.quantized }, encoding: { tooltip: [{ field: "subject" }, { field: "score", format: format.score }] } },
      { mark: { type: "text", align: "left", dx: 10, fontSize: 12 }, encoding: { text: { field: "label" } } },
    ],
  });
}

registerView<ScoreResult>("scoreView", { steps: ["score"] }, scoreView);
