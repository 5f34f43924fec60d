import type { LayerErrorResult } from "../src/analysis/layer-error";
import { registerView } from "./registry";
import { COLORS, emptyView, NAME_AXIS, ROW_STEP, View, view, WIDTH } from "./spec";

/** Nodes whose own (local) error is labelled in the plot. */
const LABELLED = 3;

/**
 * Per-node SQNR against FP32, one named row per node in execution order: the
 * node's own error (local: only its quantizers on, FP32 inputs) beside what
 * reaches it (propagated: the whole model quantized). The nodes with the
 * lowest local SQNR carry their value, so a PNG names them.
 */
export function layerErrorView(result: LayerErrorResult): View {
  const title = "Per-layer error against FP32 (SQNR, higher is better)";
  const values = result.rows.flatMap((r) => [
    { index: r.index, node: r.node, kind: "propagated", sqnr: r.propagated.sqnrDb, rmseOverStep: r.propagated.rmseOverStep },
    ...(r.local ? [{ index: r.index, node: r.node, kind: "local", sqnr: r.local.sqnrDb, rmseOverStep: r.local.rmseOverStep }] : []),
  ]).filter((v): v is typeof v & { sqnr: number } => v.sqnr !== null);
  if (values.length === 0) return emptyView(title, "No node's output differs from FP32 at all: nothing is quantized, or every quantizer is exact at these bit-widths.");
  const worst = values.filter((v) => v.kind === "local").sort((a, b) => a.sqnr - b.sqnr).slice(0, LABELLED);
  const labelled = new Set(worst.map((v) => v.node));
  // A nearly exact node (the 8-bit input: 140 dB) would squeeze every other: the axis stops a little above the bulk, and such points sit at its edge with their value.
  const sorted = values.map((v) => v.sqnr).sort((a, b) => a - b);
  const top = Math.min(sorted[sorted.length - 1], sorted[Math.floor(0.9 * (sorted.length - 1))] + 15);
  const bottom = Math.min(0, sorted[0]);
  const rows = values.map((v) => ({ ...v, label: v.sqnr > top ? `${v.sqnr.toFixed(0)} dB ▶` : v.kind === "local" && labelled.has(v.node) ? `${v.sqnr.toFixed(1)} dB` : "" }));
  const y = { field: "node", type: "nominal", sort: { field: "index" }, title: null, axis: NAME_AXIS } as const;
  const x = { field: "sqnr", type: "quantitative", title: "SQNR (dB)", scale: { domain: [bottom, Math.ceil(top / 5) * 5], clamp: true, nice: false } } as const;
  const color = { field: "kind", type: "nominal", scale: { domain: ["local", "propagated"], range: [COLORS.local, COLORS.propagated] }, title: null, legend: { orient: "top", labelExpr: "datum.label === 'local' ? 'local: its own error (FP32 inputs)' : 'propagated: what reaches it'", labelLimit: 300 } } as const;
  return view(worst.length ? `${title}: ${worst[0].node} errs most by itself` : title, result.diagnosis, {
    width: WIDTH,
    height: { step: ROW_STEP },
    data: { values: rows },
    layer: [
      // Only the propagated error is a path through the model; local errors are each node's own.
      { transform: [{ filter: "datum.kind === 'propagated'" }], mark: { type: "line", strokeWidth: 1, opacity: 0.5 }, encoding: { y, x, color, order: { field: "index" } } },
      {
        mark: { type: "point", filled: true, size: 36 },
        encoding: {
          y,
          x,
          color,
          tooltip: [{ field: "node" }, { field: "kind" }, { field: "sqnr", format: ".1f", title: "SQNR (dB)" }, { field: "rmseOverStep", format: ".3f", title: "rmse / step" }],
        },
      },
      { mark: { type: "text", align: "left", dx: 7, fontSize: 10, fontWeight: "bold" }, encoding: { y, x, text: { field: "label" }, color } },
    ],
  });
}

registerView<LayerErrorResult>("layerErrorView", { steps: ["layer-error"] }, layerErrorView);
