import type { SplitResult } from "../src/analysis/weights-vs-activations";
import { COLORS, View, view, WIDTH } from "./spec";

/** Weights vs activations: the four scores as bars, with FP32's as a reference line. */
export function splitView(result: SplitResult): View {
  const colors = [COLORS.fp32, COLORS.weights, COLORS.activations, COLORS.quantized];
  return view(`Weights vs activations (${result.metric.label})`, result.diagnosis, {
    width: WIDTH,
    height: 120,
    data: { values: result.rows },
    layer: [
      {
        mark: "bar",
        encoding: {
          y: { field: "variant", type: "nominal", sort: null, title: null },
          x: { field: "score", type: "quantitative", title: result.metric.label, scale: { zero: false } },
          color: { field: "variant", type: "nominal", sort: null, scale: { range: colors }, legend: null },
          tooltip: [{ field: "variant" }, { field: "score", format: ".4f" }, { field: "drop", format: ".4f" }],
        },
      },
      { data: { values: [{ fp32: result.fp32 }] }, mark: { type: "rule", color: COLORS.fp32, strokeDash: [4, 3] }, encoding: { x: { field: "fp32", type: "quantitative" } } },
    ],
  });
}
