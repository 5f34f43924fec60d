import type { SanityCheckResult } from "../src/quant/sanity-check";
import { COLORS, View, view, WIDTH } from "./spec";
import { registerView } from "./registry";

/** FP32 sanity check: each variant's largest relative error against FP32, with the tolerance. */
export function sanityView(result: SanityCheckResult): View {
  const floor = 1e-12; // a bypassed simulation has exactly 0 error: draw it at the floor of the log scale
  return view("FP32 sanity check", result.diagnosis, {
    width: WIDTH,
    height: 90,
    data: { values: result.checks.map((c) => ({ variant: c.variant, error: Math.max(c.maxRelError, floor), exact: c.maxRelError === 0, pass: c.pass ? "pass" : "fail" })) },
    layer: [
      {
        mark: { type: "bar", height: 22 },
        encoding: {
          y: { field: "variant", type: "nominal", title: null },
          x: { field: "error", type: "quantitative", scale: { type: "log", domain: [floor, 1] }, title: "largest relative output error vs FP32" },
          // Log scales have no zero: bars start at the floor.
          x2: { datum: floor },
          color: { field: "pass", type: "nominal", scale: { domain: ["pass", "fail"], range: [COLORS.pass, COLORS.fail] }, title: null },
          tooltip: [{ field: "variant" }, { field: "error", format: ".2e" }, { field: "exact" }, { field: "pass" }],
        },
      },
      {
        transform: [{ filter: "datum.exact" }],
        mark: { type: "text", align: "left", dx: 4 },
        encoding: { y: { field: "variant", type: "nominal" }, x: { field: "error", type: "quantitative" }, text: { value: "exact: no error at all" } },
      },
      { data: { values: [{ tolerance: result.tolerance }] }, mark: { type: "rule", strokeDash: [4, 3] }, encoding: { x: { field: "tolerance", type: "quantitative" } } },
    ],
  });
}

registerView<SanityCheckResult>("sanityView", { steps: ["fp32-sanity-check"] }, sanityView);
