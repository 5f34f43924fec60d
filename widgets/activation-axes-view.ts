import type { ActivationAxesResult } from "../src/analysis/activation-axes";
import { NAME_AXIS, View, view, WIDTH } from "./spec";
import { registerView } from "./registry";

/** A heat map of each node's largest magnitude per channel (or per token / embedding): outlier slices stand out. */
export function activationAxesView(result: ActivationAxesResult): View {
  return view("Activation magnitude per channel / token", result.diagnosis, {
    width: WIDTH,
    data: { values: result.rows },
    transform: [
      { joinaggregate: [{ op: "max", field: "absMax", as: "nodeMax" }], groupby: ["node", "axis"] },
      { calculate: "datum.nodeMax > 0 ? datum.absMax / datum.nodeMax : 0", as: "relative" },
      { calculate: "datum.node + ' (' + datum.axis + ')'", as: "row" },
    ],
    mark: "rect",
    encoding: {
      x: { field: "index", type: "ordinal", title: "channel / token / embedding index", axis: { labelOverlap: "greedy", labelAngle: 0, ticks: false } },
      y: { field: "row", type: "nominal", sort: null, title: null, axis: NAME_AXIS },
      color: { field: "relative", type: "quantitative", title: "|x| max / node max", scale: { scheme: "viridis" } },
      tooltip: [{ field: "node" }, { field: "axis" }, { field: "index" }, { field: "absMax", format: ".4g" }, { field: "mean", format: ".4g" }],
    },
  });
}

registerView<ActivationAxesResult>("activationAxesView", { steps: ["activation-axes"] }, activationAxesView);
