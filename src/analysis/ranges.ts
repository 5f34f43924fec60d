import { Encoding } from "../quant/encoding";
import { QuantSim } from "../quant/quantsim";

export interface EncodingRangeRow {
  index: number;
  quantizer: string;
  node: string;
  kind: "weight" | "bias" | "activation";
  bitwidth: number;
  scheme: string;
  perChannel: boolean;
  /** The encoding's range (over all channels when per channel). */
  min: number;
  max: number;
  /** Step of the grid (largest over channels when per channel). */
  scale: number;
  /** What calibration saw (activations only). */
  observedMin: number | null;
  observedMax: number | null;
}

export interface RangesResult {
  step: "ranges";
  rows: EncodingRangeRow[];
  diagnosis: string;
}

/** Per-quantizer encoding ranges, weights and activations, in execution order (AIMET's per-layer min/max). */
export function encodingRanges(sim: QuantSim): RangesResult {
  const rows: EncodingRangeRow[] = [];
  sim.sites.forEach((site) => {
    const enc = sim.encodingOf(site.name);
    if (!enc) return;
    const list: Encoding[] = Array.isArray(enc) ? enc : [enc];
    const s = sim.settingsOf(site.name);
    const stats = site.kind === "activation" ? sim.statsOf(site.name) : undefined;
    rows.push({
      index: rows.length,
      quantizer: site.name,
      node: site.node,
      kind: site.kind,
      bitwidth: s.bitwidth,
      scheme: s.scheme,
      perChannel: list.length > 1,
      min: Math.min(...list.map((e) => e.min)),
      max: Math.max(...list.map((e) => e.max)),
      scale: Math.max(...list.map((e) => e.scale)),
      observedMin: stats ? stats.min : null,
      observedMax: stats ? stats.max : null,
    });
  });
  const acts = rows.filter((r) => r.kind === "activation");
  const widest = [...acts].sort((a, b) => b.max - b.min - (a.max - a.min))[0];
  const median = acts.map((r) => r.max - r.min).sort((a, b) => a - b)[Math.floor(acts.length / 2)];
  const diagnosis = widest
    ? `The widest activation range is ${widest.quantizer} ([${widest.min.toPrecision(3)}, ${widest.max.toPrecision(3)}]), ${((widest.max - widest.min) / median).toFixed(1)}× the median range: a wide range means a coarse grid (step ${widest.scale.toPrecision(3)}) for all its values.`
    : "No activation quantizer is enabled.";
  return { step: "ranges", rows, diagnosis };
}
