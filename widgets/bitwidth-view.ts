import type { ActivationHistogram } from "../src/analysis/histograms";
import { COLORS, countAxis, significant, View, view, WIDTH } from "./spec";

/**
 * What a bit-width does to one tensor: its histogram, the quantization grid for
 * the bit-width chosen on a slider (same range), and the rounding error that
 * grid implies (rmse = step / sqrt(12) inside the range). The grid and the
 * error are redrawn in the page as the slider moves; the label in the plot says
 * the bit-width, so a PNG does too.
 */
export function bitwidthView(h: ActivationHistogram): View {
  if (!h) throw new Error("bitwidthView: give one activation histogram (e.g. activationHistograms(sim).histograms[0])");
  const levels = Array.from({ length: 256 }, (_, k) => ({ k }));
  const width = h.encodingMax - h.encodingMin;
  const maxCount = Math.max(1, ...h.bins.map((b) => b.count));
  return view(`Bit-width explorer: ${h.quantizer}`, `Move the slider: fewer bits, fewer grid levels (grey lines) across the same range [${significant(h.encodingMin, 3)}, ${significant(h.encodingMax, 3)}], and a larger rounding error.`, {
    width: WIDTH,
    height: 200,
    params: [{ name: "bits", value: Math.min(h.bitwidth, 8), bind: { input: "range", min: 2, max: 8, step: 1, name: "bit-width " } }],
    layer: [
      {
        data: { values: h.bins },
        mark: { type: "rect", color: COLORS.fp32 },
        encoding: { x: { field: "start", type: "quantitative", title: "value" }, x2: { field: "end" }, y: { field: "count", type: "quantitative", ...countAxis(maxCount) }, tooltip: [{ field: "start", format: ".3g" }, { field: "end", format: ".3g" }, { field: "count", format: "," }] },
      },
      {
        data: { values: levels },
        transform: [
          { filter: "datum.k < pow(2, bits)" },
          { calculate: `${h.encodingMin} + datum.k * ${width} / (pow(2, bits) - 1)`, as: "level" },
        ],
        mark: { type: "rule", color: "#999", strokeWidth: 0.6 },
        encoding: { x: { field: "level", type: "quantitative" } },
      },
      {
        data: { values: [{}] },
        transform: [
          { calculate: `${width} / (pow(2, bits) - 1)`, as: "step" },
          { calculate: "bits + ' bits: ' + (pow(2, bits)) + ' levels, step ' + format(datum.step, '.3~g') + ', rounding rmse ' + format(datum.step / sqrt(12), '.3~g')", as: "label" },
        ],
        mark: { type: "text", align: "right", baseline: "bottom", x: "width", y: 0, dy: -4, fontSize: 12, fontWeight: "bold" },
        encoding: { text: { field: "label" } },
      },
    ],
  });
}
