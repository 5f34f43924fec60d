import type { View } from "../../widgets/spec";
import { VEGALITE_MIME } from "../display/bundle";
import { markdownToHtml } from "./markdown";
import { bundled, escapeHtml, scriptJson } from "./report";

/** The parts of an .ipynb (nbformat 4) a page needs. */
export interface Notebook {
  nbformat: number;
  cells: NotebookCell[];
  metadata?: Record<string, unknown>;
}

export interface NotebookCell {
  cell_type: "markdown" | "code" | "raw";
  source: string | string[];
  outputs?: NotebookOutput[];
}

export type NotebookOutput =
  | { output_type: "stream"; name: "stdout" | "stderr"; text: string | string[] }
  | { output_type: "display_data" | "execute_result" | "update_display_data"; data: Record<string, unknown>; metadata?: Record<string, unknown> }
  | { output_type: "error"; ename: string; evalue: string; traceback?: string[] };

const text = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join("") : (s ?? ""));
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "");

/** Checks the file is a notebook this page can render, naming what is wrong. */
export function checkNotebook(x: unknown, name: string): Notebook {
  const nb = x as Partial<Notebook> | null;
  if (!nb || typeof nb !== "object" || !Array.isArray(nb.cells)) throw new Error(`${name} is not a Jupyter notebook: it has no "cells" list`);
  if (nb.nbformat !== 4) throw new Error(`${name}: nbformat ${String(nb.nbformat)} is not supported (nbformat 4 only; \`jupyter nbconvert --to notebook\` upgrades older ones)`);
  nb.cells.forEach((c, i) => {
    if (!c || !["markdown", "code", "raw"].includes(c.cell_type)) throw new Error(`${name}: cell ${i + 1} has an unknown cell_type ${JSON.stringify(c?.cell_type)}`);
  });
  return nb as Notebook;
}

/**
 * One self-contained HTML page from an executed notebook: the narrative
 * (Markdown), the code, and each output as the richest thing a browser can
 * show: a Vega-Lite view as a live chart (vega, vega-lite and vega-embed
 * inlined, so pickers and sliders work offline), else SVG, else PNG, else
 * text. A failed cell (an error output, or tslab's stderr) is marked as one.
 */
export function notebookPage(nb: Notebook, options: { title?: string } = {}): string {
  const specs: View[] = [];
  const firstHeading = nb.cells.filter((c) => c.cell_type === "markdown").map((c) => /^#\s+(.+)$/m.exec(text(c.source))?.[1]).find(Boolean);
  const title = options.title ?? firstHeading ?? "notebook";
  const output = (o: NotebookOutput): string => {
    if (o.output_type === "stream") {
      return `<pre class="stream ${o.name === "stderr" ? "stderr" : "stdout"}">${escapeHtml(stripAnsi(text(o.text)))}</pre>`;
    }
    if (o.output_type === "error") {
      return `<pre class="stream stderr">${escapeHtml(stripAnsi(o.traceback?.length ? o.traceback.join("\n") : `${o.ename}: ${o.evalue}`))}</pre>`;
    }
    const data = o.data ?? {};
    const vl = data[VEGALITE_MIME];
    if (vl && typeof vl === "object") {
      specs.push(vl as View);
      const png = data["image/png"];
      // The PNG stays as the fallback a browser without script shows.
      return `<div class="chart" id="chart-${specs.length - 1}">${typeof png === "string" ? `<noscript><img alt="chart" src="data:image/png;base64,${png.replace(/\s/g, "")}"></noscript>` : ""}</div>`;
    }
    if (typeof data["image/svg+xml"] === "string" || Array.isArray(data["image/svg+xml"])) return `<div class="svg">${text(data["image/svg+xml"] as string)}</div>`;
    if (typeof data["image/png"] === "string") return `<img alt="output" src="data:image/png;base64,${(data["image/png"] as string).replace(/\s/g, "")}">`;
    if (data["text/plain"] !== undefined) return `<pre class="stream stdout">${escapeHtml(stripAnsi(text(data["text/plain"] as string | string[])))}</pre>`;
    return "";
  };
  const body = nb.cells
    .map((c) => {
      if (c.cell_type === "markdown") return `<div class="markdown">${markdownToHtml(text(c.source))}</div>`;
      if (c.cell_type === "raw") return "";
      const outputs = (c.outputs ?? []).filter((o) => o.output_type !== "update_display_data").map(output).join("\n");
      return `<div class="cell"><pre class="code"><code>${escapeHtml(text(c.source))}</code></pre>${outputs ? `\n<div class="outputs">${outputs}</div>` : ""}</div>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
pre { overflow-x: auto; } code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
.markdown code { background: #f2f2f2; padding: 0 0.2em; }
pre.code { background: #f7f7f9; border-left: 3px solid #999; padding: 0.6em 0.8em; margin: 1em 0 0.3em; }
pre.stream { margin: 0.3em 0; padding: 0.2em 0.8em; } pre.stderr { background: #fdecea; border-left: 3px solid #e45756; }
.chart, .svg { margin: 0.6em 0 1.2em; } table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 0.2em 0.5em; }
</style>
<script>${bundled("vega", "vega.min.js")}</script>
<script>${bundled("vega-lite", "vega-lite.min.js")}</script>
<script>${bundled("vega-embed", "vega-embed.min.js")}</script>
</head><body>
${body}
<script>
const specs = ${scriptJson(specs)};
window.qdebugCharts = Promise.all(specs.map((spec, i) => vegaEmbed("#chart-" + i, spec, { actions: false, renderer: "svg" })));
</script>
</body></html>
`;
}
