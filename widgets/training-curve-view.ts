import type { CurvePoint } from "../src/fix/training-curve";
import { metricFormat, View, view, WIDTH } from "./spec";
import { registerView } from "./registry";

export interface TrainingCurveViewOptions {
  /** Default: "Training curve" (one run) or "Training curves" (several). */
  title?: string;
  /** With several runs (AdaRound: one per layer), the run the picker starts on (default: the first; ALL_RUNS for all). */
  run?: string;
  /** Title of the x axis (default "step"). */
  stepTitle?: string;
  /** Dashed reference lines, each in its series' chart: e.g. { series: "accuracy", value: 0.98, label: "FP32" }. */
  references?: { series: string; value: number; label: string }[];
}

/** The picker's entry that shows every run at once. */
export const ALL_RUNS = "(all runs)";

/** Above this many points in one line, points are not drawn on it. */
const MAX_POINTS_DRAWN = 60;

/**
 * Training curves (QAT's loss and validation metric, AdaRound's per-layer
 * losses): one small chart per series, stacked, each with its own y scale (a
 * loss and an accuracy do not share units) over a shared step axis. Several
 * runs get a run picker (a Vega-Lite param bound to a drop-down, so it works
 * without a kernel) with an "(all runs)" entry that draws them together, one
 * colour per run.
 */
export function trainingCurveView(curve: readonly CurvePoint[], options: TrainingCurveViewOptions = {}): View {
  if (curve.length === 0) throw new Error("trainingCurveView: the curve has no points");
  const runs = unique(curve.map((p) => p.run));
  const series = unique(curve.map((p) => p.series));
  const several = runs.length > 1;
  if (options.run !== undefined && options.run !== ALL_RUNS && !runs.includes(options.run)) throw new Error(`trainingCurveView: no run "${options.run}" in the curve (runs: ${runs.slice(0, 6).join(", ")}${runs.length > 6 ? ", ..." : ""})`);
  const longest = Math.max(...countBy(curve, (p) => `${p.run}\u0000${p.series}`).values());
  const references = options.references ?? [];
  for (const r of references) {
    if (!series.includes(r.series)) throw new Error(`trainingCurveView: reference "${r.label}" is for series "${r.series}", which the curve does not have (series: ${series.join(", ")})`);
  }
  const title = options.title ?? (several ? "Training curves" : "Training curve");
  const line = {
    transform: [{ filter: "datum.kind === 'point'" }],
    mark: { type: "line", point: longest <= MAX_POINTS_DRAWN, interpolate: "linear" },
    encoding: {
      x: { field: "step", type: "quantitative", title: options.stepTitle ?? "step" },
      y: { field: "value", type: "quantitative", scale: { zero: false }, title: null },
      color: several
        ? { field: "run", type: "nominal", title: "run", sort: runs, legend: runs.length <= 12 ? { orient: "right", labelLimit: 200 } : null }
        : { value: "#4c78a8" },
      tooltip: [{ field: "run" }, { field: "series" }, { field: "step" }, { field: "value", format: ".4g" }],
    },
  };
  const referenceLayers = references.length
    ? [
        { transform: [{ filter: "datum.kind === 'reference'" }], mark: { type: "rule", strokeDash: [4, 3], color: "#888" }, encoding: { y: { field: "value", type: "quantitative" }, tooltip: [{ field: "label" }, { field: "value", format: ".4g" }] } },
        { transform: [{ filter: "datum.kind === 'reference'" }], mark: { type: "text", align: "right", dx: -2, dy: -6, color: "#666", x: "width" }, encoding: { y: { field: "value", type: "quantitative" }, text: { field: "label" } } },
      ]
    : [];
  const spec = view(title, reading(curve, runs, series), {
    data: {
      values: [
        ...curve.map((p) => ({ kind: "point", run: p.run, series: p.series, step: p.step, value: p.value })),
        ...references.map((r) => ({ kind: "reference", series: r.series, value: r.value, label: r.label })),
      ],
    },
    ...(several
      ? {
          params: [{ name: "run_shown", value: options.run ?? runs[0], bind: { input: "select", options: [ALL_RUNS, ...runs], name: "run " } }],
          transform: [{ filter: `datum.kind === 'reference' || run_shown === '${ALL_RUNS}' || datum.run === run_shown` }],
        }
      : {}),
    facet: {
      row: {
        field: "series",
        type: "nominal",
        sort: series,
        title: null,
        header: { labelAngle: 0, labelOrient: "top", labelAnchor: "start", labelFontWeight: "bold", labelFontSize: 12 },
      },
    },
    spec: { width: WIDTH, height: series.length > 2 ? 110 : 150, layer: [line, ...referenceLayers] },
    resolve: { scale: { y: "independent" } },
  });
  // With a run picker, the title names the run shown, so a PNG says which layer's curve it is.
  if (several) {
    (spec.title as { text: unknown }).text = { expr: `${JSON.stringify(`${title}: `)} + run_shown` };
    (spec as { usermeta?: unknown }).usermeta = { title: `${title}: ${options.run ?? runs[0]}` };
  }
  return spec;
}

/** What to read: each series' first and last values, then how a healthy curve looks. */
function reading(curve: readonly CurvePoint[], runs: string[], series: string[]): string {
  const guide =
    "A loss should fall, then level off; a validation metric should rise toward the FP32 score. A loss that climbs or swings means the learning rate is too high; one that barely moves, too low or too few steps.";
  if (runs.length > 1) {
    return `${runs.length} runs (pick one in the menu, or ${ALL_RUNS}), series ${series.join(", ")}. ${guide}`;
  }
  const changes = series.map((s) => {
    const points = curve.filter((p) => p.series === s).sort((a, b) => a.step - b.step);
    const first = points[0];
    const last = points[points.length - 1];
    const f = (v: number) => fmt(v, s);
    return points.length > 1 ? `${s} ${f(first.value)} → ${f(last.value)} (step ${first.step} → ${last.step})` : `${s} ${f(first.value)} at step ${first.step}`;
  });
  return `${runs[0]}: ${changes.join("; ")}. ${guide}`;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** A value as read: accuracy-like series as percentages (as every other view shows them), others to 3–4 digits. */
function fmt(v: number, series = ""): string {
  if (series === "accuracy" || series === "agreement") return metricFormat({ metric: series }).text(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3);
}

/** QAT (its loss and metric over training); AdaRound has a view of its own (adaround-view.ts). */
registerView<{ curve: CurvePoint[] }>("trainingCurveView", { steps: ["qat"], matches: (x) => Array.isArray(x.curve) && !Array.isArray(x.layers) }, (r) => trainingCurveView(r.curve));
