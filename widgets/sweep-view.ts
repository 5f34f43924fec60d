import type { SweepResult } from "../src/analysis/sweeps";
import { COLORS, View, view, WIDTH } from "./spec";

/**
 * Per-layer sweeps in execution order: "only this layer quantized" and/or "all
 * but this layer", with FP32 and fully-quantized reference lines. A slider sets
 * the allowed drop; layers whose own quantization costs more are marked — a
 * widget that needs no kernel (Vega-Lite params run in the page).
 */
export function sweepView(...sweeps: SweepResult[]): View {
  if (sweeps.length === 0) throw new Error("sweepView needs at least one sweep result");
  const [first] = sweeps;
  const label = { "enable-one": "only this layer quantized", "disable-one": "all but this layer quantized" };
  const values = sweeps.flatMap((s) => s.rows.map((r) => ({ ...r, quantizers: r.quantizers.join(", "), sweep: label[s.mode], fp32: s.fp32Score })));
  const span = Math.max(1e-9, ...sweeps.map((s) => Math.abs(s.fp32Score - s.quantizedScore)));
  const color = { field: "sweep", type: "nominal", title: null, scale: { domain: [label["enable-one"], label["disable-one"]], range: [COLORS.activations, COLORS.weights] }, legend: { labelLimit: 300, orient: "bottom" } };
  return view(`Per-layer sweep (${first.metric.label})`, sweeps.map((s) => s.diagnosis).join(" "), {
    width: WIDTH,
    height: 220,
    params: [{ name: "allowed_drop", value: span / 4, bind: { input: "range", min: 0, max: span, step: span / 100, name: "allowed drop " } }],
    data: { values },
    transform: [{ calculate: "datum.sweep === 'only this layer quantized' && datum.drop > allowed_drop", as: "sensitive" }],
    layer: [
      {
        mark: { type: "line", point: false, opacity: 0.6 },
        encoding: {
          x: { field: "index", type: "quantitative", title: "layer (execution order)" },
          y: { field: "score", type: "quantitative", scale: { zero: false }, title: first.metric.label },
          color,
        },
      },
      {
        mark: { type: "point", filled: true },
        encoding: {
          x: { field: "index", type: "quantitative" },
          y: { field: "score", type: "quantitative" },
          color,
          size: { condition: { test: "datum.sensitive", value: 160 }, value: 30 },
          stroke: { condition: { test: "datum.sensitive", value: "black" }, value: null },
          tooltip: [{ field: "key", title: "layer" }, { field: "sweep" }, { field: "score", format: ".4f" }, { field: "drop", format: ".4f" }, { field: "quantizers" }],
        },
      },
      ...([["FP32", first.fp32Score, COLORS.fp32], ["fully quantized", first.quantizedScore, COLORS.quantized]] as const).flatMap(([ref, score, c]) => [
        { data: { values: [{ ref, score }] }, mark: { type: "rule", strokeDash: [4, 3], color: c }, encoding: { y: { field: "score", type: "quantitative" }, tooltip: [{ field: "ref" }, { field: "score", format: ".4f" }] } },
        { data: { values: [{ ref, score }] }, mark: { type: "text", align: "right", dx: -2, dy: -6, color: c, x: "width" }, encoding: { y: { field: "score", type: "quantitative" }, text: { field: "ref" } } },
      ]),
    ],
  });
}
