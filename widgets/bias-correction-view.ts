import type { CorrectedLayer, MeanShiftRow, MeanShiftsResult } from "../src/fix/bias-correction";
import type { BeforeAfter } from "../src/fix/before-after";
import { registerView } from "./registry";
import { COLORS, emptyView, logTicks, metricFormat, NAME_AXIS, ROW_STEP, significant, View, view, WIDTH } from "./spec";

interface BiasCorrectionRecord {
  /** The fix's own reading (fixes carry one); the view's reading otherwise. */
  diagnosis?: string;
  corrected: CorrectedLayer[];
  skipped?: { layer: string; reason: string }[];
  scores?: BeforeAfter;
}

/**
 * Bias correction: per corrected layer, in execution order, the mean output
 * shift quantized weights caused and that was subtracted from the bias (mean
 * |shift| over the output channels as a bar, the largest as a tick).
 */
export function biasCorrectionView(result: BiasCorrectionRecord): View {
  const title = "Bias correction: per-layer mean shift removed";
  const skipped = result.skipped ?? [];
  if (result.corrected.length === 0) return emptyView(title, `No layer was corrected${skipped.length ? `: ${skipped.slice(0, 3).map((s) => `${s.layer} (${s.reason})`).join("; ")}` : " (no conv or dense layer with quantized weights)"}.`);
  const rows = result.corrected.map((c, order) => ({ ...c, order }));
  const largest = [...rows].sort((a, b) => b.meanAbsShift - a.meanAbsShift)[0];
  const format = metricFormat(result.scores?.metric);
  const reading = [
    `${rows.length} layers had the mean shift of their outputs subtracted from their bias (${rows[0].method}); the largest mean shift was in ${largest.layer} (mean |shift| ${significant(largest.meanAbsShift, 3)}, up to ${significant(largest.maxAbsShift, 3)}).`,
    result.scores ? `${result.scores.metric.label}: ${format.text(result.scores.before)} → ${format.text(result.scores.after)} (${format.changeText(result.scores.change)}).` : "",
    skipped.length ? `${skipped.length} layers skipped (${skipped[0].layer}: ${skipped[0].reason}).` : "",
  ].filter(Boolean).join(" ");
  const y = { field: "layer", type: "nominal", sort: { field: "order", op: "min" }, title: null, axis: NAME_AXIS } as const;
  const x = { type: "quantitative", title: "output shift per channel removed (mean |shift| bar, largest tick)" } as const;
  return view(`${title}, largest in ${largest.layer}`, result.diagnosis ?? reading, {
    width: WIDTH - 120,
    height: { step: ROW_STEP },
    data: { values: rows },
    layer: [
      { mark: { type: "bar", color: COLORS.weights, height: 9 }, encoding: { y, x: { field: "meanAbsShift", ...x }, tooltip: [{ field: "layer" }, { field: "method" }, { field: "meanAbsShift", format: ".3g", title: "mean |shift|" }, { field: "maxAbsShift", format: ".3g", title: "largest |shift|" }] } },
      { mark: { type: "tick", color: "black", thickness: 2, size: 11 }, encoding: { y, x: { field: "maxAbsShift", ...x } } },
    ],
  });
}

/**
 * `meanShifts` before and after a correction (or one result alone): per layer,
 * the mean |shift| of its output channels' means against FP32, on a log axis,
 * from before (red) to after (green). What bias correction drives to zero.
 */
type Shifts = MeanShiftsResult | MeanShiftRow[];
const rowsOf = (s: Shifts | undefined) => (s === undefined ? undefined : Array.isArray(s) ? s : s.rows);

export function meanShiftsView(shifts: Shifts | { before: Shifts; after?: Shifts }): View {
  const pair = !Array.isArray(shifts) && "before" in shifts;
  const before = rowsOf(pair ? shifts.before : shifts)!;
  const after = pair ? rowsOf(shifts.after) : undefined;
  const diagnosis = !pair && !Array.isArray(shifts) ? shifts.diagnosis : undefined;
  const title = "Mean output shift per layer against FP32";
  if (before.length === 0) return emptyView(title, "No layer was measured.");
  const afterBy = new Map((after ?? []).map((r) => [r.layer, r]));
  const floor = 1e-9; // an exact zero shift sits at the log axis' floor
  const rows = before.map((r, order) => ({ layer: r.layer, order, before: Math.max(r.meanAbsShift, floor), after: afterBy.has(r.layer) ? Math.max(afterBy.get(r.layer)!.meanAbsShift, floor) : null }));
  const long = rows.flatMap((r) => [{ ...r, when: "before", shift: r.before }, ...(r.after !== null ? [{ ...r, when: "after", shift: r.after }] : [])]);
  const largest = [...rows].sort((a, b) => b.before - a.before)[0];
  const paired = rows.filter((r) => r.after !== null);
  const reduced = paired.filter((r) => r.after! < r.before).length;
  const reading = after
    ? `After the correction ${reduced} of ${paired.length} layers are closer to FP32's output means; the largest shift before was ${largest.layer}'s (${significant(largest.before, 3)}). What remains comes from activation quantization and from the layers before.`
    : `The largest shift is ${largest.layer}'s (mean |shift| ${significant(largest.before, 3)}): a biased error that bias correction removes.`;
  const y = { field: "layer", type: "nominal", sort: { field: "order", op: "min" }, title: null, axis: NAME_AXIS } as const;
  const x = { type: "quantitative", scale: { type: "log", nice: false, padding: 12 }, axis: { values: logTicks(long.map((r) => r.shift)), format: "~g" }, title: "mean |shift| of the output channels' means (log)" } as const;
  return view(`${title}${after ? ", before and after bias correction" : ""}`, diagnosis ?? reading, {
    width: WIDTH - 120,
    height: { step: ROW_STEP },
    layer: [
      ...(after ? [{ data: { values: paired }, mark: { type: "rule", color: "#999" }, encoding: { y, x: { field: "before", ...x }, x2: { field: "after" } } }] : []),
      {
        data: { values: long },
        mark: { type: "point", filled: true, size: 45 },
        encoding: {
          y,
          x: { field: "shift", ...x },
          color: { field: "when", type: "nominal", scale: { domain: ["before", "after"], range: [COLORS.quantized, COLORS.pass] }, title: null, legend: { orient: "top" } },
          tooltip: [{ field: "layer" }, { field: "when" }, { field: "shift", format: ".3g", title: "mean |shift|" }],
        },
      },
    ],
  });
}

const isShiftRows = (x: unknown): boolean => (Array.isArray(x) ? x.length > 0 && Array.isArray((x[0] as { shifts?: unknown }).shifts) : typeof x === "object" && x !== null && isShiftRows((x as { rows?: unknown }).rows));

registerView<BiasCorrectionRecord>("biasCorrectionView", { steps: ["bias-correction"], matches: (x) => Array.isArray(x.corrected) }, biasCorrectionView);
registerView<Shifts | { before: Shifts; after?: Shifts }>("meanShiftsView", { steps: ["mean-shifts"], matches: (x) => isShiftRows(x) || isShiftRows(x.before) }, meanShiftsView);
