import { Resvg } from "@resvg/resvg-js";
import type { View } from "../../widgets/spec";
import { renderSvg } from "./render";

export const VEGALITE_MIME = "application/vnd.vegalite.v5+json";

/**
 * One display_data for every front end: live Vega-Lite where it runs
 * (JupyterLab, Notebook 7, VS Code), SVG for classic Notebook and nbconvert's
 * HTML, PNG for GitHub, text elsewhere. No text/html: it would outrank the Vega
 * renderer in JupyterLab.
 */
export interface MimeBundle {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

export async function mimeBundle(view: View, text: string): Promise<MimeBundle> {
  const svg = await renderSvg(view);
  const png = pngOf(svg);
  return {
    data: {
      [VEGALITE_MIME]: view,
      "image/svg+xml": svg,
      "image/png": Buffer.from(png).toString("base64"),
      "text/plain": text,
    },
    metadata: {
      [VEGALITE_MIME]: { embed_options: { actions: { export: true, source: false, compiled: false, editor: false } } },
      "image/png": { width: Math.round(png.readUInt32BE(16) / 2), height: Math.round(png.readUInt32BE(20) / 2) },
    },
  };
}

/**
 * The SVG as a PNG at twice its size, cropped to what is drawn (plus a small
 * margin). Vega sizes the canvas from a guess of text widths that runs wider
 * than the real font, which left up to 40 % of a PNG blank on the right.
 */
function pngOf(svg: string): Buffer {
  // Without the canvas-sized white background, the bounding box is that of the marks and text.
  const bare = svg.replace(/^(<svg[^>]*>)<rect width="[\d.]+" height="[\d.]+" fill="white"\/>/, "$1");
  const resvg = new Resvg(bare, { fitTo: { mode: "zoom", value: 2 }, font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "white" });
  const box = resvg.getBBox();
  if (box) {
    const margin = 8;
    box.x -= margin;
    box.y -= margin;
    box.width += 2 * margin;
    box.height += 2 * margin;
    resvg.cropByBBox(box);
  }
  return resvg.render().asPng();
}
