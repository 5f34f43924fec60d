import type { FoldResult } from "../src/fix/fold-batch-norm";
import { registerView } from "./registry";
import { COLORS, emptyView, NAME_AXIS, ROW_STEP, View, view } from "./spec";

type FoldRecord = Pick<FoldResult, "folded" | "notFolded"> & { diagnosis?: string };

/**
 * BatchNorm folding as a table drawn in the view (so a PNG shows it): one row
 * per BatchNorm, the layer it went into and how, or why it stayed.
 */
export function foldView(result: FoldRecord): View {
  const title = "BatchNorm folding";
  const rows = [
    ...result.folded.map((f) => ({ batchNorm: f.batchNorm, outcome: "folded", into: f.into, how: f.position === "after" ? "into the layer before it" : "into the layer it feeds" })),
    ...result.notFolded.map((f) => ({ batchNorm: f.batchNorm, outcome: "not folded", into: f.into, how: f.reason })),
  ].map((r, order) => ({ ...r, order }));
  if (rows.length === 0) return emptyView(title, "The model has no BatchNormalization layer next to a convolution or dense layer: nothing to fold.");
  const reading = `${result.folded.length} BatchNorm${result.folded.length === 1 ? "" : "s"} folded into the layer next to them, as runtimes do (FP32 unchanged)${result.notFolded.length ? `; ${result.notFolded.length} left as they were (the reason is in the row)` : ""}.`;
  const y = { field: "batchNorm", type: "nominal", sort: { field: "order" }, title: "BatchNorm → folded into", axis: { ...NAME_AXIS, ticks: false, domain: false } } as const;
  const column = (field: "into" | "how", at: number) => ({ mark: { type: "text", align: "left", x: at, fontSize: 11 }, encoding: { y, text: { field }, color: { field: "outcome", type: "nominal", scale: { domain: ["folded", "not folded"], range: ["#222", COLORS.fail] }, legend: null } } });
  return view(`${title}: ${result.folded.length} folded${result.notFolded.length ? `, ${result.notFolded.length} not` : ""}`, result.diagnosis ?? reading, {
    width: 460,
    height: { step: ROW_STEP + 2 },
    data: { values: rows },
    layer: [column("into", 0), column("how", 200)],
    config: { view: { stroke: null } },
  });
}

registerView<FoldRecord>("foldView", { steps: ["fold-batch-norm"], matches: (x) => Array.isArray(x.folded) && Array.isArray(x.notFolded) }, foldView);
