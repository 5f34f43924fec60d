import type { TopLevelSpec } from "vega-lite";

/** What every view returns: a Vega-Lite v5 spec, plain JSON, nothing computed. */
export type View = TopLevelSpec & { $schema: string };

export const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/** Shared look: one width for all step views, so a notebook reads as one column. */
export const WIDTH = 560;

export const COLORS = {
  fp32: "#4c78a8",
  quantized: "#e45756",
  weights: "#f58518",
  activations: "#54a24b",
  pass: "#54a24b",
  fail: "#e45756",
  local: "#72b7b2",
  propagated: "#e45756",
};

/** A view with the schema and a title with the plain-language reading as its subtitle. */
export function view(title: string, subtitle: string | undefined, body: Record<string, unknown>): View {
  return {
    $schema: SCHEMA,
    title: { text: title, subtitle: subtitle ? wrap(subtitle, 100) : undefined, anchor: "start" },
    ...body,
  } as View;
}

/** Splits a long sentence into lines for a subtitle. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** Layer names on an axis: small enough for a hundred layers, long enough for MobileNetV2's names. */
export const NAME_AXIS = { labelLimit: 220, labelFontSize: 10, labelPadding: 4 } as const;

/** Rows per layer in views that list layers down the y axis. */
export const ROW_STEP = 14;

/** A metric as a view shows it: accuracy-like scores as percentages, others to a few significant digits. */
export interface MetricFormat {
  /** d3 format of a score (".2%") and of a change ("+.2%"); `axis` for tick labels, without trailing zeros. */
  score: string;
  axis: string;
  change: string;
  /** The same in JS, for titles and readings. */
  text: (v: number) => string;
  changeText: (v: number) => string;
}

export function metricFormat(metric: { metric: string } | undefined): MetricFormat {
  const m = metric?.metric;
  if (m === "accuracy" || m === "agreement") {
    return { score: ".2%", axis: ".1~%", change: "+.2%", text: (v) => `${(v * 100).toFixed(2)} %`, changeText: (v) => `${v >= 0 ? "+" : "−"}${Math.abs(v * 100).toFixed(2)} pt` };
  }
  if (m === "sqnr" || m === "psnr") return { score: ".1f", axis: "~f", change: "+.1f", text: (v) => `${v.toFixed(1)} dB`, changeText: (v) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(1)} dB` };
  return { score: ".4~g", axis: "~g", change: "+.3~g", text: (v) => significant(v, 4), changeText: (v) => `${v >= 0 ? "+" : "−"}${significant(Math.abs(v), 3)}` };
}

/** A number to `digits` significant digits, without float noise or trailing zeros (0.005125000000000018 → "0.00513"). */
export function significant(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const s = Number(v.toPrecision(digits));
  return Math.abs(s) >= 1e6 || Math.abs(s) < 1e-4 ? s.toExponential(digits - 1).replace(/\.?0+e/, "e") : String(s);
}

/**
 * A slider over [0, max]: a step of 1, 2 or 5 × 10^k giving about `ticks`
 * positions, the maximum rounded up to it, so the value the page prints is
 * 0.005 and not 0.005125000000000018.
 */
export function niceSlider(max: number, value: number, ticks = 50): { min: number; max: number; step: number; value: number } {
  const raw = Math.max(max, 1e-12) / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const clean = (x: number) => Number(x.toPrecision(12));
  const top = clean(Math.ceil(max / step - 1e-9) * step);
  return { min: 0, max: top, step: clean(step), value: clean(Math.min(top, Math.round(value / step) * step)) };
}

/** A view with nothing to draw: the title and, in the frame, why there is no data (no empty axes). */
export function emptyView(title: string, why: string): View {
  const lines = wrap(why, 90);
  return view(title, undefined, {
    width: WIDTH,
    height: { step: 18 },
    data: { values: lines.map((line, i) => ({ line, i })) },
    mark: { type: "text", align: "left", baseline: "top", fontSize: 13, color: "#555" },
    encoding: { text: { field: "line" }, x: { value: 0 }, y: { field: "i", type: "ordinal", axis: null } },
    config: { view: { stroke: null } },
  });
}

/**
 * A symlog count axis that does not crowd: ticks at powers of ten only (1, 10,
 * 100, 1k…) up to the largest count, instead of 10,000 / 20,000 / 40,000 piled
 * at the top.
 */
export function countAxis(maxCount: number): { scale: { type: "symlog" }; axis: { values: number[]; labelExpr: string; title: string } } {
  const values = [0, ...Array.from({ length: Math.max(1, Math.ceil(Math.log10(Math.max(maxCount, 1))) + 1) }, (_, k) => 10 ** k).filter((v) => v <= Math.max(maxCount, 1) * 1.0001)];
  // Each label formatted on its own: an axis format would give all ticks one SI prefix (0k, 0k, 1k).
  return { scale: { type: "symlog" }, axis: { values, labelExpr: "datum.value >= 1000 ? format(datum.value, '~s') : format(datum.value, 'd')", title: "count (symlog)" } };
}

/** A title that names what a picker selected, in the page and in the PNG alike (a Vega expression over the param). */
export function pickedTitle(prefix: string, param: string): { expr: string } {
  return { expr: `${JSON.stringify(prefix)} + ${param}` };
}

/**
 * A score axis' domain: the scores with room for labels beside them, never past
 * 0–100 % for accuracy-like metrics (an axis running to 102 % reads as an error).
 */
export function scoreDomain(scores: number[], metric: { metric: string } | undefined, room = 0.15): [number, number] {
  const lo = Math.min(...scores);
  const hi = Math.max(...scores);
  const span = Math.max(hi - lo, Math.abs(hi) * 1e-3, 1e-9);
  const bounded = metric?.metric === "accuracy" || metric?.metric === "agreement";
  const domain: [number, number] = [lo - span * room, hi + span * room];
  return bounded ? [Math.max(0, domain[0]), Math.min(1, domain[1])] : domain;
}

/** Tick values for a log axis: powers of ten across [min, max] only (a log axis otherwise draws a grid line at every 2…9 × 10^k). */
export function logTicks(values: number[]): number[] {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return [1];
  const min = Math.min(...positive);
  const max = Math.max(...positive);
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  // Over two decades or less, 2 and 5 too, so the axis has more than one label.
  const steps = hi - lo <= 2 ? [1, 2, 5] : [1];
  const ticks = Array.from({ length: hi - lo + 1 }, (_, k) => steps.map((m) => Number((m * 10 ** (lo + k)).toPrecision(6)))).flat();
  const inside = ticks.filter((t) => t >= min * 0.999 && t <= max * 1.001);
  return inside.length >= 2 ? inside : ticks.filter((t) => t <= max * 10 && t >= min / 10);
}

/**
 * A view's title as plain text (for text/plain outputs and readings): its
 * text, or, for a title that is a Vega expression over a picker, the title it
 * shows first, which the view keeps in `usermeta.title`.
 */
export function plainTitle(v: View): string | undefined {
  const title = (v as { title?: { text?: unknown } | string }).title;
  const text = typeof title === "string" ? title : title?.text;
  if (typeof text === "string") return text;
  const meta = (v as { usermeta?: { title?: unknown } }).usermeta?.title;
  return typeof meta === "string" ? meta : undefined;
}
