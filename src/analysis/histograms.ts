import { Encoding } from "../quant/encoding";
import { QuantSim } from "../quant/quantsim";

export interface HistogramBin {
  start: number;
  end: number;
  count: number;
}

export interface ActivationHistogram {
  index: number;
  quantizer: string;
  node: string;
  observedMin: number;
  observedMax: number;
  /** The quantization range drawn on the histogram. */
  encodingMin: number;
  encodingMax: number;
  scale: number;
  bitwidth: number;
  /** Share of calibration values outside the encoding range (clipped). */
  clippedFraction: number;
  bins: HistogramBin[];
}

export interface HistogramsResult {
  step: "histograms";
  histograms: ActivationHistogram[];
  diagnosis: string;
}

/**
 * Activation histograms from calibration (at most `maxBins` bins each, merged
 * from the streaming histogram), with each quantizer's range and the share of
 * values it clips.
 */
export function activationHistograms(sim: QuantSim, options: { maxBins?: number } = {}): HistogramsResult {
  const maxBins = options.maxBins ?? 128;
  if (!sim.calibrated) throw new Error("activation histograms need a calibrated simulation: sim = await sim.calibrate(data)");
  const histograms: ActivationHistogram[] = [];
  for (const site of sim.sites) {
    if (site.kind !== "activation") continue;
    const stats = sim.statsOf(site.name);
    const enc = sim.encodingOf(site.name) as Encoding | null;
    if (!stats || !enc) continue;
    const h = stats.toJSON();
    const group = Math.max(1, Math.ceil(h.counts.length / maxBins));
    const bins: HistogramBin[] = [];
    // Values beyond the range by less than half a step round onto the grid's end: not clipped.
    const lo = enc.min - enc.scale / 2;
    const hi = enc.max + enc.scale / 2;
    let clipped = 0;
    h.counts.forEach((count, i) => {
      // The part of the bin where values can lie, spread evenly inside it.
      const start = Math.max(h.edges[i], h.min);
      const end = Math.min(h.edges[i + 1], h.max);
      const width = end - start;
      const outside = Math.max(0, Math.min(end, lo) - start) + Math.max(0, end - Math.max(start, hi));
      clipped += width > 0 ? (count * Math.min(width, outside)) / width : start < lo || start > hi ? count : 0;
      if (i % group === 0) bins.push({ start: h.edges[i], end: h.edges[i + 1], count });
      else {
        bins[bins.length - 1].end = h.edges[i + 1];
        bins[bins.length - 1].count += count;
      }
    });
    histograms.push({
      index: histograms.length,
      quantizer: site.name,
      node: site.node,
      observedMin: h.min,
      observedMax: h.max,
      encodingMin: enc.min,
      encodingMax: enc.max,
      scale: enc.scale,
      bitwidth: enc.bitwidth,
      clippedFraction: h.count ? clipped / h.count : 0,
      bins,
    });
  }
  const clipping = histograms.filter((h) => h.clippedFraction > 1e-4).sort((a, b) => b.clippedFraction - a.clippedFraction);
  const diagnosis = clipping.length
    ? `${clipping.slice(0, 3).map((h) => `${h.quantizer} clips ${(100 * h.clippedFraction).toFixed(2)} %`).join(", ")} of the calibration values. Clipping a few outliers can be right (it buys a finer grid); if a sweep marks these layers as sensitive, widen their range.`
    : "No activation quantizer clips calibration values: the ranges cover everything seen. If a layer is still sensitive, its range may be too wide (outliers stretching the grid): try percentile or MSE range setting.";
  return { step: "histograms", histograms, diagnosis };
}
