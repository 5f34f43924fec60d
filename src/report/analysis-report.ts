import { rankedRows } from "../analysis/sweeps";
import type { SanityCheckResult } from "../quant/sanity-check";
import type { SplitResult } from "../analysis/weights-vs-activations";
import type { SweepResult } from "../analysis/sweeps";
import type { LayerErrorResult } from "../analysis/layer-error";
import type { RangesResult } from "../analysis/ranges";
import type { WeightChannelsResult } from "../analysis/weight-channels";
import type { HistogramsResult } from "../analysis/histograms";
import { sanityView } from "../../widgets/sanity-view";
import { splitView } from "../../widgets/split-view";
import { sweepView } from "../../widgets/sweep-view";
import { layerErrorView } from "../../widgets/layer-error-view";
import { rangesView } from "../../widgets/ranges-view";
import { layerExplorerView } from "../../widgets/layer-explorer-view";
import { bitwidthView } from "../../widgets/bitwidth-view";
import { imageComparisonView } from "../../widgets/image-comparison-view";
import type { ImageComparisonResult } from "../analysis/image-comparison";
import { metricFormat } from "../../widgets/spec";
import { buildReport, ReportSection, ReportSummary, ReportTable } from "./report";

/** What `qdebug analyze` computes (the keys of its results.json). */
export interface AnalysisResults {
  sanity: SanityCheckResult;
  split: SplitResult;
  sweepEnabled: SweepResult;
  sweepDisabled: SweepResult;
  layerError: LayerErrorResult;
  ranges: RangesResult;
  weightChannels: WeightChannelsResult;
  histograms: HistogramsResult;
  /** Models with image outputs: FP32 and quantized outputs side by side. */
  images?: ImageComparisonResult;
}

const list = (names: string[]) => (names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`);

/** The findings of an analysis, first: where the drop comes from, what recovers it, what to do next. */
export function analysisSummary(r: AnalysisResults): ReportSummary {
  const format = metricFormat(r.split.metric);
  const fp32 = r.split.fp32;
  // A task score drops from FP32's own score; a fidelity score is read as it is (FP32 is its reference).
  const drop = fp32 !== null ? fp32 - r.split.both : null;
  const headline = fp32 !== null
    ? `Quantized, the model scores ${format.text(r.split.both)} against ${format.text(fp32)} in FP32 (${format.changeText(-drop!)}, ${r.split.metric.label}).`
    : `Quantized, the model scores ${format.text(r.split.both)} (${r.split.metric.label}).`;
  const costly = rankedRows(r.sweepEnabled).filter((x) => (fp32 !== null ? x.score < fp32 : true)).slice(0, 3);
  const recover = [...r.sweepDisabled.rows].filter((x) => x.score > r.sweepDisabled.quantizedScore).sort((a, b) => b.score - a.score).slice(0, 3);
  const ownError = [...r.layerError.rows].filter((x) => x.local?.sqnrDb !== null && x.local !== null).sort((a, b) => a.local!.sqnrDb! - b.local!.sqnrDb!)[0];
  const side = r.split.culprit === "none" ? "Neither side costs a measurable drop" : r.split.culprit === "both" ? "Weights and activations both cost accuracy" : `${r.split.culprit === "weights" ? "Weight" : "Activation"} quantization causes most of the drop`;
  const items: ReportSummary["items"] = [];
  if (!r.sanity.pass) items.push({ label: "First", text: `The FP32 sanity check fails: ${r.sanity.diagnosis}` });
  items.push({
    label: "Culprits",
    text: `${side}${costly.length ? `; quantized alone, ${list(costly.map((x) => `${x.key} (${fp32 !== null ? format.changeText(x.score - fp32) : format.text(x.score)})`))} ${fp32 !== null ? "cost the most" : "score lowest"}` : ""}${ownError ? `; ${ownError.node} makes the largest error of its own (local SQNR ${ownError.local!.sqnrDb!.toFixed(1)} dB)` : ""}.`,
  });
  items.push({
    label: "What recovers it",
    text: recover.length
      ? `Keeping ${recover[0].key} in float recovers ${drop !== null && drop > 0 ? `${Math.round(((recover[0].score - r.sweepDisabled.quantizedScore) / drop) * 100)} % of the drop` : `the most (all quantized: ${format.text(r.sweepDisabled.quantizedScore)})`} (${format.text(recover[0].score)})${recover.length > 1 ? `; then ${list(recover.slice(1).map((x) => x.key))}` : ""}. No fix was applied here.`
      : "No single layer kept in float recovers any score: the drop is spread over many layers.",
  });
  const next =
    !r.sanity.pass
      ? "Fix the simulation first (see the sanity check), then rerun the analysis."
      : r.split.culprit === "none"
        ? "Nothing to fix at this setting: export the model."
        : r.split.culprit === "activations"
          ? `Fix activations: try percentile, SQNR or MSE range setting${recover.length ? `, or a wider grid for ${recover[0].key}` : ""}; \`qdebug debug\` tries them in order and keeps what helps.`
          : `Fix weights: cross-layer equalization, per-channel quantization, bias correction, then AdaRound${recover.length ? `, or a higher bit-width for ${recover[0].key}` : ""}; \`qdebug debug\` tries them in order and keeps what helps.`;
  items.push({ label: "Next step", text: next });
  return { headline, items };
}

/** The numbers behind each section, as sortable tables. */
export function analysisTables(r: AnalysisResults): Record<"sanity" | "split" | "sweeps" | "layerError" | "ranges" | "layers", ReportTable> {
  const score = r.split.metric.metric === "accuracy" || r.split.metric.metric === "agreement" ? "percent" : "score";
  const disabled = new Map(r.sweepDisabled.rows.map((x) => [x.key, x]));
  const histogram = new Map(r.histograms.histograms.map((h) => [h.quantizer, h]));
  return {
    sanity: {
      caption: "Sanity check",
      columns: [{ key: "variant", label: "variant" }, { key: "error", label: "largest relative error", format: "number" }, { key: "pass", label: "pass" }],
      rows: r.sanity.checks.map((c) => ({ variant: c.variant, error: c.maxRelError, pass: c.pass })),
    },
    split: {
      caption: "Scores",
      columns: [{ key: "variant", label: "variant" }, { key: "score", label: r.split.metric.label, format: score }, ...(r.split.fp32 !== null ? [{ key: "drop", label: "drop from FP32", format: score } as const] : [])],
      rows: r.split.rows.map((x) => ({ variant: x.variant, score: x.score, ...(r.split.fp32 !== null ? { drop: x.drop } : {}) })),
    },
    sweeps: {
      caption: "Per-layer scores",
      columns: [
        { key: "index", label: "#" },
        { key: "layer", label: "layer" },
        { key: "alone", label: "only this quantized", format: score },
        ...(r.sweepEnabled.fp32Score !== null ? [{ key: "cost", label: "its cost (drop)", format: score } as const] : []),
        { key: "allBut", label: "all but this quantized", format: score },
        { key: "recovers", label: "recovered", format: score },
      ],
      rows: r.sweepEnabled.rows.map((x) => {
        const d = disabled.get(x.key);
        return { index: x.index, layer: x.key, alone: x.score, ...(x.drop !== null ? { cost: x.drop } : {}), allBut: d?.score ?? null, recovers: d ? d.score - r.sweepDisabled.quantizedScore : null };
      }),
    },
    layerError: {
      caption: "Per-layer error",
      columns: [
        { key: "index", label: "#" },
        { key: "node", label: "node" },
        { key: "op", label: "op" },
        { key: "local", label: "local SQNR", format: "db" },
        { key: "propagated", label: "propagated SQNR", format: "db" },
        { key: "rmseOverStep", label: "rmse / step (local)", format: "number" },
      ],
      rows: r.layerError.rows.map((x) => ({ index: x.index, node: x.node, op: x.op, local: x.local?.sqnrDb ?? null, propagated: x.propagated.sqnrDb, rmseOverStep: x.local?.rmseOverStep ?? null })),
    },
    ranges: {
      caption: "Quantizer ranges",
      columns: [
        { key: "index", label: "#" },
        { key: "quantizer", label: "quantizer" },
        { key: "kind", label: "kind" },
        { key: "bitwidth", label: "bits" },
        { key: "min", label: "min", format: "number" },
        { key: "max", label: "max", format: "number" },
        { key: "scale", label: "step", format: "number" },
        { key: "clipped", label: "clipped share", format: "percent" },
      ],
      rows: r.ranges.rows.map((x) => ({ index: x.index, quantizer: x.quantizer, kind: x.kind, bitwidth: x.bitwidth, min: x.min, max: x.max, scale: x.scale, clipped: histogram.get(x.quantizer)?.clippedFraction ?? null })),
    },
    layers: {
      caption: "Weight channels per layer",
      columns: [{ key: "layer", label: "layer" }, { key: "channels", label: "channels" }, { key: "ratio", label: "widest / narrowest channel range", format: "number" }],
      // A constant channel makes the ratio unbounded: shown as a dash, not 1.797e308.
      rows: r.weightChannels.layers.map((l) => ({ layer: l.quantizer, channels: l.channels, ratio: Number.isFinite(l.rangeRatio) && l.rangeRatio < 1e300 ? l.rangeRatio : null })),
    },
  };
}

/** The sections of `qdebug analyze`'s report: the guidebook's steps in order, each with its views, reading and numbers. */
export function analysisSections(r: AnalysisResults): ReportSection[] {
  const tables = analysisTables(r);
  const mostClipped = [...r.histograms.histograms].sort((a, b) => b.clippedFraction - a.clippedFraction || b.encodingMax - b.encodingMin - (a.encodingMax - a.encodingMin))[0];
  return [
    { step: "1. FP32 sanity check", diagnosis: r.sanity.diagnosis, views: [sanityView(r.sanity)], tables: [tables.sanity] },
    { step: "2. Weights or activations?", diagnosis: r.split.diagnosis, views: [splitView(r.split)], tables: [tables.split] },
    { step: "3. Per-layer analysis", diagnosis: `${r.sweepEnabled.diagnosis} ${r.sweepDisabled.diagnosis}`, views: [sweepView(r.sweepEnabled, r.sweepDisabled)], tables: [tables.sweeps] },
    { step: "4. Per-layer error", diagnosis: r.layerError.diagnosis, views: [layerErrorView(r.layerError)], tables: [tables.layerError] },
    {
      step: "5. Visualize layers",
      diagnosis: `${r.weightChannels.diagnosis} ${r.histograms.diagnosis}`,
      views: [layerExplorerView(r.weightChannels, r.histograms), rangesView(r.ranges), ...(mostClipped ? [bitwidthView(mostClipped)] : [])],
      tables: [tables.ranges, tables.layers],
    },
    ...(r.images ? [{ step: "6. The outputs as images", diagnosis: r.images.diagnosis, views: [imageComparisonView(r.images)] }] : []),
  ];
}

/** `qdebug analyze`'s report.html: the summary, contents, then each step's views, reading and numbers. */
export function analysisReport(title: string, subtitle: string, r: AnalysisResults): string {
  return buildReport(title, subtitle, analysisSections(r), { summary: analysisSummary(r) });
}
