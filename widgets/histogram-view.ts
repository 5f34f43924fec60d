import type { HistogramsResult } from "../src/analysis/histograms";
import { registerView } from "./registry";
import { COLORS, countAxis, emptyView, pickedTitle, View, WIDTH, wrap } from "./spec";

/**
 * An activation histogram with its quantization range (dashed) and, at low
 * bit-widths, the grid itself; a drop-down picks the quantizer, and the title
 * names it (so a PNG says which it shows). The most clipped quantizer is shown
 * first; its clipped share is in the title.
 */
export function histogramView(result: HistogramsResult): View {
  if (result.histograms.length === 0) return emptyView("Activation histogram", "No activation quantizer has calibration statistics: calibrate the simulation first, or enable an activation quantizer.");
  const ordered = [...result.histograms].sort((a, b) => b.clippedFraction - a.clippedFraction);
  const names = ordered.map((h) => h.quantizer);
  const bins = result.histograms.flatMap((h) => h.bins.map((b) => ({ quantizer: h.quantizer, ...b })));
  const ranges = result.histograms.flatMap((h) => [
    { quantizer: h.quantizer, edge: "range min", value: h.encodingMin, clipped: h.clippedFraction },
    { quantizer: h.quantizer, edge: "range max", value: h.encodingMax, clipped: h.clippedFraction },
  ]);
  // What the title adds after the name: the clipped share and the bit-width.
  const facts = result.histograms.map((h) => ({ quantizer: h.quantizer, facts: `${h.bitwidth}-bit, ${h.clippedFraction > 0 ? `${(h.clippedFraction * 100).toPrecision(2)} % clipped` : "nothing clipped"}` }));
  // Grid lines only where they can be told apart (at most 64 levels).
  const grid = result.histograms.flatMap((h) =>
    2 ** h.bitwidth <= 64 ? Array.from({ length: 2 ** h.bitwidth }, (_, k) => ({ quantizer: h.quantizer, level: h.encodingMin + k * h.scale })) : [],
  );
  const maxCount = Math.max(1, ...bins.map((b) => b.count));
  const factsOf = `{${facts.map((f) => `${JSON.stringify(f.quantizer)}: ${JSON.stringify(f.facts)}`).join(", ")}}[quantizer]`;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: { expr: `${pickedTitle("Activation histogram: ", "quantizer").expr} + ' (' + ${factsOf} + ')'` }, subtitle: wrap(result.diagnosis, 100), anchor: "start" },
    usermeta: { title: `Activation histogram: ${names[0]} (${facts.find((f) => f.quantizer === names[0])!.facts})` },
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
          y: { field: "count", type: "quantitative", ...countAxis(maxCount) },
          tooltip: [{ field: "start", format: ".4g" }, { field: "end", format: ".4g" }, { field: "count", format: "," }],
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
      {
        data: { values: ranges },
        transform: [{ filter: "datum.quantizer === quantizer" }, { calculate: "format(datum.value, '.3~g')", as: "text" }],
        mark: { type: "text", y: 0, dy: -6, fontSize: 10, color: COLORS.quantized },
        encoding: { x: { field: "value", type: "quantitative" }, text: { field: "text" } },
      },
    ],
  } as unknown as View;
}

registerView<HistogramsResult>("histogramView", { steps: ["histograms"] }, histogramView);
