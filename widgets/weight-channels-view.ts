import type { WeightChannelsResult } from "../src/analysis/weight-channels";
import { registerView } from "./registry";
import { COLORS, emptyView, pickedTitle, View, WIDTH, wrap } from "./spec";

/**
 * The guidebook's per-channel figure: one box plot per output channel (min–max
 * line, quartile box, median tick) for a layer chosen in a drop-down (a layer
 * picker that needs no kernel), starting with the layer whose channels are most
 * uneven. The picked layer is in the title, so a PNG says which it shows.
 */
export function weightChannelsView(result: WeightChannelsResult): View {
  if (result.layers.length === 0) return emptyView("Weight ranges per output channel", "The simulation quantizes no weights: there are no channels to draw.");
  const layers = [...result.layers].sort((a, b) => b.rangeRatio - a.rangeRatio).map((l) => l.quantizer);
  const x = { field: "channel", type: "ordinal", title: "output channel", axis: { labelOverlap: "greedy", labelAngle: 0, ticks: false } } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: pickedTitle("Weight ranges per output channel: ", "layer"), subtitle: wrap(result.diagnosis, 100), anchor: "start" },
    usermeta: { title: `Weight ranges per output channel: ${layers[0]}` },
    width: WIDTH,
    height: 220,
    params: [{ name: "layer", value: layers[0], bind: { input: "select", options: layers, name: "layer " } }],
    data: { values: result.rows },
    transform: [{ filter: "datum.quantizer === layer" }],
    layer: [
      { mark: { type: "rule", color: "#555" }, encoding: { x, y: { field: "min", type: "quantitative", title: "weight value" }, y2: { field: "max" } } },
      {
        mark: { type: "bar", color: COLORS.weights },
        encoding: {
          x,
          y: { field: "q1", type: "quantitative" },
          y2: { field: "q3" },
          tooltip: [{ field: "quantizer" }, { field: "channel" }, { field: "min", format: ".4g" }, { field: "q1", format: ".4g" }, { field: "median", format: ".4g" }, { field: "q3", format: ".4g" }, { field: "max", format: ".4g" }],
        },
      },
      { mark: { type: "tick", color: "black", thickness: 1.5 }, encoding: { x, y: { field: "median", type: "quantitative" } } },
    ],
  } as unknown as View;
}

registerView<WeightChannelsResult>("weightChannelsView", { steps: ["weight-channels"] }, weightChannelsView);
