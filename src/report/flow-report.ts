import type { FlowRecord, FlowStep } from "../flow/flow-types";
import { flowStepView, viewOf } from "../display/show";
import { metricFormat } from "../../widgets/spec";
import { imageComparisonView } from "../../widgets/image-comparison-view";
import type { ImageComparisonResult } from "../analysis/image-comparison";
import { buildReport, ReportSection, ReportSummary, ReportTable } from "./report";

const outcome = (s: FlowStep) => (s.kind === "analysis" ? "analysis" : s.skipped ? "skipped" : s.kept ? "kept" : "rejected");

/** The findings of a debugging run, first: the culprit side, the fix that helped most, and what to do next. */
export function flowSummary(record: FlowRecord): ReportSummary {
  const format = metricFormat(record.metric);
  const final = record.final.score;
  const verdict = record.met ? "Target met" : "Target not met";
  // A task score reads against FP32's own score; a fidelity score against its absolute target (FP32 has no score).
  const headline = final === null
    ? `${verdict}: the flow stopped before it scored the quantized model. ${record.diagnosis}`
    : record.fp32 !== null
    ? `${verdict}: ${format.text(final)} against ${format.text(record.fp32)} in FP32 (${format.changeText(final - record.fp32)}; ${record.allowedDrop !== null ? `allowed drop ${format.changeText(-record.allowedDrop).replace(/^[−+]/, "")}` : `target ${format.text(record.target)}`}), after ${record.steps.length} steps.`
    : `${verdict}: ${format.text(final)} (target ${record.targetText}), after ${record.steps.length} steps.`;
  const split = record.steps.find((s) => s.box === "weights-vs-activations");
  const perLayer = record.steps.find((s) => s.box === "per-layer-analysis");
  const culprit = (split?.result as { culprit?: string } | undefined)?.culprit;
  const fixes = record.steps.filter((s) => s.kind === "fix" && s.kept && !s.skipped).map((s) => ({ step: s, gain: s.score !== null && s.before !== null ? s.score - s.before : 0 })).sort((a, b) => b.gain - a.gain);
  const helped = fixes.filter((f) => f.gain > 0);
  const rejected = record.steps.filter((s) => s.kind === "fix" && !s.kept && !s.skipped);
  const items: ReportSummary["items"] = [];
  items.push({
    label: "Culprits",
    text: [split ? split.finding : "The run stopped before splitting weights from activations.", perLayer ? perLayer.finding : ""].filter(Boolean).join(" ") || `${culprit ?? "unknown"}`,
  });
  items.push({
    label: "Fix that helped",
    text: helped.length
      ? `${helped[0].step.title} (${format.changeText(helped[0].gain)}, to ${format.text(helped[0].step.score!)})${helped.length > 1 ? `; also ${helped.slice(1).map((f) => `${f.step.title} (${format.changeText(f.gain)})`).join(", ")}` : ""}.${rejected.length ? ` Tried and not kept: ${rejected.map((s) => s.title).join(", ")}.` : ""}`
      : `No fix raised the score.${rejected.length ? ` Tried and not kept: ${rejected.map((s) => s.title).join(", ")}.` : ""}`,
  });
  items.push({
    label: "Next step",
    text: record.met
      ? "Export the fixed model (model/ in this folder holds it with its encodings) and confirm the score on held-out data."
      : "Raise more quantizers to higher precision, allow per-channel weights if the runtime supports them, or run QAT; then rerun the flow.",
  });
  return { headline, items };
}

/** Every step's score, change and outcome, sortable. */
export function flowTable(record: FlowRecord): ReportTable {
  const score = record.metric.metric === "accuracy" || record.metric.metric === "agreement" ? "percent" : "score";
  return {
    caption: "Steps",
    columns: [
      { key: "index", label: "#" },
      { key: "title", label: "step" },
      { key: "outcome", label: "outcome" },
      { key: "before", label: "before", format: score },
      { key: "score", label: "score", format: score },
      { key: "change", label: "change", format: score },
      // A fidelity score has no FP32 score to drop from.
      ...(record.fp32 !== null ? [{ key: "drop", label: "drop from FP32", format: score } as const] : []),
    ],
    rows: record.steps.map((s) => ({ index: s.index, title: s.title, outcome: outcome(s), before: s.before, score: s.score, change: s.score !== null && s.before !== null ? s.score - s.before : null, ...(record.fp32 !== null ? { drop: s.drop } : {}) })),
  };
}

/** The sections of `qdebug debug`'s report: the flow at a glance with its table, then one section per step. */
export function flowSections(record: FlowRecord, images?: ImageComparisonResult): ReportSection[] {
  return [
    { step: "The flow", diagnosis: record.diagnosis, views: [viewOf(record)], tables: [flowTable(record)] },
    // Models with image outputs: the outputs before and after the fixes, beside FP32's.
    ...(images ? [{ step: "Before and after, as images", diagnosis: images.diagnosis, views: [imageComparisonView(images)] }] : []),
    ...record.steps.map((s) => ({ step: `${s.index}. ${s.title}`, diagnosis: s.finding, views: [flowStepView(s, record.metric)] })),
  ];
}

/** `qdebug debug`'s report.html: the summary, contents, the flow (and image outputs before and after), then each step. */
export function flowReport(title: string, subtitle: string, record: FlowRecord, images?: ImageComparisonResult): string {
  return buildReport(title, subtitle, flowSections(record, images), { summary: flowSummary(record) });
}
