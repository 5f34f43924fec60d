import * as fs from "fs";
import * as path from "path";
import type { View } from "../../widgets/spec";

export interface ReportSection {
  /** The guidebook step ("1. FP32 sanity check"). */
  step: string;
  /** The plain-language reading, shown under the view. */
  diagnosis: string;
  views: View[];
}

/** A UMD build shipped inside a package (vega, vega-lite, vega-embed), read once to inline it. */
function bundled(pkg: string, file: string): string {
  const dir = path.dirname(require.resolve(pkg));
  const candidates = [path.join(dir, file), path.join(dir, "build", file)];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) throw new Error(`cannot find ${file} in the ${pkg} package (looked in ${candidates.join(", ")})`);
  return fs.readFileSync(found, "utf8");
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
/** JSON that is safe inside a <script> element. */
const scriptJson = (x: unknown) => JSON.stringify(x).replace(/</g, "\\u003c");

/**
 * One self-contained HTML page that works offline: vega, vega-lite and
 * vega-embed inlined once, then the guidebook's steps in order, each with its
 * views (interactive: pickers and sliders run in the page) and its reading.
 */
export function buildReport(title: string, subtitle: string, sections: readonly ReportSection[]): string {
  const specs: View[] = [];
  const body = sections
    .map((s) => {
      const charts = s.views
        .map((v) => {
          // The reading is printed under the view; keep only the title in the chart.
          const t = v.title as { text?: string } | undefined;
          specs.push({ ...v, title: t?.text ? { text: t.text, anchor: "start" } : v.title } as View);
          return `<div class="chart" id="chart-${specs.length - 1}"></div>`;
        })
        .join("\n");
      return `<section><h2>${escapeHtml(s.step)}</h2>\n${charts}\n<p class="reading">${escapeHtml(s.diagnosis)}</p></section>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } .subtitle { color: #555; margin-top: 0; }
section { margin: 2.5em 0; } .reading { background: #f4f6f8; border-left: 4px solid #4c78a8; padding: 0.6em 1em; }
.chart { margin: 1em 0; }
</style>
<script>${bundled("vega", "vega.min.js")}</script>
<script>${bundled("vega-lite", "vega-lite.min.js")}</script>
<script>${bundled("vega-embed", "vega-embed.min.js")}</script>
</head><body>
<h1>${escapeHtml(title)}</h1><p class="subtitle">${escapeHtml(subtitle)}</p>
${body}
<script>
const specs = ${scriptJson(specs)};
window.qdebugCharts = Promise.all(specs.map((spec, i) => vegaEmbed("#chart-" + i, spec, { actions: false, renderer: "svg" })));
</script>
</body></html>
`;
}
