import type { RangesResult } from "../src/analysis/ranges";
import { COLORS, View, view, WIDTH } from "./spec";

/** Per-quantizer encoding ranges as bars from min to max, weights and activations side by side. */
export function rangesView(result: RangesResult): View {
  return view("Quantization ranges per layer", result.diagnosis, {
    data: { values: result.rows },
    facet: { row: { field: "kind", type: "nominal", title: null } },
    spec: {
      width: WIDTH,
      height: 160,
      mark: { type: "bar", size: 6 },
      encoding: {
        x: { field: "index", type: "quantitative", title: "quantizer (execution order)" },
        y: { field: "min", type: "quantitative", title: "range" },
        y2: { field: "max" },
        color: { field: "kind", type: "nominal", scale: { domain: ["weight", "bias", "activation"], range: [COLORS.weights, COLORS.fp32, COLORS.activations] }, legend: null },
        tooltip: [{ field: "quantizer" }, { field: "min", format: ".4g" }, { field: "max", format: ".4g" }, { field: "scale", format: ".3g", title: "step" }, { field: "bitwidth" }, { field: "perChannel" }],
      },
    },
    resolve: { scale: { y: "independent", x: "independent" } },
  });
}
