import type { ActivationAwareCleResult } from "../src/fix/activation-aware-cle";
import { COLORS, View, view, WIDTH } from "./spec";

const STATES = ["no CLE", "vanilla CLE", "activation-aware CLE"] as const;

/**
 * Activation-aware CLE: for the activation between each equalized pair, its
 * largest channel range over its median channel range (log scale) with no
 * CLE, after vanilla CLE and after the activation-aware variant, one row per
 * pair. A per-tensor activation grid spans the largest channel, so a channel
 * at 1/ratio of it uses that share of the grid's steps: nearer 1 is better.
 */
export function activationAwareCleView(result: Pick<ActivationAwareCleResult, "activations" | "alpha" | "diagnosis">): View {
  const rows = result.activations.map((a) => ({
    activation: a.activation,
    pair: `${a.first} → ${a.second}`,
    index: a.index,
    low: Math.min(a.ratio.original, a.ratio.cle, a.ratio.aware),
    high: Math.max(a.ratio.original, a.ratio.cle, a.ratio.aware),
  }));
  const points = result.activations.flatMap((a) => [
    { activation: a.activation, index: a.index, state: STATES[0], ratio: a.ratio.original, channels: a.original.length },
    { activation: a.activation, index: a.index, state: STATES[1], ratio: a.ratio.cle, channels: a.cle.length },
    { activation: a.activation, index: a.index, state: STATES[2], ratio: a.ratio.aware, channels: a.aware.length },
  ]);
  const y = { field: "activation", type: "nominal", sort: { field: "index" }, title: null, axis: { labelLimit: 220, labelFontSize: 10 } } as const;
  const x = { type: "quantitative", scale: { type: "log" }, title: "largest / median channel range of the activation (log)" } as const;
  return view(`Activation channel ranges between equalized layers (α = ${result.alpha})`, result.diagnosis, {
    width: WIDTH,
    height: { step: 14 },
    layer: [
      { data: { values: rows }, mark: { type: "rule", color: "#bbb" }, encoding: { y, x: { field: "low", ...x }, x2: { field: "high" } } },
      {
        data: { values: points },
        mark: { type: "point", filled: true, size: 50, opacity: 0.9 },
        encoding: {
          y,
          x: { field: "ratio", ...x },
          color: { field: "state", type: "nominal", scale: { domain: [...STATES], range: ["#999", COLORS.quantized, COLORS.pass] }, title: null, legend: { orient: "top" } },
          tooltip: [{ field: "activation" }, { field: "state" }, { field: "ratio", format: ".2f" }, { field: "channels" }],
        },
      },
    ],
  });
}
