import type { BeforeAfter } from "../src/fix/before-after";
import { registerView } from "./registry";
import { COLORS, metricFormat, scoreDomain, View, view, WIDTH } from "./spec";

/**
 * Fixes side by side: for each, a dumbbell from the score before (hollow) to
 * the score after (filled), green when the fix helped and red when it hurt,
 * with an optional reference line (FP32). The change is written past the
 * "after" end, away from the bar, and the legend sits above the plot, so no
 * label overlaps it. Takes the `scores` every fix returns.
 */
export function beforeAfterView(fixes: Record<string, BeforeAfter>, options: { title?: string; reference?: { label: string; value: number } } = {}): View {
  const entries = Object.entries(fixes);
  if (entries.length === 0) throw new Error("beforeAfterView: no fix results given");
  const metric = entries[0][1].metric;
  const format = metricFormat(metric);
  const rows = entries.map(([fix, s], order) => ({
    fix,
    order,
    before: s.before,
    after: s.after,
    change: s.change,
    helped: s.change > 0 ? "helped" : s.change < 0 ? "hurt" : "no change",
    side: s.change < 0 ? "left" : "right",
    label: format.changeText(s.change),
  }));
  const reading = rows.map((r) => `${r.fix}: ${format.text(r.before)} → ${format.text(r.after)} (${r.label})`).join("; ");
  const y = { field: "fix", type: "nominal", sort: { field: "order" }, title: null, axis: { labelLimit: 320 } } as const;
  const x = { type: "quantitative", scale: { domain: scoreDomain([...rows.flatMap((r) => [r.before, r.after]), ...(options.reference ? [options.reference.value] : [])], metric, 0.2), nice: false }, title: metric.label, axis: { format: format.axis } } as const;
  const color = { field: "helped", type: "nominal", scale: { domain: ["helped", "hurt", "no change"], range: [COLORS.pass, COLORS.fail, "#999"] }, title: null, legend: { orient: "top" } } as const;
  return view(options.title ?? `Before and after each fix (${metric.label})`, reading, {
    width: WIDTH,
    height: { step: 26 },
    layer: [
      ...(options.reference
        ? [
            { data: { values: [options.reference] }, mark: { type: "rule", strokeDash: [4, 3], color: COLORS.fp32 }, encoding: { x: { field: "value", ...x } } },
            { data: { values: [options.reference] }, mark: { type: "text", y: 0, dy: -6, color: COLORS.fp32, fontSize: 10 }, encoding: { x: { field: "value", ...x }, text: { field: "label" } } },
          ]
        : []),
      { data: { values: rows }, mark: { type: "rule", strokeWidth: 2 }, encoding: { y, x: { field: "before", ...x }, x2: { field: "after" }, color } },
      { data: { values: rows }, mark: { type: "point", size: 70, color: "#666" }, encoding: { y, x: { field: "before", ...x }, tooltip: [{ field: "fix" }, { field: "before", format: format.score }] } },
      {
        data: { values: rows },
        mark: { type: "point", filled: true, size: 110 },
        encoding: { y, x: { field: "after", ...x }, color, tooltip: [{ field: "fix" }, { field: "before", format: format.score }, { field: "after", format: format.score }, { field: "change", format: format.change }] },
      },
      { data: { values: rows.filter((r) => r.side === "right") }, mark: { type: "text", align: "left", dx: 9 }, encoding: { y, x: { field: "after", ...x }, text: { field: "label" } } },
      { data: { values: rows.filter((r) => r.side === "left") }, mark: { type: "text", align: "right", dx: -9 }, encoding: { y, x: { field: "after", ...x }, text: { field: "label" } } },
    ],
  });
}

/** A fix's `scores` alone ({ metric, before, after, change }). */
registerView<BeforeAfter>("beforeAfterView", { matches: (x) => typeof x.before === "number" && typeof x.after === "number" && typeof x.change === "number" && typeof x.metric === "object" }, (s) => beforeAfterView({ [`score (${s.metric.label})`]: s }, { title: "Before and after the fix" }));
