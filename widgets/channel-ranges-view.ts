import type { WeightLayerSummary } from "../src/analysis/weight-channels";
import { registerView } from "./registry";
import { COLORS, emptyView, NAME_AXIS, ROW_STEP, significant, View, view, WIDTH } from "./spec";

export interface ChannelRanges {
  before: WeightLayerSummary[];
  after: WeightLayerSummary[];
}

/** Layers whose change is written beside them. */
const LABELLED = 3;

/**
 * A ratio that is not a number a log axis can place: a layer with a constant
 * channel (range 0) reports Infinity, or Number.MAX_VALUE (or null) once
 * through JSON.
 */
const constant = (ratio: number | null) => ratio === null || !Number.isFinite(ratio) || ratio >= 1e300;
/** The ratio, or null for a constant channel (so 1.797e308 never reaches the spec, a tooltip or a label). */
const bounded = (ratio: number | null) => (constant(ratio) ? null : ratio);

/**
 * Before/after a weight fix (CLE, folding): each layer's ratio of widest to
 * narrowest output-channel range, on a log scale, as a dumbbell from before to
 * after, one named row per layer. A per-tensor grid must span the widest
 * channel, so a ratio near 1 is what equalization aims for. A layer with a
 * constant channel (range 0, ratio unbounded) is drawn at the right edge as a
 * triangle and said so; the layers that changed most carry their ratios.
 */
export function channelRangesView(ranges: ChannelRanges, fix = "the fix"): View {
  const title = `Per-channel weight ranges before and after ${fix}`;
  const after = new Map(ranges.after.map((l) => [l.node, l]));
  const layers = ranges.before.filter((l) => after.has(l.node)).map((l) => ({ layer: l.node, index: l.index, before: bounded(l.rangeRatio), after: bounded(after.get(l.node)!.rangeRatio) }));
  if (layers.length === 0) return emptyView(title, `No weight layer is in both the model before and after ${fix}: nothing to compare.`);
  const finite = layers.flatMap((r) => [r.before, r.after]).filter((v): v is number => !constant(v));
  const top = Math.max(10, ...finite);
  // Unbounded ratios sit one notch right of the largest finite one.
  const edge = 10 ** (Math.ceil(Math.log10(top)) + 0.5);
  const ticks = [...Array.from({ length: Math.ceil(Math.log10(top)) + 1 }, (_, k) => 10 ** k), edge];
  const placed = (v: number | null) => (constant(v) ? edge : Math.max(1, v!));
  const text = (v: number | null) => (constant(v) ? "constant channel" : `${significant(v!, 3)}×`);
  const changed = layers.filter((r) => !constant(r.before) && !constant(r.after)).sort((a, b) => b.before! / b.after! - a.before! / a.after!).slice(0, LABELLED);
  const labelled = new Set(changed.map((r) => r.layer));
  const rows = layers.map((r) => ({ ...r, beforeAt: placed(r.before), afterAt: placed(r.after), label: labelled.has(r.layer) ? `${text(r.before)} → ${text(r.after)}` : "" }));
  const long = rows.flatMap((r) => [
    { layer: r.layer, index: r.index, when: "before", ratio: r.beforeAt, value: text(r.before), constant: constant(r.before) },
    { layer: r.layer, index: r.index, when: "after", ratio: r.afterAt, value: text(r.after), constant: constant(r.after) },
  ]);
  const improved = layers.filter((r) => (constant(r.before) ? !constant(r.after) : !constant(r.after) && r.after! < r.before!)).length;
  const stillConstant = layers.filter((r) => constant(r.after));
  const worst = (key: "before" | "after") => Math.max(...layers.map((r) => r[key]).filter((v): v is number => !constant(v)), 1);
  const reading = [
    `${improved} of ${layers.length} layers have more even channel ranges after ${fix}; the widest finite ratio went from ${significant(worst("before"), 3)}× to ${significant(worst("after"), 3)}×.`,
    stillConstant.length ? `${stillConstant.length} layer${stillConstant.length > 1 ? "s have" : " has"} a constant output channel after it (range 0, so the ratio is unbounded: drawn as ▶ at the right edge): ${stillConstant.slice(0, 4).map((r) => r.layer).join(", ")}${stillConstant.length > 4 ? ", …" : ""}. Such a channel is dead; it costs nothing on a per-tensor grid.` : "",
    "Lower is better for per-tensor weights.",
  ].filter(Boolean).join(" ");
  const y = { field: "layer", type: "nominal", sort: { field: "index" }, title: null, axis: NAME_AXIS } as const;
  const x = { type: "quantitative", scale: { type: "log", domain: [1, edge * 1.5], nice: false }, title: "largest / smallest channel range (log)", axis: { values: ticks, labelExpr: `datum.value >= ${edge * 0.99} ? 'constant ▶' : format(datum.value, '~s') + '×'` } } as const;
  return view(title, reading, {
    width: WIDTH,
    height: { step: ROW_STEP },
    layer: [
      { data: { values: rows }, mark: { type: "rule", color: "#999" }, encoding: { y, x: { field: "beforeAt", ...x }, x2: { field: "afterAt" } } },
      {
        data: { values: long },
        mark: { type: "point", filled: true, size: 50 },
        encoding: {
          y,
          x: { field: "ratio", ...x },
          color: { field: "when", type: "nominal", scale: { domain: ["before", "after"], range: [COLORS.quantized, COLORS.pass] }, title: null, legend: { orient: "top" } },
          shape: { field: "constant", type: "nominal", scale: { domain: [false, true], range: ["circle", "triangle-right"] }, legend: null },
          tooltip: [{ field: "layer" }, { field: "when" }, { field: "value", title: "ratio" }],
        },
      },
      { data: { values: rows }, mark: { type: "text", align: "left", dx: 8, fontSize: 10, fontWeight: "bold" }, encoding: { y, x: { field: "beforeAt", ...x }, text: { field: "label" } } },
    ],
  });
}

/** CLE as the flow records it (`channelRanges: { before, after }`), or the before/after pair itself. */
registerView<{ channelRanges?: ChannelRanges }>(
  "channelRangesView",
  { matches: (x) => typeof x.channelRanges === "object" || (Array.isArray(x.before) && Array.isArray(x.after) && (x.before as { rangeRatio?: number }[])[0]?.rangeRatio !== undefined) },
  (r) => channelRangesView(r.channelRanges ?? (r as unknown as ChannelRanges), "CLE"),
);
