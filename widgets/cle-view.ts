import type { CleResult } from "../src/fix/cross-layer-equalization";
import { channelRangesView, ChannelRanges } from "./channel-ranges-view";
import { registerView } from "./registry";
import { COLORS, emptyView, logTicks, NAME_AXIS, ROW_STEP, significant, View, view, WIDTH } from "./spec";

type CleRecord = Pick<CleResult, "pairs" | "scales"> & Partial<Pick<CleResult, "rejected" | "relu6Replaced" | "relu6Rescaled">> & { diagnosis?: string; channelRanges?: ChannelRanges };

/**
 * Cross-layer equalization. With the channel ranges before and after (the
 * flow records them), the channel-range dumbbells; from the fix's result alone,
 * each equalized pair's per-channel scale factors as a range on a log axis
 * (smallest to largest, geometric mean marked): how far CLE had to stretch the
 * first layer's channels to even them out.
 */
export function cleView(result: CleRecord): View {
  if (result.channelRanges) return channelRangesView(result.channelRanges, "CLE");
  const title = "Cross-layer equalization: per-channel scale factors";
  if (result.pairs.length === 0) return emptyView(title, result.diagnosis ?? "No pair of layers joined by a ReLU could be equalized.");
  const rows = result.pairs.map((p, order) => {
    const s = (result.scales[p.first] ?? []).filter((v) => v > 0 && Number.isFinite(v));
    const geo = s.length ? Math.exp(s.reduce((a, v) => a + Math.log(v), 0) / s.length) : 1;
    return { pair: `${p.first} → ${p.second}`, first: p.first, order, min: s.length ? Math.min(...s) : 1, max: s.length ? Math.max(...s) : 1, geo, channels: s.length };
  });
  const widest = [...rows].sort((a, b) => b.max / b.min - a.max / a.min)[0];
  const y = { field: "first", type: "nominal", sort: { field: "order" }, title: "first layer of the pair", axis: NAME_AXIS } as const;
  const x = { type: "quantitative", scale: { type: "log", nice: false, padding: 10 }, axis: { values: logTicks(rows.flatMap((r) => [r.min, r.max])), format: "~g" }, title: "scale factor per output channel (log; 1 = unchanged)" } as const;
  return view(`${title}, widest spread in ${widest.first}`, result.diagnosis ?? `${rows.length} pairs equalized; ${widest.first}'s channels were scaled by ${significant(widest.min, 2)} to ${significant(widest.max, 2)}.`, {
    width: WIDTH - 120,
    height: { step: ROW_STEP + 2 },
    data: { values: rows },
    layer: [
      { mark: { type: "rule", color: COLORS.weights, strokeWidth: 3 }, encoding: { y, x: { field: "min", ...x }, x2: { field: "max" }, tooltip: [{ field: "pair" }, { field: "channels" }, { field: "min", format: ".3g" }, { field: "geo", format: ".3g", title: "geometric mean" }, { field: "max", format: ".3g" }] } },
      { mark: { type: "tick", color: "black", thickness: 2, size: 12 }, encoding: { y, x: { field: "geo", ...x } } },
      { mark: { type: "rule", strokeDash: [3, 3], color: "#888" }, encoding: { x: { datum: 1, ...x } } },
    ],
  });
}

registerView<CleRecord>("cleView", { steps: ["cross-layer-equalization"], matches: (x) => Array.isArray(x.pairs) && typeof x.scales === "object" }, cleView);
