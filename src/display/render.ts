import * as vega from "vega";
import * as vl from "vega-lite";
import type { View } from "../../widgets/spec";

/**
 * Renders a Vega-Lite view to SVG in Node (Vega needs no canvas for SVG), for
 * front ends that cannot run Vega (classic Notebook, nbconvert HTML) and for
 * files written outside a notebook.
 */
export async function renderSvg(spec: View): Promise<string> {
  const compiled = vl.compile(spec as vl.TopLevelSpec).spec;
  const runtime = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await runtime.toSVG();
  } finally {
    runtime.finalize();
  }
}
