import type { SweepResult } from "../src/analysis/sweeps";
import { registerView } from "./registry";
import { COLORS, metricFormat, NAME_AXIS, niceSlider, ROW_STEP, View, view, WIDTH } from "./spec";

const LABEL = { "enable-one": "only this layer quantized", "disable-one": "all but this layer quantized" } as const;
/** Layers named beside their point: the ones that matter most in each sweep. */
const LABELLED = 3;

/**
 * Per-layer sweeps: one row per layer, named, in execution order, with its
 * score when only it is quantized ("enable one") and/or when all but it are
 * ("disable one"), against FP32 and the fully quantized score. The few layers
 * that cost (or recover) the most carry their change as a label, so a PNG names
 * the culprits. A slider sets the allowed drop (a dotted line): layers whose own
 * quantization costs more are ringed; it runs in the page (a Vega-Lite param).
 */
export function sweepView(...sweeps: SweepResult[]): View {
  if (sweeps.length === 0) throw new Error("sweepView needs at least one sweep result");
  const [first] = sweeps;
  const format = metricFormat(first.metric);
  const values = sweeps.flatMap((s) => {
    // Worst for "enable one": the largest drop; for "disable one": the largest recovery (lowest drop).
    const ranked = [...s.rows].sort((a, b) => (s.mode === "enable-one" ? b.drop - a.drop : a.drop - b.drop));
    const labelled = new Set(ranked.slice(0, LABELLED).filter((r) => (s.mode === "enable-one" ? r.drop > 0 : r.score > s.quantizedScore)).map((r) => r.key));
    return s.rows.map((r) => ({
      index: r.index,
      layer: r.key,
      score: r.score,
      drop: r.drop,
      // What this layer's change did to the score, from where the sweep starts (FP32, or fully quantized).
      change: s.mode === "enable-one" ? r.score - s.fp32Score : r.score - s.quantizedScore,
      quantizers: r.quantizers.join(", "),
      sweep: LABEL[s.mode],
      label: labelled.has(r.key) ? format.changeText(s.mode === "enable-one" ? r.score - s.fp32Score : r.score - s.quantizedScore) : "",
    }));
  });
  const span = Math.max(1e-9, ...sweeps.map((s) => Math.abs(s.fp32Score - s.quantizedScore)));
  const slider = niceSlider(span, span / 4);
  const y = { field: "layer", type: "nominal", sort: { field: "index" }, title: null, axis: NAME_AXIS } as const;
  const x = { field: "score", type: "quantitative", scale: { zero: false, nice: false, padding: 30 }, title: first.metric.label, axis: { format: format.axis } } as const;
  const color = { field: "sweep", type: "nominal", title: null, scale: { domain: (["enable-one", "disable-one"] as const).filter((m) => sweeps.some((s) => s.mode === m)).map((m) => LABEL[m]), range: (["enable-one", "disable-one"] as const).filter((m) => sweeps.some((s) => s.mode === m)).map((m) => (m === "enable-one" ? COLORS.activations : COLORS.weights)) }, legend: { orient: "top", labelLimit: 300 } } as const;
  const enable = sweeps.find((s) => s.mode === "enable-one");
  const worst = enable ? [...enable.rows].sort((a, b) => b.drop - a.drop)[0] : undefined;
  const title = worst && worst.drop > 0 ? `Per-layer sweep (${first.metric.label}): ${worst.key} costs the most alone` : `Per-layer sweep (${first.metric.label})`;
  return view(title, sweeps.map((s) => s.diagnosis).join(" "), {
    width: WIDTH,
    height: { step: ROW_STEP },
    params: [{ name: "allowed_drop", value: slider.value, bind: { input: "range", min: slider.min, max: slider.max, step: slider.step, name: "allowed drop " } }],
    layer: [
      ...([["FP32", first.fp32Score, COLORS.fp32], ["fully quantized", first.quantizedScore, COLORS.quantized]] as const).flatMap(([ref, score, c]) => [
        { data: { values: [{ ref, score }] }, mark: { type: "rule", strokeDash: [4, 3], color: c }, encoding: { x: { ...x }, tooltip: [{ field: "ref" }, { field: "score", format: format.score }] } },
        { data: { values: [{ ref, score }] }, mark: { type: "text", angle: 0, align: ref === "FP32" ? "left" : "right", dx: ref === "FP32" ? 3 : -3, y: -6, color: c, fontSize: 10 }, encoding: { x: { ...x }, text: { field: "ref" } } },
      ]),
      ...(enable
        ? [{
            data: { values: [{ fp32: first.fp32Score }] },
            transform: [{ calculate: "datum.fp32 - allowed_drop", as: "score" }, { calculate: "'allowed drop ' + format(allowed_drop, '" + format.change.replace("+", "") + "')", as: "text" }],
            layer: [
              { mark: { type: "rule", strokeDash: [1, 2], color: "#555" }, encoding: { x: { ...x } } },
              { mark: { type: "text", align: "right", dx: -3, y: "height", dy: -5, fontSize: 10, color: "#555" }, encoding: { x: { ...x }, text: { field: "text" } } },
            ],
          }]
        : []),
      {
        data: { values },
        transform: [{ calculate: `datum.sweep === '${LABEL["enable-one"]}' && datum.drop > allowed_drop`, as: "sensitive" }],
        layer: [
          { mark: { type: "rule", color: "#ddd" }, encoding: { y, x: { ...x }, x2: { datum: first.fp32Score } } },
          {
            mark: { type: "point", filled: true, opacity: 0.9 },
            encoding: {
              y,
              x,
              color,
              size: { condition: { test: "datum.sensitive", value: 110 }, value: 40 },
              stroke: { condition: { test: "datum.sensitive", value: "black" }, value: null },
              tooltip: [{ field: "layer" }, { field: "sweep" }, { field: "score", format: format.score }, { field: "change", format: format.change }, { field: "quantizers" }],
            },
          },
          { mark: { type: "text", align: "right", dx: -8, fontSize: 10, fontWeight: "bold" }, encoding: { y, x, text: { field: "label" }, color } },
        ],
      },
    ],
  });
}

registerView<SweepResult>("sweepView", { steps: ["sweep-enabled", "sweep-disabled"] }, (r) => sweepView(r));
