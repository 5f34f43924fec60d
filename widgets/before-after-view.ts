import type { BeforeAfter } from "../src/fix/before-after";
import { COLORS, View, view, WIDTH } from "./spec";

/**
 * Fixes side by side: for each, an arrow-like dumbbell from the score before to
 * the score after, green when the fix helped and red when it hurt, with an
 * optional reference line (FP32). Takes the `scores` every fix returns.
 */
export function beforeAfterView(fixes: Record<string, BeforeAfter>, options: { title?: string; reference?: { label: string; value: number } } = {}): View {
  const entries = Object.entries(fixes);
  if (entries.length === 0) throw new Error("beforeAfterView: no fix results given");
  const metric = entries[0][1].metric;
  const rows = entries.map(([fix, s], order) => ({ fix, order, before: s.before, after: s.after, change: s.change, helped: s.change > 0 ? "helped" : s.change < 0 ? "hurt" : "no change" }));
  const reading = rows.map((r) => `${r.fix}: ${r.before.toFixed(4)} → ${r.after.toFixed(4)} (${r.change >= 0 ? "+" : ""}${r.change.toFixed(4)})`).join("; ");
  const y = { field: "fix", type: "nominal", sort: { field: "order" }, title: null, axis: { labelLimit: 320 } } as const;
  const x = { type: "quantitative", scale: { zero: false }, title: metric.label } as const;
  const color = { field: "helped", type: "nominal", scale: { domain: ["helped", "hurt", "no change"], range: [COLORS.pass, COLORS.fail, "#999"] }, title: null } as const;
  return view(options.title ?? `Before and after each fix (${metric.label})`, reading, {
    width: WIDTH,
    height: { step: 26 },
    layer: [
      ...(options.reference ? [{ data: { values: [options.reference] }, mark: { type: "rule", strokeDash: [4, 3], color: COLORS.fp32 }, encoding: { x: { field: "value", ...x } } }] : []),
      { data: { values: rows }, mark: { type: "rule", strokeWidth: 2 }, encoding: { y, x: { field: "before", ...x }, x2: { field: "after" }, color } },
      { data: { values: rows }, mark: { type: "point", size: 70, color: "#666" }, encoding: { y, x: { field: "before", ...x }, tooltip: [{ field: "fix" }, { field: "before", format: ".4f" }] } },
      {
        data: { values: rows },
        mark: { type: "point", filled: true, size: 110 },
        encoding: { y, x: { field: "after", ...x }, color, tooltip: [{ field: "fix" }, { field: "before", format: ".4f" }, { field: "after", format: ".4f" }, { field: "change", format: "+.4f" }] },
      },
      { data: { values: rows }, mark: { type: "text", align: "left", dx: 9 }, encoding: { y, x: { field: "after", ...x }, text: { field: "change", format: "+.4f" } } },
    ],
  });
}
