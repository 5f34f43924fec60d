import type { OutlierDimensionsResult } from "../src/analysis/outlier-dimensions";
import { registerView } from "./registry";
import { COLORS, NAME_AXIS, ROW_STEP, View, view, WIDTH } from "./spec";

/**
 * A transformer's activations per token and per embedding dimension
 * (`qd.outlierDimensions`), top to bottom: the token × dimension heat map of
 * each heat-map node (largest |value| over the examples); each dimension's
 * range (min to max) in those nodes, outliers in red; and, for every sequence
 * activation, the spread of its dimensions' largest |value| over the median
 * dimension's, each outlier dimension marked, with the outlier threshold drawn.
 */
export function outlierDimensionsView(result: OutlierDimensionsResult): View {
  const heatNodes = [...new Set(result.heatmap.map((c) => c.node))];
  // Only the fields drawn, at 4 significant digits: thousands of cells stay a small spec.
  const heatmap = result.heatmap.map((c) => ({ node: c.node, token: c.token, dim: c.dim, absMax: round(c.absMax), meanAbs: round(c.meanAbs) }));
  const kindOf = (r: { outlier: boolean }) => (r.outlier ? "outlier" : "dimension");
  const ranges = result.ranges.filter((r) => heatNodes.includes(r.node)).map((r) => ({ node: r.node, dim: r.dim, min: round(r.min), max: round(r.max), kind: kindOf(r) }));
  const ratios = result.ranges.map((r) => ({ node: r.node, role: r.role, dim: r.dim, ratio: round(r.ratio), absMax: round(r.absMax), kind: kindOf(r) }));
  const kind = { field: "kind", type: "nominal", scale: { domain: ["dimension", "outlier"], range: [COLORS.fp32, COLORS.fail] }, title: null, legend: { orient: "top" } } as const;
  // The heat map and the ranges have one row per sequence activation, in the same order.
  const byNode = { row: { field: "node", type: "nominal", sort: heatNodes, title: null, header: { labelAngle: 0, labelAlign: "left", labelLimit: 200 } } } as const;
  const panels: Record<string, unknown>[] = [];
  if (heatNodes.length) {
    panels.push({
      title: "Largest |value| per token position × embedding dimension",
      data: { values: heatmap },
      facet: byNode,
      spec: {
        width: WIDTH - 120,
        height: { step: 5 },
        mark: "rect",
        encoding: {
          x: { field: "token", type: "ordinal", title: "token position", axis: { labelAngle: 0, labelOverlap: "greedy", labelSeparation: 4 } },
          y: { field: "dim", type: "ordinal", title: "embedding dimension", axis: { labelOverlap: "greedy", labelFontSize: 8 } },
          color: { field: "absMax", type: "quantitative", title: "|x| max", scale: { scheme: "viridis" } },
          tooltip: [{ field: "node" }, { field: "token" }, { field: "dim" }, { field: "absMax", format: ".4g" }, { field: "meanAbs", format: ".4g", title: "mean |x|" }],
        },
      },
      resolve: { scale: { color: "independent" } },
    });
    panels.push({
      title: "Range of each embedding dimension",
      data: { values: ranges },
      facet: byNode,
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
  // Per node, the spread of its dimensions' ratios as one bar (smallest to largest), and each outlier dimension as a red tick.
  const spreads = result.nodes.map((n) => {
    const mine = ratios.filter((r) => r.node === n.node);
    return { node: n.node, role: n.role, low: Math.min(...mine.map((r) => r.ratio)), high: round(n.ratio), outliers: n.outliers.length };
  });
  const y = { field: "node", type: "nominal", sort: result.nodes.map((n) => n.node), title: null, axis: NAME_AXIS } as const;
  const x = { type: "quantitative", title: "|x| max / median dimension's", scale: { type: "log", domainMin: 0.1 } } as const;
  panels.push({
    title: `Each node's embedding dimensions: largest |value| over the median dimension's (outlier at ${result.threshold}×)`,
    width: WIDTH,
    height: { step: ROW_STEP },
    layer: [
      {
        data: { values: spreads },
        mark: { type: "rule", strokeWidth: 5, color: COLORS.fp32 },
        encoding: { y, x: { field: "low", ...x }, x2: { field: "high" }, tooltip: [{ field: "node" }, { field: "role" }, { field: "low", title: "smallest", format: ".3g" }, { field: "high", title: "largest", format: ".3g" }, { field: "outliers" }] },
      },
      {
        data: { values: ratios.filter((r) => r.kind === "outlier") },
        mark: { type: "tick", thickness: 2, color: COLORS.fail },
        encoding: { y, x: { field: "ratio", ...x }, tooltip: [{ field: "node" }, { field: "dim" }, { field: "absMax", format: ".4g", title: "|x| max" }, { field: "ratio", format: ".3g" }] },
      },
      { data: { values: [{ threshold: result.threshold }] }, mark: { type: "rule", strokeDash: [4, 3], color: COLORS.fail }, encoding: { x: { field: "threshold", type: "quantitative" } } },
    ],
  });
  return view("Per-token and per-embedding activation ranges", result.diagnosis, { vconcat: panels, spacing: 24 });
}

const round = (v: number) => Number(v.toPrecision(4));

registerView<OutlierDimensionsResult>("outlierDimensionsView", { steps: ["outlier-dimensions"] }, outlierDimensionsView);
