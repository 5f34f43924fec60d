import { registerView } from "./registry";
import { COLORS, metricFormat, NAME_AXIS, View, view, WIDTH } from "./spec";

interface RangeSettingRecord {
  rows: { method: string; score: number }[];
  current: string;
  /** The scores' metric (a score result's `metric`): accuracy reads as percentages, on an axis named after it. */
  metric?: { metric: string; label?: string };
}

interface RaisedRecord {
  raised: { quantizer: string; bitwidth: number; score: number }[];
}

/** The flow's range-setting step: each activation range method's score, the best one labelled. */
export function rangeSettingView(result: RangeSettingRecord): View {
  const best = result.rows.reduce((a, b) => (b.score > a.score ? b : a));
  const rows = result.rows.map((r, order) => ({ ...r, order, best: r.method === best.method ? "best" : "" }));
  const format = metricFormat(result.metric);
  return view(`Activation range setting: ${best.method} scores best`, `Each method sets every activation range from the same calibration statistics (the simulation used ${result.current}).`, {
    width: WIDTH - 120,
    height: { step: 22 },
    data: { values: rows },
    encoding: { y: { field: "method", type: "nominal", sort: { field: "order" }, title: null, axis: NAME_AXIS } },
    layer: [
      {
        mark: { type: "point", filled: true, size: 90, color: COLORS.activations },
        encoding: {
          x: { field: "score", type: "quantitative", scale: { zero: false, padding: 30 }, title: result.metric?.label ?? "score", axis: { format: format.axis } },
          tooltip: [{ field: "method" }, { field: "score", format: format.score }],
        },
      },
      { mark: { type: "text", align: "left", dx: 8, fontSize: 11 }, encoding: { x: { field: "score", type: "quantitative" }, text: { field: "score", format: format.score } } },
    ],
  });
}

/** The flow's "fix individual quantizers" step: the score after each quantizer was raised, in the order they were. */
export function raisedQuantizersView(result: RaisedRecord): View {
  const rows = result.raised.map((r, order) => ({ ...r, order, label: `${r.quantizer} → ${r.bitwidth} bits` }));
  return view(`Raised ${rows.length} quantizer${rows.length === 1 ? "" : "s"} to higher precision`, "Most sensitive first (from the per-layer analysis); each point is the score with it and those before it raised.", {
    width: WIDTH - 120,
    height: { step: 22 },
    data: { values: rows },
    encoding: { y: { field: "label", type: "nominal", sort: { field: "order" }, title: null, axis: NAME_AXIS } },
    layer: [
      { mark: { type: "line", color: "#999" }, encoding: { x: { field: "score", type: "quantitative", scale: { zero: false, padding: 30 }, title: "score" }, order: { field: "order" } } },
      { mark: { type: "point", filled: true, size: 90, color: COLORS.weights }, encoding: { x: { field: "score", type: "quantitative" }, tooltip: [{ field: "quantizer" }, { field: "bitwidth" }, { field: "score", format: ".4~g" }] } },
      { mark: { type: "text", align: "left", dx: 8, fontSize: 11 }, encoding: { x: { field: "score", type: "quantitative" }, text: { field: "score", format: ".4~g" } } },
    ],
  });
}

registerView<RangeSettingRecord>("rangeSettingView", { steps: ["range-setting"], matches: (x) => Array.isArray(x.rows) && typeof x.current === "string" }, rangeSettingView);
registerView<RaisedRecord>("raisedQuantizersView", { steps: ["fix-quantizers"], matches: (x) => Array.isArray(x.raised) }, raisedQuantizersView);
