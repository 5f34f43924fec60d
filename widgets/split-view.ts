import type { SplitResult } from "../src/analysis/weights-vs-activations";
import { COLORS, View, view, WIDTH } from "./spec";

/** Weights vs activations: the four scores as bars, with FP32's as a reference line. */
export function splitView(result: SplitResult): View {
  const colors = [COLORS.fp32, COLORS.weights, COLORS.activations, COLORS.quantized];
  return view(`Weights vs activations (${result.metric.label})`, result.diagnosis, {
    width: WIDTH,
    height: 120,
    data: { values: result.rows },
    // Lollipops from FP32's score: differences of a fraction of a point stay visible.
    transform: [{ calculate: String(result.fp32), as: "fp32" }],
    layer: [
      {
        mark: { type: "rule", strokeWidth: 2 },
        encoding: {
          y: { field: "variant", type: "nominal", sort: null, title: null },
          x: { field: "fp32", type: "quantitative", scale: { zero: false }, title: result.metric.label },
          x2: { field: "score" },
          color: { field: "variant", type: "nominal", sort: null, scale: { range: colors }, legend: null },
        },
      },
      {
        mark: { type: "point", filled: true, size: 160 },
        encoding: {
          y: { field: "variant", type: "nominal", sort: null },
          x: { field: "score", type: "quantitative" },
          color: { field: "variant", type: "nominal", sort: null, scale: { range: colors }, legend: null },
          tooltip: [{ field: "variant" }, { field: "score", format: ".4f" }, { field: "drop", format: ".4f" }],
        },
      },
      {
        mark: { type: "text", align: "left", dx: 10 },
        encoding: { y: { field: "variant", type: "nominal", sort: null }, x: { field: "score", type: "quantitative" }, text: { field: "score", format: ".4f" } },
      },
    ],
  });
}
