import type { ActivationHistogram, HistogramsResult } from "../src/analysis/histograms";
import type { WeightChannelsResult } from "../src/analysis/weight-channels";
import { COLORS, countAxis, pickedTitle, View, WIDTH, wrap } from "./spec";

/**
 * The output quantizer that shows each layer's output: its own, or, where
 * runtimes fuse the layer with the activation after it (so only that
 * activation's output is quantized), the one of that activation. Keras names
 * it after the layer (block_5_depthwise → block_5_depthwise_relu).
 */
function outputHistograms(nodes: string[], histograms: HistogramsResult): Map<string, ActivationHistogram> {
  const byNode = new Map(histograms.histograms.map((h) => [h.node, h]));
  const shown = new Map<string, ActivationHistogram>();
  for (const node of nodes) {
    const own = byNode.get(node);
    const fused = own ?? histograms.histograms.find((h) => h.node.startsWith(`${node}_`) || h.node.startsWith(`${node}/`));
    if (fused) shown.set(node, fused);
  }
  return shown;
}

/** Why a panel has no data for a layer, or where its output is quantized: said in the panel instead of an empty frame. */
function panelNotes(nodes: string[], channels: WeightChannelsResult, shown: Map<string, ActivationHistogram>): { node: string; panel: "weights" | "histogram"; line: string; i: number }[] {
  const withWeights = new Set(channels.layers.map((l) => l.node));
  return nodes.flatMap((node) => {
    const notes: { panel: "weights" | "histogram"; text: string }[] = [];
    const h = shown.get(node);
    if (!h) notes.push({ panel: "histogram", text: `${node} has no output quantizer: its output is not quantized, here or at an activation fused with it.` });
    if (!withWeights.has(node)) notes.push({ panel: "weights", text: `${node} has no quantized weights (an activation, pooling or add): only its output is quantized.` });
    return notes.flatMap((n) => wrap(n.text, 38).map((line, i) => ({ node, panel: n.panel, line, i })));
  });
}

/**
 * One layer picker driving two linked views: that layer's per-output-channel
 * weight ranges (box plots) and its output's histogram with the quantization
 * range. The picked layer is in the title, so a PNG says which layer it shows;
 * a panel with no data for the layer says why. A Vega-Lite param bound to a
 * drop-down: it runs in the page, no kernel needed.
 */
export function layerExplorerView(channels: WeightChannelsResult, histograms: HistogramsResult, first?: string): View {
  const nodes = [...new Set([...channels.layers.map((l) => l.node), ...histograms.histograms.map((h) => h.node)])];
  if (nodes.length === 0) throw new Error("layerExplorerView: no layer has weights or an output histogram");
  if (first !== undefined && !nodes.includes(first)) throw new Error(`layerExplorerView: no layer "${first}" (layers: ${nodes.slice(0, 6).join(", ")}${nodes.length > 6 ? ", ..." : ""})`);
  const start = first ?? [...channels.layers].sort((a, b) => b.rangeRatio - a.rangeRatio)[0]?.node ?? nodes[0];
  const shown = outputHistograms(nodes, histograms);
  const bins = [...shown].flatMap(([node, h]) => h.bins.map((b) => ({ node, ...b })));
  const ranges = [...shown].flatMap(([node, h]) => [h.encodingMin, h.encodingMax].map((value) => ({ node, value })));
  const reasons = panelNotes(nodes, channels, shown);
  const maxCount = Math.max(1, ...bins.map((b) => b.count));
  const half = WIDTH / 2 - 30;
  const message = (panel: "weights" | "histogram") => ({
    data: { values: reasons.filter((r) => r.panel === panel) },
    transform: [{ filter: "datum.node === layer" }],
    mark: { type: "text", align: "left", baseline: "top", x: 8, fontSize: 11, color: "#555" },
    encoding: { y: { field: "i", type: "quantitative", scale: { domain: [0, 12], reverse: true }, axis: null }, text: { field: "line" } },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text: pickedTitle("Layer explorer: ", "layer"),
      subtitle: wrap("Pick a layer: its weights per output channel (left: min–max line, quartile box, median tick) and its output's histogram with the quantization range (right, dashed).", 100),
      anchor: "start",
    },
    usermeta: { title: `Layer explorer: ${start}` },
    params: [{ name: "layer", value: start, bind: { input: "select", options: nodes, name: "layer " } }],
    hconcat: [
      {
        title: "weights per output channel",
        width: half,
        height: 200,
        layer: [
          {
            data: { values: channels.rows },
            transform: [{ filter: "datum.node === layer" }],
            layer: [
              { mark: { type: "rule", color: "#555" }, encoding: { x: { field: "channel", type: "ordinal", title: "output channel", axis: { labelOverlap: "greedy", labelAngle: 0, ticks: false } }, y: { field: "min", type: "quantitative", title: "weight" }, y2: { field: "max" } } },
              { mark: { type: "bar", color: COLORS.weights }, encoding: { x: { field: "channel", type: "ordinal" }, y: { field: "q1", type: "quantitative" }, y2: { field: "q3" }, tooltip: [{ field: "quantizer" }, { field: "channel" }, { field: "min", format: ".3g" }, { field: "median", format: ".3g" }, { field: "max", format: ".3g" }] } },
            ],
          },
          message("weights"),
        ],
        resolve: { scale: { y: "independent" } },
      },
      {
        // Where runtimes fuse the layer with its activation, the title says whose output quantizer is shown.
        title: { text: { expr: `'output histogram' + (${JSON.stringify(Object.fromEntries([...shown].filter(([n, h]) => h.node !== n).map(([n, h]) => [n, ` (fused: ${h.node})`])))}[layer] || '')` } },
        width: half,
        height: 200,
        layer: [
          {
            data: { values: bins },
            transform: [{ filter: "datum.node === layer" }],
            mark: { type: "rect", color: COLORS.fp32 },
            encoding: { x: { field: "start", type: "quantitative", title: "value" }, x2: { field: "end" }, y: { field: "count", type: "quantitative", ...countAxis(maxCount) }, tooltip: [{ field: "start", format: ".3g" }, { field: "end", format: ".3g" }, { field: "count", format: "," }] },
          },
          {
            data: { values: ranges },
            transform: [{ filter: "datum.node === layer" }],
            mark: { type: "rule", color: COLORS.quantized, strokeDash: [5, 3], strokeWidth: 2 },
            encoding: { x: { field: "value", type: "quantitative" }, tooltip: [{ field: "value", format: ".4g", title: "range edge" }] },
          },
          message("histogram"),
        ],
        resolve: { scale: { y: "independent" } },
      },
    ],
  } as unknown as View;
}
