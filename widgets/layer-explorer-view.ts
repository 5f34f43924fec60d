import type { HistogramsResult } from "../src/analysis/histograms";
import type { WeightChannelsResult } from "../src/analysis/weight-channels";
import { COLORS, View, view, WIDTH } from "./spec";

/**
 * One layer picker driving two linked views: that layer's per-output-channel
 * weight ranges and its output's histogram with the quantization range. A
 * Vega-Lite param bound to a drop-down: it runs in the page, no kernel needed.
 */
export function layerExplorerView(channels: WeightChannelsResult, histograms: HistogramsResult, first?: string): View {
  const nodes = [...new Set([...channels.layers.map((l) => l.node), ...histograms.histograms.map((h) => h.node)])];
  const start = first ?? [...channels.layers].sort((a, b) => b.rangeRatio - a.rangeRatio)[0]?.node ?? nodes[0];
  const bins = histograms.histograms.flatMap((h) => h.bins.map((b) => ({ node: h.node, ...b })));
  const ranges = histograms.histograms.flatMap((h) => [h.encodingMin, h.encodingMax].map((value) => ({ node: h.node, value })));
  const half = WIDTH / 2 - 30;
  return view("Layer explorer", "Pick a layer: its weight ranges per output channel (left) and its output's histogram with the quantization range (right).", {
    params: [{ name: "layer", value: start, bind: { input: "select", options: nodes, name: "layer " } }],
    hconcat: [
      {
        title: "weights per output channel",
        width: half,
        height: 200,
        data: { values: channels.rows },
        transform: [{ filter: "datum.node === layer" }],
        layer: [
          { mark: "rule", encoding: { x: { field: "channel", type: "ordinal", title: "channel", axis: { labelOverlap: true } }, y: { field: "min", type: "quantitative", title: "weight" }, y2: { field: "max" } } },
          { mark: { type: "bar", size: 6, color: COLORS.weights }, encoding: { x: { field: "channel", type: "ordinal" }, y: { field: "q1", type: "quantitative" }, y2: { field: "q3" }, tooltip: [{ field: "quantizer" }, { field: "channel" }, { field: "min", format: ".3g" }, { field: "max", format: ".3g" }] } },
        ],
      },
      {
        title: "output histogram",
        width: half,
        height: 200,
        layer: [
          {
            data: { values: bins },
            transform: [{ filter: "datum.node === layer" }],
            mark: { type: "rect", color: COLORS.fp32 },
            encoding: { x: { field: "start", type: "quantitative", title: "value" }, x2: { field: "end" }, y: { field: "count", type: "quantitative", scale: { type: "symlog" } } },
          },
          {
            data: { values: ranges },
            transform: [{ filter: "datum.node === layer" }],
            mark: { type: "rule", color: COLORS.quantized, strokeDash: [5, 3], strokeWidth: 2 },
            encoding: { x: { field: "value", type: "quantitative" } },
          },
        ],
      },
    ],
  });
}
