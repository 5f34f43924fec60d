import type { MetricInfo } from "../src/analysis/evaluation";
import type { FlowRecord, FlowStep } from "../src/flow/flow-types";
import { COLORS, metricFormat, View, view, WIDTH } from "./spec";
import { registerView } from "./registry";

/**
 * The debugging flow at a glance: one point per step in order, the path of the
 * score the flow kept, candidates it rejected as hollow points, FP32 and the
 * target as reference lines. Tooltips carry each step's plain-language finding.
 */
export function flowView(record: FlowRecord): View {
  const rows = record.steps.map((s) => ({
    index: s.index,
    label: `${s.index}. ${s.title}`,
    score: s.score,
    kept: s.kind === "analysis" ? "analysis" : s.skipped ? "skipped" : s.kept ? "fix kept" : "fix not kept",
    path: s.kept ? s.score : null,
    finding: s.finding,
    seconds: s.seconds,
  }));
  // A fidelity score has no FP32 line: FP32 is its reference, not a score.
  const refs = [...(record.fp32 !== null ? [{ v: record.fp32, what: "FP32" }] : []), { v: record.target, what: "target" }];
  const ys = [...rows.map((r) => r.score), ...refs.map((r) => r.v)].filter((v): v is number => v !== null && Number.isFinite(v));
  const pad = Math.max(1e-3, (Math.max(...ys) - Math.min(...ys)) * 0.1);
  const y = { type: "quantitative", scale: { domain: [Math.min(...ys) - pad, Math.max(...ys) + pad] }, title: record.metric.label, axis: { format: metricFormat(record.metric).axis } } as const;
  // An explicit domain keeps the steps in order although the layers hold different subsets of them.
  const x = { field: "label", type: "ordinal", scale: { domain: rows.map((r) => r.label) }, title: null, axis: { labelAngle: -35, labelLimit: 400 } } as const;
  return view(`Debugging flow: ${record.met ? "target met" : "target not met"} (${record.metric.label})`, record.diagnosis, {
    width: WIDTH,
    height: 220,
    layer: [
      {
        data: { values: refs },
        mark: { type: "rule", strokeDash: [4, 3] },
        encoding: {
          y: { field: "v", ...y },
          color: { field: "what", type: "nominal", scale: { domain: refs.map((r) => r.what), range: refs.map((r) => (r.what === "FP32" ? COLORS.fp32 : COLORS.pass)) }, title: null },
        },
      },
      {
        data: { values: rows.filter((r) => r.path !== null) },
        mark: { type: "line", color: COLORS.quantized, interpolate: "step-after" },
        encoding: { x, y: { field: "path", ...y } },
      },
      {
        data: { values: rows.filter((r) => r.score !== null) },
        mark: { type: "point", size: 90, strokeWidth: 2 },
        encoding: {
          x,
          y: { field: "score", ...y },
          shape: { field: "kept", type: "nominal", scale: { domain: ["analysis", "fix kept", "fix not kept", "skipped"], range: ["diamond", "circle", "circle", "cross"] }, title: "step" },
          fill: { field: "kept", type: "nominal", scale: { domain: ["analysis", "fix kept", "fix not kept", "skipped"], range: [COLORS.quantized, COLORS.quantized, "white", "white"] }, title: "step" },
          stroke: { value: COLORS.quantized },
          tooltip: [{ field: "label", title: "step" }, { field: "score", format: metricFormat(record.metric).score }, { field: "kept", title: "outcome" }, { field: "finding" }, ...(rows.some((r) => r.seconds !== undefined) ? [{ field: "seconds", format: ".1f" }] : [])],
        },
      },
    ],
  });
}

/**
 * One step of the flow without a view of its own: the score before and after
 * it, against FP32 and the target; with the flow's metric, scores are written
 * in its units (accuracy as a percentage).
 */
export function fixStepView(step: FlowStep, metric?: MetricInfo): View {
  const format = metricFormat(metric);
  const rows = [
    { what: "before", score: step.before },
    { what: step.kind === "fix" ? (step.kept ? "after (kept)" : "candidate (not kept)") : "after", score: step.score },
  ].filter((r): r is { what: string; score: number } => r.score !== null && Number.isFinite(r.score));
  const refs = [...(step.fp32 !== null ? [{ v: step.fp32, what: "FP32" }] : []), { v: step.target, what: "target" }];
  const ys = [...rows.map((r) => r.score), ...refs.map((r) => r.v)].filter(Number.isFinite);
  const pad = Math.max(1e-3, (Math.max(...ys) - Math.min(...ys)) * 0.15);
  const x = { type: "quantitative", scale: { domain: [Math.min(...ys) - pad, Math.max(...ys) + pad] }, title: metric?.label ?? "score", axis: { format: format.axis } } as const;
  return view(`${step.index}. ${step.title}`, step.finding, {
    width: WIDTH,
    height: 90,
    layer: [
      { data: { values: refs }, mark: { type: "rule", strokeDash: [4, 3] }, encoding: { x: { field: "v", ...x }, color: { field: "what", type: "nominal", scale: { domain: refs.map((r) => r.what), range: refs.map((r) => (r.what === "FP32" ? COLORS.fp32 : COLORS.pass)) }, title: null } } },
      {
        data: { values: rows },
        mark: { type: "point", filled: true, size: 140, color: COLORS.quantized },
        encoding: { y: { field: "what", type: "nominal", sort: null, title: null }, x: { field: "score", ...x }, tooltip: [{ field: "what" }, { field: "score", format: format.score }] },
      },
      {
        data: { values: rows },
        mark: { type: "text", align: "left", dx: 10 },
        encoding: { y: { field: "what", type: "nominal", sort: null }, x: { field: "score", ...x }, text: { field: "score", format: format.score } },
      },
    ],
  });
}

registerView<FlowRecord>("flowView", { steps: ["debug-flow"] }, flowView);
