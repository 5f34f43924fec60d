import type { OutlierFixesResult } from "../src/analysis/outlier-fixes";
import { beforeAfterView } from "./before-after-view";
import { registerView } from "./registry";
import { View, wrap } from "./spec";

/** The fixes for outlier dimensions (`qd.outlierFixes`): each one's score against the simulation as it is, FP32 as the reference line. */
export function outlierFixesView(result: OutlierFixesResult): View {
  const base = result.rows[0];
  const fixes = Object.fromEntries(result.rows.slice(1).map((r) => [r.fix, { metric: result.metric, before: base.score, after: r.score, change: r.score - base.score }]));
  const spec = beforeAfterView(fixes, { title: `Fixes for outlier dimensions, from the simulation as it is (${result.metric.label})`, reference: { label: "FP32", value: result.fp32 } });
  // The diagnosis says which fix recovers the drop; it replaces the list of scores as the subtitle.
  return { ...spec, title: { ...(spec.title as unknown as Record<string, unknown>), subtitle: wrap(result.diagnosis, 100) } } as View;
}

registerView<OutlierFixesResult>("outlierFixesView", { steps: ["outlier-fixes"] }, outlierFixesView);
