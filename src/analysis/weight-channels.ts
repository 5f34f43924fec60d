import { QuantSim } from "../quant/quantsim";

/** One output channel of one weight tensor: the five numbers of a box plot. */
export interface ChannelStatsRow {
  quantizer: string;
  node: string;
  channel: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
}

export interface WeightLayerSummary {
  index: number;
  quantizer: string;
  node: string;
  channels: number;
  /** Largest channel range (max - min) over the smallest: how uneven the channels are. */
  rangeRatio: number;
  widestChannel: number;
  narrowestChannel: number;
}

export interface WeightChannelsResult {
  step: "weight-channels";
  rows: ChannelStatsRow[];
  layers: WeightLayerSummary[];
  diagnosis: string;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Per-output-channel weight statistics (min, quartiles, max) for every weight
 * quantizer, and each layer's ratio of largest to smallest channel range: the
 * guidebook's per-channel view, where one channel with a much wider range
 * forces a coarse per-tensor grid on all the others.
 */
export function weightChannelStats(sim: QuantSim): WeightChannelsResult {
  const rows: ChannelStatsRow[] = [];
  const layers: WeightLayerSummary[] = [];
  for (const site of sim.sites) {
    if (site.kind !== "weight") continue;
    const t = sim.graph.node(site.node).params[site.param!];
    const values = t.dataSync();
    const shape = site.channelShape ?? t.shape;
    const axis = site.channelAxis!;
    const channels = shape[axis];
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const perChannel = Array.from({ length: channels }, () => [] as number[]);
    for (let i = 0; i < values.length; i++) perChannel[Math.floor(i / inner) % channels].push(values[i]);
    const ranges: number[] = [];
    perChannel.forEach((vs, channel) => {
      vs.sort((a, b) => a - b);
      rows.push({ quantizer: site.name, node: site.node, channel, min: vs[0], q1: quantile(vs, 0.25), median: quantile(vs, 0.5), q3: quantile(vs, 0.75), max: vs[vs.length - 1] });
      ranges.push(vs[vs.length - 1] - vs[0]);
    });
    const widest = ranges.indexOf(Math.max(...ranges));
    const narrowest = ranges.indexOf(Math.min(...ranges));
    layers.push({
      index: layers.length,
      quantizer: site.name,
      node: site.node,
      channels,
      rangeRatio: ranges[narrowest] > 0 ? ranges[widest] / ranges[narrowest] : Infinity,
      widestChannel: widest,
      narrowestChannel: narrowest,
    });
  }
  // Infinity is not JSON: a layer with a constant channel reports a very large finite ratio.
  for (const l of layers) if (!Number.isFinite(l.rangeRatio)) l.rangeRatio = Number.MAX_VALUE;
  const worst = [...layers].sort((a, b) => b.rangeRatio - a.rangeRatio)[0];
  const diagnosis = !worst
    ? "The simulation quantizes no weights."
    : worst.rangeRatio > 10
      ? `${worst.quantizer} has the most uneven channels: channel ${worst.widestChannel}'s range is ${rangeRatioText(worst.rangeRatio, 0)} channel ${worst.narrowestChannel}'s. With one grid per tensor, the narrow channels get only a few levels: use per-channel quantization or cross-layer equalization for this layer.`
      : `Channel ranges are even (the largest ratio is ${rangeRatioText(worst.rangeRatio)}, in ${worst.quantizer}): per-tensor weight quantization suits these layers.`;
  return { step: "weight-channels", rows, layers, diagnosis };
}

/** "12.3×", or words for a ratio over a channel of zero range (stored as Number.MAX_VALUE: JSON has no Infinity). */
export function rangeRatioText(ratio: number, digits = 1): string {
  return ratio >= Number.MAX_VALUE ? "unbounded (a channel of constant weights)" : `${ratio.toFixed(digits)}×`;
}
