import type { ActivationHistogram } from "../src/analysis/histograms";
import { COLORS, View, view, WIDTH } from "./spec";

/**
 * What a bit-width does to one tensor: its histogram, the quantization grid for
 * the bit-width chosen on a slider (same range), and the rounding error that
 * grid implies (rmse = step / sqrt(12) inside the range). The grid and the
 * error are redrawn in the page as the slider moves.
 */
export function bitwidthView(h: ActivationHistogram): View {
  const levels = Array.from({ length: 256 }, (_, k) => ({ k }));
  return view(`Bit-width explorer: ${h.quantizer}`, "Move the slider: fewer bits, fewer grid levels (grey lines) across the same range, and a larger rounding error.", {
    width: WIDTH,
    height: 200,
    params: [{ name: "bits", value: Math.min(h.bitwidth, 8), bind: { input: "range", min: 2, max: 8, step: 1, name: "bit-width " } }],
    layer: [
      {
        data: { values: h.bins },
        mark: { type: "rect", color: COLORS.fp32 },
        encoding: { x: { field: "start", type: "quantitative", title: "value" }, x2: { field: "end" }, y: { field: "count", type: "quantitative", scale: { type: "symlog" } } },
      },
      {
        data: { values: levels },
        transform: [
          { filter: "datum.k < pow(2, bits)" },
          { calculate: `${h.encodingMin} + datum.k * (${h.encodingMax - h.encodingMin}) / (pow(2, bits) - 1)`, as: "level" },
        ],
        mark: { type: "rule", color: "#999", strokeWidth: 0.6 },
        encoding: { x: { field: "level", type: "quantitative" } },
      },
      {
        data: { values: [{}] },
        transform: [
          { calculate: `(${h.encodingMax - h.encodingMin}) / (pow(2, bits) - 1)`, as: "step" },
          { calculate: "'step ' + format(datum.step, '.3g') + ', rounding rmse ' + format(datum.step / sqrt(12), '.3g')", as: "label" },
        ],
        mark: { type: "text", align: "right", baseline: "top", x: "width", y: 0, fontSize: 12 },
        encoding: { text: { field: "label" } },
      },
    ],
  });
}
