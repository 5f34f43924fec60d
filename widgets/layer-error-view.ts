import type { LayerErrorResult } from "../src/analysis/layer-error";
import { COLORS, View, view, WIDTH } from "./spec";

/** Per-layer SQNR against FP32: local (the layer's own error) beside propagated (what reaches it). */
export function layerErrorView(result: LayerErrorResult): View {
  const values = result.rows.flatMap((r) => [
    { index: r.index, node: r.node, kind: "propagated", sqnr: r.propagated.sqnrDb, rmseOverStep: r.propagated.rmseOverStep },
    ...(r.local ? [{ index: r.index, node: r.node, kind: "local", sqnr: r.local.sqnrDb, rmseOverStep: r.local.rmseOverStep }] : []),
  ]).filter((v) => v.sqnr !== null);
  return view("Per-layer error against FP32 (SQNR, higher is better)", result.diagnosis, {
    width: WIDTH,
    height: 220,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "index", type: "quantitative", title: "node (execution order)" },
      y: { field: "sqnr", type: "quantitative", title: "SQNR (dB)" },
      color: { field: "kind", type: "nominal", scale: { domain: ["local", "propagated"], range: [COLORS.local, COLORS.propagated] }, title: null },
      tooltip: [{ field: "node" }, { field: "kind" }, { field: "sqnr", format: ".1f", title: "SQNR (dB)" }, { field: "rmseOverStep", format: ".3f", title: "rmse / step" }],
    },
  });
}
