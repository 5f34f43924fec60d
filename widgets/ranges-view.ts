import type { RangesResult } from "../src/analysis/ranges";
import { registerView } from "./registry";
import { COLORS, emptyView, NAME_AXIS, ROW_STEP, significant, View, view } from "./spec";

/** Quantizers whose range is written beside them, per panel. */
const LABELLED = 2;

/**
 * Per-quantizer encoding ranges as bars from min to max, one named row per
 * quantizer in execution order: weights and activations in two panels, each
 * with its own scale (a weight of ±0.5 and an activation of 0–6 do not share
 * one). The widest ranges of each kind carry their values.
 */
export function rangesView(result: RangesResult): View {
  const title = "Quantization ranges per layer";
  const kinds = (["weight", "activation", "bias"] as const).filter((k) => result.rows.some((r) => r.kind === k));
  if (kinds.length === 0) return emptyView(title, "The simulation has no enabled quantizer: there is no range to draw.");
  // A row is named by its layer; by the quantizer only where a layer has two of a kind (separable convolutions).
  const count = new Map<string, number>();
  for (const r of result.rows) count.set(`${r.kind} ${r.node}`, (count.get(`${r.kind} ${r.node}`) ?? 0) + 1);
  const rows = result.rows.map((r) => ({ ...r, name: count.get(`${r.kind} ${r.node}`)! > 1 ? r.quantizer : r.node, width: r.max - r.min }));
  const labelled = new Set(kinds.flatMap((k) => rows.filter((r) => r.kind === k).sort((a, b) => b.width - a.width).slice(0, LABELLED).map((r) => r.quantizer)));
  const values = rows.map((r) => ({ ...r, label: labelled.has(r.quantizer) ? `[${significant(r.min, 3)}, ${significant(r.max, 3)}]` : "" }));
  const colors = { weight: COLORS.weights, activation: COLORS.activations, bias: COLORS.fp32 };
  const panel = (kind: (typeof kinds)[number]) => {
    const y = { field: "name", type: "nominal", sort: { field: "index" }, title: null, axis: NAME_AXIS } as const;
    const x = { type: "quantitative", title: `${kind} range`, scale: { nice: false, zero: true, padding: 8 } } as const;
    return {
      title: { text: `${kind}s`, anchor: "start", fontSize: 12 },
      width: 220,
      height: { step: ROW_STEP },
      transform: [{ filter: `datum.kind === '${kind}'` }],
      layer: [
        {
          mark: { type: "bar", height: 8, color: colors[kind] },
          encoding: {
            y,
            x: { field: "min", ...x },
            x2: { field: "max" },
            tooltip: [{ field: "quantizer" }, { field: "min", format: ".4g" }, { field: "max", format: ".4g" }, { field: "scale", format: ".3g", title: "step" }, { field: "bitwidth" }, { field: "perChannel" }],
          },
        },
        { mark: { type: "rule", color: "#444", strokeWidth: 0.6 }, encoding: { x: { datum: 0, type: "quantitative" } } },
        { mark: { type: "text", align: "left", dx: 4, fontSize: 10, fontWeight: "bold" }, encoding: { y, x: { field: "max", type: "quantitative" }, text: { field: "label" } } },
      ],
    };
  };
  return view(title, result.diagnosis, {
    data: { values },
    hconcat: kinds.map(panel),
    spacing: 30,
  });
}

registerView<RangesResult>("rangesView", { steps: ["ranges"] }, rangesView);
