import * as tf from "@tensorflow/tfjs";

/** A plain, serializable histogram: `counts[i]` values fell in [edges[i], edges[i+1]). */
export interface HistogramJSON {
  min: number;
  max: number;
  count: number;
  binWidth: number;
  edges: number[];
  counts: number[];
}

const DEFAULT_BINS = 2048;

/**
 * Streaming statistics of one tensor across calibration batches, in bounded
 * memory: min, max, count, and a histogram of at most `bins` bins on a grid
 * anchored at 0 with a power-of-two bin width. When a batch falls outside the
 * current bins, the width doubles and neighbouring bins merge exactly, so the
 * histogram never depends on the order of the batches' ranges more than
 * through that width.
 */
export class TensorStats {
  min = Infinity;
  max = -Infinity;
  count = 0;
  private readonly bins: number;
  private width = 0;
  /** Grid index of counts[0]: the bin covering [first*width, (first+1)*width). */
  private first = 0;
  private counts: Float64Array;

  constructor(options: { bins?: number } = {}) {
    this.bins = options.bins ?? DEFAULT_BINS;
    if (!Number.isInteger(this.bins) || this.bins < 16) throw new Error(`TensorStats: bins must be an integer >= 16, got ${options.bins}`);
    this.counts = new Float64Array(this.bins);
  }

  /** Adds a tensor's values (read once). NaN or ±Inf is an error saying how many. */
  update(t: tf.Tensor): void {
    this.addValues(t.dataSync() as ArrayLike<number>);
  }

  addValues(values: ArrayLike<number>): void {
    let lo = Infinity;
    let hi = -Infinity;
    let bad = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (v - v !== 0) bad++; // NaN and ±Inf, in one comparison
    }
    if (bad > 0) {
      let nan = 0;
      for (let i = 0; i < values.length; i++) if (values[i] !== values[i]) nan++;
      throw new Error(`saw ${bad} NaN or infinite value(s) among ${values.length} (${nan} NaN, ${bad - nan} infinite)`);
    }
    if (values.length === 0) return;
    this.fit(Math.min(lo, this.min), Math.max(hi, this.max));
    const inv = 1 / this.width;
    const counts = this.counts;
    const first = this.first;
    const last = this.bins - 1;
    for (let i = 0; i < values.length; i++) {
      let k = Math.floor(values[i] * inv) - first;
      if (k > last) k = last; // values exactly at the top edge
      counts[k]++;
    }
    this.min = Math.min(this.min, lo);
    this.max = Math.max(this.max, hi);
    this.count += values.length;
  }

  /** Adds another observer's statistics (leaves `other` as it was). */
  merge(other: TensorStats): void {
    if (other.count === 0) return;
    this.fit(Math.min(this.min, other.min), Math.max(this.max, other.max), other.width);
    // Widths are powers of two on a grid anchored at 0, and ours is now at least
    // theirs, so each of their bins lies inside exactly one of ours.
    for (let k = 0; k < other.bins; k++) {
      if (other.counts[k]) this.counts[Math.floor(((other.first + k + 0.5) * other.width) / this.width) - this.first] += other.counts[k];
    }
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
    this.count += other.count;
  }

  /** Bin centers and counts of the non-empty span, for range searches. */
  occupiedBins(): { centers: Float64Array; counts: Float64Array; width: number } {
    let a = 0;
    let b = this.bins - 1;
    while (a < b && this.counts[a] === 0) a++;
    while (b > a && this.counts[b] === 0) b--;
    const centers = new Float64Array(b - a + 1);
    for (let k = a; k <= b; k++) centers[k - a] = (this.first + k + 0.5) * this.width;
    return { centers, counts: this.counts.slice(a, b + 1), width: this.width };
  }

  /** The value below which `fraction` of the values lie (linear inside a bin). */
  quantile(fraction: number): number {
    if (this.count === 0) throw new Error("quantile of an empty TensorStats");
    const target = fraction * this.count;
    let seen = 0;
    for (let k = 0; k < this.bins; k++) {
      const c = this.counts[k];
      if (c > 0 && seen + c >= target) {
        const lo = (this.first + k) * this.width;
        const v = lo + ((target - seen) / c) * this.width;
        return Math.min(this.max, Math.max(this.min, v));
      }
      seen += c;
    }
    return this.max;
  }

  toJSON(): HistogramJSON {
    const { counts, width } = this.occupiedBins();
    let a = 0;
    while (a < this.bins && this.counts[a] === 0) a++;
    const start = (this.first + a) * width;
    return {
      min: this.min,
      max: this.max,
      count: this.count,
      binWidth: width,
      edges: Array.from({ length: counts.length + 1 }, (_, i) => start + i * width),
      counts: Array.from(counts),
    };
  }

  /** Makes the bins cover [lo, hi] (which includes all values seen), doubling the width as needed. */
  private fit(lo: number, hi: number, atLeastWidth = 0): void {
    if (this.width === 0) {
      const span = Math.max(hi - lo, Math.abs(hi), Math.abs(lo), 1e-12);
      this.width = Math.max(2 ** Math.ceil(Math.log2(span / (this.bins - 2))), atLeastWidth);
      this.first = Math.floor(lo / this.width);
    }
    while (this.width < atLeastWidth || Math.floor(hi / this.width) - Math.floor(lo / this.width) >= this.bins) this.rebin(this.width * 2);
    const lowest = Math.floor(lo / this.width);
    if (lowest < this.first || Math.floor(hi / this.width) >= this.first + this.bins) {
      const shifted = new Float64Array(this.bins);
      for (let k = 0; k < this.bins; k++) if (this.counts[k]) shifted[this.first + k - lowest] += this.counts[k];
      this.counts = shifted;
      this.first = lowest;
    }
  }

  private rebin(width: number): void {
    const factor = width / this.width;
    const merged = new Float64Array(this.bins);
    const first = Math.floor(this.first / factor);
    for (let k = 0; k < this.bins; k++) if (this.counts[k]) merged[Math.floor((this.first + k) / factor) - first] += this.counts[k];
    this.counts = merged;
    this.first = first;
    this.width = width;
  }
}

/** Per-channel min and max of a tensor along `axis` (weights), read once. */
export function channelMinMax(t: tf.Tensor, axis: number): { min: number; max: number }[] {
  const a = axis < 0 ? axis + t.rank : axis;
  const channels = t.shape[a];
  const inner = t.shape.slice(a + 1).reduce((x, y) => x * y, 1);
  const values = t.dataSync();
  const out = Array.from({ length: channels }, () => ({ min: Infinity, max: -Infinity }));
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const v = values[i];
    if (v < out[c].min) out[c].min = v;
    if (v > out[c].max) out[c].max = v;
  }
  return out;
}
