import type { WeightChannelsResult } from "../src/analysis/weight-channels";
import { COLORS, View, view, WIDTH } from "./spec";

/**
 * The guidebook's per-channel figure: one box plot per output channel (min,
 * quartiles, max) for a layer chosen in a drop-down (a layer picker that needs
 * no kernel), starting with the layer whose channels are most uneven.
 */
export function weightChannelsView(result: WeightChannelsResult): View {
  const layers = [...result.layers].sort((a, b) => b.rangeRatio - a.rangeRatio).map((l) => l.quantizer);
  return view("Weight ranges per output channel", result.diagnosis, {
    width: WIDTH,
    height: 220,
    params: [{ name: "layer", value: layers[0], bind: { input: "select", options: layers, name: "layer " } }],
    data: { values: result.rows },
    transform: [{ filter: "datum.quantizer === layer" }],
    layer: [
      { mark: { type: "rule" }, encoding: { x: { field: "channel", type: "ordinal", title: "output channel" }, y: { field: "min", type: "quantitative", title: "weight value" }, y2: { field: "max" } } },
      {
        mark: { type: "bar", size: 8, color: COLORS.weights },
        encoding: {
          x: { field: "channel", type: "ordinal" },
          y: { field: "q1", type: "quantitative" },
          y2: { field: "q3" },
          tooltip: [{ field: "quantizer" }, { field: "channel" }, { field: "min", format: ".4g" }, { field: "q1", format: ".4g" }, { field: "median", format: ".4g" }, { field: "q3", format: ".4g" }, { field: "max", format: ".4g" }],
        },
      },
      { mark: { type: "tick", color: "black", size: 8 }, encoding: { x: { field: "channel", type: "ordinal" }, y: { field: "median", type: "quantitative" } } },
    ],
  });
}
