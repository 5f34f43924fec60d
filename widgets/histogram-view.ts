import type { HistogramsResult } from "../src/analysis/histograms";
import { COLORS, View, view, WIDTH } from "./spec";

/**
 * An activation histogram with its quantization range (dashed) and, at low
 * bit-widths, the grid itself; a drop-down picks the quantizer. The most
 * clipped quantizer is shown first.
 */
export function histogramView(result: HistogramsResult): View {
  const ordered = [...result.histograms].sort((a, b) => b.clippedFraction - a.clippedFraction);
  const names = ordered.map((h) => h.quantizer);
  const bins = result.histograms.flatMap((h) => h.bins.map((b) => ({ quantizer: h.quantizer, ...b })));
  const ranges = result.histograms.flatMap((h) => [
    { quantizer: h.quantizer, edge: "range min", value: h.encodingMin, clipped: h.clippedFraction },
    { quantizer: h.quantizer, edge: "range max", value: h.encodingMax, clipped: h.clippedFraction },
  ]);
  // Grid lines only where they can be told apart (at most 64 levels).
  const grid = result.histograms.flatMap((h) =>
    2 ** h.bitwidth <= 64 ? Array.from({ length: 2 ** h.bitwidth }, (_, k) => ({ quantizer: h.quantizer, level: h.encodingMin + k * h.scale })) : [],
  );
  return view("Activation histogram with its quantization range", result.diagnosis, {
    width: WIDTH,
    height: 200,
    params: [{ name: "quantizer", value: names[0], bind: { input: "select", options: names, name: "quantizer " } }],
    layer: [
      {
        data: { values: bins },
        transform: [{ filter: "datum.quantizer === quantizer" }],
        mark: { type: "rect", color: COLORS.fp32 },
        encoding: {
          x: { field: "start", type: "quantitative", title: "activation value" },
          x2: { field: "end" },
          y: { field: "count", type: "quantitative", scale: { type: "symlog" }, title: "count" },
          tooltip: [{ field: "start", format: ".4g" }, { field: "end", format: ".4g" }, { field: "count" }],
        },
      },
      ...(grid.length
        ? [{ data: { values: grid }, transform: [{ filter: "datum.quantizer === quantizer" }], mark: { type: "rule", color: "#bbb", strokeWidth: 0.5 }, encoding: { x: { field: "level", type: "quantitative" } } }]
        : []),
      {
        data: { values: ranges },
        transform: [{ filter: "datum.quantizer === quantizer" }],
        mark: { type: "rule", color: COLORS.quantized, strokeDash: [5, 3], strokeWidth: 2 },
        encoding: { x: { field: "value", type: "quantitative" }, tooltip: [{ field: "edge" }, { field: "value", format: ".4g" }, { field: "clipped", format: ".2%", title: "clipped share" }] },
      },
    ],
  });
}
