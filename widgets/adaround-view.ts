import type { AdaroundLayerRow, AdaroundSkip } from "../src/fix/adaround";
import type { BeforeAfter } from "../src/fix/before-after";
import { registerView } from "./registry";
import { COLORS, emptyView, logTicks, metricFormat, NAME_AXIS, ROW_STEP, significant, View, view, WIDTH } from "./spec";

interface AdaroundRecord {
  /** The fix's own reading (fixes carry one); the view's reading otherwise. */
  diagnosis?: string;
  layers: AdaroundLayerRow[];
  skipped?: AdaroundSkip[];
  scores?: BeforeAfter;
}

/** Layers whose gain is written beside them. */
const LABELLED = 3;

/**
 * AdaRound per layer: the layer's reconstruction error against FP32 (MSE of its
 * output) with weights rounded to nearest and with AdaRound's learned
 * rounding, on a log axis, as a dumbbell per layer in execution order. The
 * layers it helped most carry the factor. The per-layer loss curves are
 * `trainingCurveView(result.curve)`.
 */
export function adaroundView(result: AdaroundRecord): View {
  const title = "AdaRound: reconstruction error per layer";
  if (result.layers.length === 0) return emptyView(title, `AdaRound rounded no layer${result.skipped?.length ? `: ${result.skipped.slice(0, 3).map((s) => `${s.layer} (${s.reason})`).join("; ")}` : ""}.`);
  const floor = 1e-12;
  // Rows are named by layer; by quantizer where a layer has two (a separable convolution's kernels).
  const perLayer = new Map<string, number>();
  for (const l of result.layers) perLayer.set(l.layer, (perLayer.get(l.layer) ?? 0) + 1);
  const rows = result.layers.map((l, order) => ({ layer: perLayer.get(l.layer)! > 1 ? l.quantizer : l.layer, order, nearest: Math.max(l.reconstructionBefore, floor), adaround: Math.max(l.reconstructionAfter, floor), flipped: l.flippedShare, iterations: l.iterations, examples: l.examples }));
  const best = [...rows].sort((a, b) => b.nearest / b.adaround - a.nearest / a.adaround);
  const labelled = new Set(best.slice(0, LABELLED).filter((r) => r.adaround < r.nearest).map((r) => r.layer));
  const labelledRows = rows.map((r) => ({ ...r, label: labelled.has(r.layer) ? `${significant(r.nearest / r.adaround, 2)}× lower` : "" }));
  const long = rows.flatMap((r) => [{ ...r, rounding: "to nearest", mse: r.nearest }, { ...r, rounding: "AdaRound", mse: r.adaround }]);
  const better = rows.filter((r) => r.adaround < r.nearest).length;
  const format = metricFormat(result.scores?.metric);
  const reading = [
    `AdaRound lowered the reconstruction error of ${better} of ${rows.length} layers; most in ${best[0].layer} (${significant(best[0].nearest / best[0].adaround, 2)}× lower, ${(best[0].flipped * 100).toFixed(1)} % of its weights rounded the other way).`,
    result.scores ? `${result.scores.metric.label}: ${format.text(result.scores.before)} → ${format.text(result.scores.after)} (${format.changeText(result.scores.change)}).` : "",
    result.skipped?.length ? `${result.skipped.length} quantizers not rounded (${result.skipped[0].layer}: ${result.skipped[0].reason}).` : "",
  ].filter(Boolean).join(" ");
  const y = { field: "layer", type: "nominal", sort: { field: "order" }, title: null, axis: NAME_AXIS } as const;
  const x = { type: "quantitative", scale: { type: "log", nice: false, padding: 12 }, axis: { values: logTicks(long.map((r) => r.mse)), format: "~g" }, title: "layer output MSE against FP32 (log)" } as const;
  return view(`${title}, most improved: ${best[0].layer}`, result.diagnosis ?? reading, {
    width: WIDTH - 120,
    height: { step: ROW_STEP },
    layer: [
      { data: { values: rows }, mark: { type: "rule", color: "#999" }, encoding: { y, x: { field: "nearest", ...x }, x2: { field: "adaround" } } },
      {
        data: { values: long },
        mark: { type: "point", filled: true, size: 45 },
        encoding: {
          y,
          x: { field: "mse", ...x },
          color: { field: "rounding", type: "nominal", scale: { domain: ["to nearest", "AdaRound"], range: [COLORS.quantized, COLORS.pass] }, title: null, legend: { orient: "top" } },
          tooltip: [{ field: "layer" }, { field: "rounding" }, { field: "mse", format: ".3g", title: "MSE" }, { field: "flipped", format: ".1%", title: "weights flipped" }, { field: "iterations" }, { field: "examples" }],
        },
      },
      { data: { values: labelledRows }, mark: { type: "text", align: "left", dx: 8, fontSize: 10, fontWeight: "bold", color: COLORS.pass }, encoding: { y, x: { field: "nearest", ...x }, text: { field: "label" } } },
    ],
  });
}

registerView<AdaroundRecord>("adaroundView", { steps: ["adaround"], matches: (x) => Array.isArray(x.layers) && (x.layers as { reconstructionBefore?: number }[])[0]?.reconstructionBefore !== undefined }, adaroundView);
