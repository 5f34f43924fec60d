import { rankedRows, SweepResult } from "../src/analysis/sweeps";
import { IDENTICAL_DB } from "../src/eval/metric";
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
 * the culprits. A slider sets the allowed drop from FP32 (task scores) or the
 * lowest acceptable score (fidelity scores, which FP32 has none of; then there
 * is no FP32 line): layers scoring below it quantized alone are ringed; it runs
 * in the page (a Vega-Lite param). Labels sit on the side with room.
 */
export function sweepView(...sweeps: SweepResult[]): View {
  if (sweeps.length === 0) throw new Error("sweepView needs at least one sweep result");
  const [first] = sweeps;
  const format = metricFormat(first.metric);
  // A task score's sweeps start from FP32's own score; a fidelity score has none (FP32 is its reference): layers are read by their scores.
  const fp32 = first.fp32Score;
  const start = (s: SweepResult) => (s.mode === "enable-one" ? fp32 : s.quantizedScore);
  // Outputs identical to FP32 (a lossless quantizer) score the metric's ceiling: drawn at the axis' end, named, never stretching it.
  const identical = (v: number) => (first.metric.metric === "sqnr" || first.metric.metric === "psnr") && v >= IDENTICAL_DB;
  const all = sweeps.flatMap((s) => s.rows.map((r) => r.score)).concat([first.quantizedScore], fp32 !== null ? [fp32] : []).filter((v) => !identical(v));
  const [lo, hi] = [Math.min(...all), Math.max(...all)];
  const pad = Math.max(1e-9, hi - lo) * 0.04;
  const domain = [lo - pad, hi + pad];
  const values = sweeps.flatMap((s) => {
    const labelled = new Set(rankedRows(s).slice(0, LABELLED).filter((r) => (s.mode === "enable-one" ? (fp32 === null || r.score < fp32) : r.score > s.quantizedScore)).map((r) => r.key));
    const from = start(s);
    return s.rows.map((r) => ({
      index: r.index,
      layer: r.label ?? r.key,
      score: r.score,
      plot: identical(r.score) ? domain[1] : r.score,
      // What this layer's change did to the score, from where the sweep starts (FP32, or fully quantized); null for a fidelity score's "enable one".
      change: from !== null ? r.score - from : null,
      quantizers: r.quantizers.join(", "),
      sweep: LABEL[s.mode],
      label: identical(r.score) ? "identical to FP32" : labelled.has(r.key) ? (from !== null ? format.changeText(r.score - from) : format.text(r.score)) : "",
      // "Enable one" labels go beside the point on the side with room (never into the layer names); "disable one" labels in a column at the right edge.
      side: s.mode === "disable-one" ? "edge" : identical(r.score) || r.score - lo > (hi - lo) / 2 ? "left" : "right",
    }));
  });
  const span = Math.max(1e-9, hi - lo);
  const y = { field: "layer", type: "nominal", sort: { field: "index" }, title: null, axis: NAME_AXIS } as const;
  const x = { field: "plot", type: "quantitative", scale: { domain, zero: false, nice: false }, title: first.metric.label, axis: { format: format.axis } } as const;
  const color = { field: "sweep", type: "nominal", title: null, scale: { domain: (["enable-one", "disable-one"] as const).filter((m) => sweeps.some((s) => s.mode === m)).map((m) => LABEL[m]), range: (["enable-one", "disable-one"] as const).filter((m) => sweeps.some((s) => s.mode === m)).map((m) => (m === "enable-one" ? COLORS.activations : COLORS.weights)) }, legend: { orient: "top", labelLimit: 300 } } as const;
  const enable = sweeps.find((s) => s.mode === "enable-one");
  const worst = enable ? rankedRows(enable)[0] : undefined;
  const title = worst && (fp32 === null || worst.score < fp32) ? `Per-layer sweep (${first.metric.label}): ${worst.label ?? worst.key} ${fp32 === null ? "scores lowest" : "costs the most"} alone` : `Per-layer sweep (${first.metric.label})`;
  // Task score: a slider sets the allowed drop from FP32; fidelity score: the lowest acceptable score. Layers quantized alone below it are ringed.
  const slider = fp32 !== null ? niceSlider(Math.max(1e-9, Math.abs(fp32 - first.quantizedScore)), Math.abs(fp32 - first.quantizedScore) / 4) : undefined;
  const threshold = fp32 !== null ? `${fp32} - allowed_drop` : "min_score";
  const param = slider
    ? { name: "allowed_drop", value: slider.value, bind: { input: "range", min: slider.min, max: slider.max, step: slider.step, name: "allowed drop " } }
    : { name: "min_score", value: minScoreDefault(enable, span), bind: { input: "range", min: Number(domain[0].toPrecision(4)), max: Number(domain[1].toPrecision(4)), step: Number((span / 50).toPrecision(2)), name: "lowest acceptable score " } };
  const refs: [string, number, string][] = [...(fp32 !== null ? [["FP32", fp32, COLORS.fp32] as [string, number, string]] : []), ["fully quantized", first.quantizedScore, COLORS.quantized]];
  return view(title, sweeps.map((s) => s.diagnosis).join(" "), {
    width: WIDTH,
    height: { step: ROW_STEP },
    params: [param],
    layer: [
      ...refs.flatMap(([ref, score, c]) => [
        { data: { values: [{ ref, score, plot: score }] }, mark: { type: "rule", strokeDash: [4, 3], color: c }, encoding: { x: { ...x }, tooltip: [{ field: "ref" }, { field: "score", format: format.score }] } },
        { data: { values: [{ ref, score, plot: score }] }, mark: { type: "text", angle: 0, align: ref === "FP32" || score <= lo + span / 2 ? "left" : "right", dx: ref === "FP32" || score <= lo + span / 2 ? 3 : -3, y: -6, color: c, fontSize: 10 }, encoding: { x: { ...x }, text: { field: "ref" } } },
      ]),
      ...(enable
        ? [{
            data: { values: [{}] },
            transform: [{ calculate: threshold, as: "plot" }, { calculate: slider ? "'allowed drop ' + format(allowed_drop, '" + format.change.replace("+", "") + "')" : "'lowest acceptable ' + format(min_score, '" + format.score + "')", as: "text" }],
            layer: [
              { mark: { type: "rule", strokeDash: [1, 2], color: "#555" }, encoding: { x: { ...x } } },
              { mark: { type: "text", align: "right", dx: -3, y: "height", dy: -5, fontSize: 10, color: "#555" }, encoding: { x: { ...x }, text: { field: "text" } } },
            ],
          }]
        : []),
      {
        data: { values },
        transform: [{ calculate: `datum.sweep === '${LABEL["enable-one"]}' && datum.score < ${threshold}`, as: "sensitive" }],
        layer: [
          { mark: { type: "rule", color: "#ddd" }, encoding: { y, x: { ...x }, x2: { datum: fp32 ?? first.quantizedScore } } },
          {
            mark: { type: "point", filled: true, opacity: 0.9 },
            encoding: {
              y,
              x,
              color,
              size: { condition: { test: "datum.sensitive", value: 110 }, value: 40 },
              stroke: { condition: { test: "datum.sensitive", value: "black" }, value: null },
              tooltip: [{ field: "layer" }, { field: "sweep" }, { field: "score", format: format.score }, ...(values.some((v) => v.change !== null) ? [{ field: "change", format: format.change }] : []), { field: "quantizers" }],
            },
          },
          { transform: [{ filter: "datum.side === 'right'" }], mark: { type: "text", align: "left", dx: 8, fontSize: 10, fontWeight: "bold" }, encoding: { y, x, text: { field: "label" }, color } },
          { transform: [{ filter: "datum.side === 'left'" }], mark: { type: "text", align: "right", dx: -8, fontSize: 10, fontWeight: "bold" }, encoding: { y, x, text: { field: "label" }, color } },
          { transform: [{ filter: "datum.side === 'edge'" }], mark: { type: "text", align: "right", x: "width", dx: -4, fontSize: 10, fontWeight: "bold" }, encoding: { y, text: { field: "label" }, color } },
        ],
      },
    ],
  });
}

/** The lowest acceptable score a fidelity sweep's slider starts at: just above the third-lowest "enable one" score, so the worst layers are ringed. */
function minScoreDefault(enable: SweepResult | undefined, span: number): number {
  const ranked = enable ? rankedRows(enable).filter((r) => r.score < IDENTICAL_DB) : [];
  const at = ranked[Math.min(LABELLED, ranked.length) - 1]?.score;
  return at === undefined ? 0 : Number((at + span / 100).toPrecision(4));
}

registerView<SweepResult>("sweepView", { steps: ["sweep-enabled", "sweep-disabled"] }, (r) => sweepView(r));
