import type { WeightLayerSummary } from "../src/analysis/weight-channels";
import { COLORS, View, view, WIDTH } from "./spec";

/**
 * Before/after a weight fix (CLE, folding): each layer's ratio of widest to
 * narrowest output-channel range, on a log scale, as a dumbbell from before to
 * after. A per-tensor grid must span the widest channel, so a ratio near 1 is
 * what equalization aims for.
 */
export function channelRangesView(ranges: { before: WeightLayerSummary[]; after: WeightLayerSummary[] }, fix = "the fix"): View {
  const after = new Map(ranges.after.map((l) => [l.node, l]));
  const rows = ranges.before
    .filter((l) => after.has(l.node))
    .map((l) => ({ layer: l.node, index: l.index, before: l.rangeRatio, after: after.get(l.node)!.rangeRatio }));
  const improved = rows.filter((r) => r.after < r.before).length;
  const worst = (key: "before" | "after") => Math.max(...rows.map((r) => r[key]));
  const reading = `${improved} of ${rows.length} layers have more even channel ranges after ${fix}; the widest ratio went from ${worst("before").toFixed(1)} to ${worst("after").toFixed(1)}. Lower is better for per-tensor weights.`;
  const long = rows.flatMap((r) => [
    { layer: r.layer, index: r.index, when: "before", ratio: r.before },
    { layer: r.layer, index: r.index, when: "after", ratio: r.after },
  ]);
  const y = { field: "layer", type: "nominal", sort: { field: "index" }, title: null } as const;
  const x = { type: "quantitative", scale: { type: "log" }, title: "largest / smallest channel range" } as const;
  return view(`Per-channel weight ranges before and after ${fix}`, reading, {
    width: WIDTH,
    height: { step: 14 },
    layer: [
      { data: { values: rows }, mark: { type: "rule", color: "#999" }, encoding: { y, x: { field: "before", ...x }, x2: { field: "after" } } },
      {
        data: { values: long },
        mark: { type: "point", filled: true, size: 60 },
        encoding: {
          y,
          x: { field: "ratio", ...x },
          color: { field: "when", type: "nominal", scale: { domain: ["before", "after"], range: [COLORS.quantized, COLORS.pass] }, title: null },
          tooltip: [{ field: "layer" }, { field: "when" }, { field: "ratio", format: ".2f" }],
        },
      },
    ],
  });
}
