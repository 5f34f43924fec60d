import type { ActivationAwareCleResult } from "../src/fix/activation-aware-cle";
import { registerView } from "./registry";
import { COLORS, View, view, WIDTH } from "./spec";

const STATES = ["no CLE", "vanilla CLE", "activation-aware CLE"] as const;

/**
 * Activation-aware CLE, one row per equalized pair, in three states (no CLE,
 * vanilla CLE, the activation-aware variant) on two log axes: left, the
 * activation between the pair, its largest over median channel range (a
 * per-tensor activation grid spans the largest channel, so a channel at
 * 1/ratio of it uses that share of the grid); right, the same ratio for the
 * weights around it (the wider of the first layer's output channels and the
 * second's input channels), which take on what the activation gives up.
 */
export function activationAwareCleView(result: Pick<ActivationAwareCleResult, "activations" | "alpha" | "diagnosis">): View {
  const panel = (what: "ratio" | "weightRatio", title: string) => {
    const rows = result.activations.map((a) => ({ activation: a.activation, index: a.index, low: Math.min(...Object.values(a[what])), high: Math.max(...Object.values(a[what])) }));
    const points = result.activations.flatMap((a) => [
      { activation: a.activation, pair: `${a.first} → ${a.second}`, index: a.index, state: STATES[0], ratio: a[what].original, channels: a.original.length },
      { activation: a.activation, pair: `${a.first} → ${a.second}`, index: a.index, state: STATES[1], ratio: a[what].cle, channels: a.cle.length },
      { activation: a.activation, pair: `${a.first} → ${a.second}`, index: a.index, state: STATES[2], ratio: a[what].aware, channels: a.aware.length },
    ]);
    const y = { field: "activation", type: "nominal", sort: { field: "index" }, title: null, axis: what === "ratio" ? { labelLimit: 220, labelFontSize: 10 } : null } as const;
    const x = { type: "quantitative", scale: { type: "log" }, title } as const;
    return {
      width: (WIDTH - 100) / 2,
      height: { step: 14 },
      layer: [
        { data: { values: rows }, mark: { type: "rule", color: "#bbb" }, encoding: { y, x: { field: "low", ...x }, x2: { field: "high" } } },
        {
          data: { values: points },
          mark: { type: "point", filled: true, size: 50, opacity: 0.9 },
          encoding: {
            y,
            x: { field: "ratio", ...x },
            color: { field: "state", type: "nominal", scale: { domain: [...STATES], range: ["#999", COLORS.quantized, COLORS.pass] }, title: null, legend: { orient: "top", labelLimit: 200 } },
            tooltip: [{ field: "activation" }, { field: "pair" }, { field: "state" }, { field: "ratio", format: ".2f" }, { field: "channels" }],
          },
        },
      ],
    };
  };
  return view(`Activation-aware CLE (α = ${result.alpha}): channel ranges between equalized layers`, result.diagnosis, {
    hconcat: [panel("ratio", "activation: largest / median channel range"), panel("weightRatio", "weights around it: largest / median channel range")],
    resolve: { scale: { color: "shared" } },
  });
}

registerView<Pick<ActivationAwareCleResult, "activations" | "alpha" | "diagnosis">>("activationAwareCleView", { steps: ["activation-aware-cle"] }, activationAwareCleView);
