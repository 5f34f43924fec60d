import type { AbsorbedPair } from "../src/fix/high-bias-absorption";
import { registerView } from "./registry";
import { COLORS, emptyView, NAME_AXIS, ROW_STEP, significant, View, view, WIDTH } from "./spec";

interface HighBiasRecord {
  /** The fix's own reading (fixes carry one); the view's reading otherwise. */
  diagnosis?: string;
  absorbed: AbsorbedPair[];
  approximate?: string[];
  skipped?: { first: string; second: string; reason: string }[];
}

/**
 * High-bias absorption: per pair of layers, how much bias moved from the first
 * into the second (the largest and the mean over the channels that gave some),
 * with the number of channels written beside it. Pairs that absorbed nothing
 * are left out and counted in the reading.
 */
export function highBiasView(result: HighBiasRecord): View {
  const title = "High-bias absorption";
  const pairs = result.absorbed.map((p, order) => ({ ...p, order, pair: `${p.first} → ${p.second}`, text: `${p.channels} ch`, approximate: (result.approximate ?? []).some((a) => a.includes(p.second)) }));
  const active = pairs.filter((p) => p.channels > 0);
  const skipped = result.skipped ?? [];
  if (active.length === 0) {
    return emptyView(
      `${title}: nothing to absorb`,
      `None of the ${pairs.length} pairs of layers has a channel whose bias exceeds three standard deviations of its BatchNorm output (β > 3|γ|), so no bias was moved.${skipped.length ? ` ${skipped.length} pair${skipped.length > 1 ? "s" : ""} could not absorb: ${skipped.slice(0, 3).map((s) => `${s.first} → ${s.second} (${s.reason})`).join("; ")}.` : ""}`,
    );
  }
  const channels = active.reduce((n, p) => n + p.channels, 0);
  const largest = [...active].sort((a, b) => b.maxAbsorbed - a.maxAbsorbed)[0];
  const reading = `${channels} channels in ${active.length} of ${pairs.length} pairs moved part of their bias into the next layer; the most from ${largest.first} (up to ${significant(largest.maxAbsorbed, 3)}). This narrows the first layer's output range, so its activation grid gets finer.${result.approximate?.length ? ` ${result.approximate.length} pairs zero-pad at the borders, where absorption is approximate.` : ""}${pairs.length > active.length ? ` ${pairs.length - active.length} pairs had nothing to absorb.` : ""}`;
  // Rows are named by the layer that gives up bias; the pair is in the tooltip.
  const y = { field: "first", type: "nominal", sort: { field: "order", op: "min" }, title: "layer giving up bias (→ next layer)", axis: NAME_AXIS } as const;
  const x = { type: "quantitative", title: "bias absorbed per channel (largest bar, mean tick)" } as const;
  return view(`${title}: ${channels} channels absorbed, most in ${largest.first}`, result.diagnosis ?? reading, {
    width: WIDTH - 160,
    height: { step: ROW_STEP },
    data: { values: active },
    layer: [
      { mark: { type: "bar", color: COLORS.weights, height: 9 }, encoding: { y, x: { field: "maxAbsorbed", ...x }, tooltip: [{ field: "pair" }, { field: "channels" }, { field: "maxAbsorbed", format: ".3g", title: "largest" }, { field: "meanAbsorbed", format: ".3g", title: "mean" }, { field: "approximate", title: "approximate at borders" }] } },
      { mark: { type: "tick", color: "black", thickness: 2, size: 11 }, encoding: { y, x: { field: "meanAbsorbed", ...x } } },
      { mark: { type: "text", align: "left", dx: 4, fontSize: 10 }, encoding: { y, x: { field: "maxAbsorbed", ...x }, text: { field: "text" } } },
    ],
  });
}

registerView<HighBiasRecord>("highBiasView", { steps: ["high-bias-absorption"], matches: (x) => Array.isArray(x.absorbed) }, highBiasView);
