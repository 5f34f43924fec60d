import type { ImageComparisonResult } from "../src/analysis/image-comparison";
import { registerView } from "./registry";
import { View, view } from "./spec";

/** The longer side of each picture, in pixels (small outputs are enlarged, so pixels show). */
const SIDE = 128;
const GAP = 10;
/** Two caption lines under each picture. */
const CAPTION = 30;

/**
 * Image outputs side by side (`compareImages`): one row per example, FP32's
 * output first, then each variant's output and its difference from FP32
 * (× the result's gain), each captioned with its PSNR. Images are PNG data
 * URLs, so the view draws the same in a notebook, an SVG, a PNG and report.html.
 */
export function imageComparisonView(result: ImageComparisonResult): View {
  const [h, w] = result.shape;
  const scale = SIDE / Math.max(h, w);
  const [iw, ih] = [Math.round(w * scale), Math.round(h * scale)];
  const columns = ["FP32", ...result.examples[0].panels.flatMap((p) => [p.variant, `${p.variant}: difference ×${result.gain}`])];
  const cells = result.examples.flatMap((e, row) => [
    { row, col: 0, url: e.fp32, caption: ["FP32", `example ${e.index + 1}`] },
    ...e.panels.flatMap((p, i) => [
      { row, col: 1 + 2 * i, url: p.image, caption: [p.variant, p.psnr === null ? "identical to FP32" : `PSNR ${p.psnr.toFixed(1)} dB`] },
      { row, col: 2 + 2 * i, url: p.difference, caption: ["difference", `×${result.gain}`] },
    ]),
  ]).map((c) => ({ ...c, x: c.col * (iw + GAP) + iw / 2, y: c.row * (ih + CAPTION + GAP) + ih / 2, ty: c.row * (ih + CAPTION + GAP) + ih + 3 }));
  const width = columns.length * (iw + GAP) - GAP;
  const height = result.examples.length * (ih + CAPTION + GAP) - GAP;
  const pixels = { type: "quantitative", scale: { domain: [0, width], range: [0, width] }, axis: null } as const;
  const rows = { type: "quantitative", scale: { domain: [0, height], range: [0, height] }, axis: null } as const;
  return view(`Output "${result.output}" side by side: FP32, quantized, and their difference`, result.diagnosis, {
    width,
    height,
    data: { values: cells },
    layer: [
      { mark: { type: "image", width: iw, height: ih, aspect: false, smooth: false }, encoding: { x: { field: "x", ...pixels }, y: { field: "y", ...rows }, url: { field: "url", type: "nominal" } } },
      { mark: { type: "text", baseline: "top", fontSize: 10, limit: iw + GAP - 2 }, encoding: { x: { field: "x", ...pixels }, y: { field: "ty", ...rows }, text: { field: "caption" } } },
    ],
    config: { view: { stroke: null } },
  });
}

registerView<ImageComparisonResult>("imageComparisonView", { steps: ["image-comparison"] }, imageComparisonView);
