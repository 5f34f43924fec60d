import type { OutlierDimensionsResult } from "../src/analysis/outlier-dimensions";
import { registerView } from "./registry";
import { COLORS, NAME_AXIS, ROW_STEP, View, view, WIDTH } from "./spec";

/**
 * A transformer's activations per token and per embedding dimension
 * (`qd.outlierDimensions`), top to bottom: the token × dimension heat map of
 * each heat-map node (largest |value| over the examples); each dimension's
 * range (min to max) in those nodes, outliers in red; and, for every sequence
 * activation, each dimension's largest |value| over the median dimension's,
 * with the outlier threshold drawn.
 */
export function outlierDimensionsView(result: OutlierDimensionsResult): View {
  const heatNodes = [...new Set(result.heatmap.map((c) => c.node))];
  const ranges = result.ranges.filter((r) => heatNodes.includes(r.node)).map((r) => ({ ...r, kind: r.outlier ? "outlier" : "dimension" }));
  const kind = { field: "kind", type: "nominal", scale: { domain: ["dimension", "outlier"], range: [COLORS.fp32, COLORS.fail] }, title: null, legend: { orient: "top" } } as const;
  const panels: Record<string, unknown>[] = [];
  if (heatNodes.length) {
    panels.push({
      title: "Largest |value| per token position × embedding dimension",
      data: { values: result.heatmap },
      facet: { row: { field: "node", type: "nominal", sort: heatNodes, title: null, header: { labelAngle: 0, labelAlign: "left", labelLimit: 200 } } },
      spec: {
        width: WIDTH - 120,
        height: { step: 5 },
        mark: "rect",
        encoding: {
          x: { field: "token", type: "ordinal", title: "token position", axis: { values: Array.from({ length: 16 }, (_, i) => i * 8), labelAngle: 0 } },
          y: { field: "dim", type: "ordinal", title: "embedding dimension", axis: { values: Array.from({ length: 32 }, (_, i) => i * 8) } },
          color: { field: "absMax", type: "quantitative", title: "|x| max", scale: { scheme: "viridis" } },
          tooltip: [{ field: "node" }, { field: "token" }, { field: "dim" }, { field: "absMax", format: ".4g" }, { field: "meanAbs", format: ".4g", title: "mean |x|" }],
        },
      },
      resolve: { scale: { color: "independent" } },
    });
    panels.push({
      title: "Range of each embedding dimension",
      data: { values: ranges },
      facet: { row: { field: "node", type: "nominal", sort: heatNodes, title: null, header: { labelAngle: 0, labelAlign: "left", labelLimit: 200 } } },
      spec: {
        width: WIDTH - 120,
        height: 70,
        layer: [
          { mark: { type: "rule", strokeWidth: 3 }, encoding: { x: { field: "dim", type: "ordinal", title: "embedding dimension", axis: { labelAngle: 0 } }, y: { field: "min", type: "quantitative", title: "value" }, y2: { field: "max" }, color: kind } },
        ],
      },
      resolve: { scale: { y: "independent" } },
    });
  }
  panels.push({
    title: `Each dimension's largest |value| over the median dimension's (outlier at ${result.threshold}×)`,
    width: WIDTH,
    height: { step: ROW_STEP },
    layer: [
      {
        data: { values: result.ranges.map((r) => ({ ...r, kind: r.outlier ? "outlier" : "dimension" })) },
        mark: { type: "tick", thickness: 2 },
        encoding: {
          y: { field: "node", type: "nominal", sort: result.nodes.map((n) => n.node), title: null, axis: NAME_AXIS },
          x: { field: "ratio", type: "quantitative", title: "|x| max / median dimension's", scale: { type: "log", domainMin: 0.1 } },
          color: kind,
          tooltip: [{ field: "node" }, { field: "role" }, { field: "dim" }, { field: "min", format: ".4g" }, { field: "max", format: ".4g" }, { field: "ratio", format: ".3g" }],
        },
      },
      { data: { values: [{ threshold: result.threshold }] }, mark: { type: "rule", strokeDash: [4, 3], color: COLORS.fail }, encoding: { x: { field: "threshold", type: "quantitative" } } },
    ],
  });
  return view("Per-token and per-embedding activation ranges", result.diagnosis, { vconcat: panels, spacing: 24 });
}

registerView<OutlierDimensionsResult>("outlierDimensionsView", { steps: ["outlier-dimensions"] }, outlierDimensionsView);
