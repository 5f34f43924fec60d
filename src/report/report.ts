import * as fs from "fs";
import * as path from "path";
import type { View } from "../../widgets/spec";

/** A table of the numbers behind a section: sortable in the page (click a column header). */
export interface ReportTable {
  caption: string;
  columns: { key: string; label: string; format?: "text" | "score" | "percent" | "number" | "db" }[];
  rows: Record<string, string | number | boolean | null>[];
}

export interface ReportSection {
  /** The guidebook step ("1. FP32 sanity check"). */
  step: string;
  /** The plain-language reading, shown under the view. */
  diagnosis: string;
  views: View[];
  /** The numbers behind the views (sortable). */
  tables?: ReportTable[];
}

/** What the page says first: the culprits, the fix that helped, the next step. */
export interface ReportSummary {
  /** One sentence: where things stand (the drop, or whether the target was met). */
  headline: string;
  /** Labelled findings, in order ("Culprits", "Fix that helped", "Next step"). */
  items: { label: string; text: string }[];
}

/** A UMD build shipped inside a package (vega, vega-lite, vega-embed), read once to inline it. */
export function bundled(pkg: string, file: string): string {
  const dir = path.dirname(require.resolve(pkg));
  const candidates = [path.join(dir, file), path.join(dir, "build", file)];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) throw new Error(`cannot find ${file} in the ${pkg} package (looked in ${candidates.join(", ")})`);
  return fs.readFileSync(found, "utf8");
}

export const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
/** JSON that is safe inside a <script> element. */
export const scriptJson = (x: unknown) => JSON.stringify(x).replace(/</g, "\\u003c");

/** An id for a heading's anchor: "3. Per-layer analysis" → "s3-per-layer-analysis". */
const anchor = (text: string, i: number) => `s${i + 1}-${text.toLowerCase().replace(/^\d+\.\s*/, "").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")}`;

/** The first sentence of a reading, for the findings list when no summary is given. */
function firstSentence(text: string): string {
  const m = /^(.+?[.!?])(\s|$)/.exec(text.trim());
  return m ? m[1] : text.trim();
}

function formatCell(value: string | number | boolean | null, format: ReportTable["columns"][number]["format"]): string {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return String(value);
  switch (format) {
    case "percent":
      return `${(value * 100).toFixed(2)} %`;
    case "db":
      return `${value.toFixed(1)} dB`;
    case "score":
      return value.toFixed(4);
    case "number":
      return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(2) : String(Number(value.toPrecision(4)));
    default:
      return String(value);
  }
}

/** A table whose cells carry their raw values (data-v) for sorting; the header buttons sort it in the page. */
function tableHtml(t: ReportTable): string {
  const head = t.columns.map((c, i) => `<th scope="col"><button type="button" data-col="${i}" title="sort by ${escapeHtml(c.label)}">${escapeHtml(c.label)}</button></th>`).join("");
  const body = t.rows
    .map((r) => `<tr>${t.columns.map((c) => {
      const v = r[c.key];
      const sortValue = typeof v === "number" ? String(v) : v === null || v === undefined ? "" : String(v);
      return `<td data-v="${escapeHtml(sortValue)}"${typeof v === "number" ? ' class="num"' : ""}>${escapeHtml(formatCell(v, c.format))}</td>`;
    }).join("")}</tr>`)
    .join("\n");
  return `<details class="numbers"><summary>${escapeHtml(t.caption)} (${t.rows.length} rows)</summary>
<table class="sortable"><thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table></details>`;
}

/** Click a header to sort by it (numbers as numbers), again to reverse. Plain DOM, no library. */
const SORT_SCRIPT = `
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th button").forEach((button) => button.addEventListener("click", () => {
    const col = Number(button.dataset.col);
    const dir = button.dataset.dir === "asc" ? "desc" : "asc";
    table.querySelectorAll("th button").forEach((b) => { delete b.dataset.dir; b.removeAttribute("aria-sort"); });
    button.dataset.dir = dir;
    button.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = [...body.rows];
    const key = (r) => r.cells[col].dataset.v;
    const numeric = rows.every((r) => key(r) === "" || !Number.isNaN(Number(key(r))));
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      const c = numeric ? (x === "" ? Infinity : Number(x)) - (y === "" ? Infinity : Number(y)) : x.localeCompare(y);
      return dir === "asc" ? c : -c;
    });
    body.append(...rows);
  }));
}`;

/**
 * One self-contained HTML page that works offline, findings first:
 *
 * 1. the summary (the culprits, the fix that helped, the next step; without
 *    one, the first sentence of each section's reading),
 * 2. a table of contents,
 * 3. each section: its views (interactive: pickers and sliders run in the
 *    page), its reading, and the numbers behind it as sortable tables.
 *
 * vega, vega-lite and vega-embed are inlined once.
 */
export function buildReport(title: string, subtitle: string, sections: readonly ReportSection[], options: { summary?: ReportSummary } = {}): string {
  const specs: View[] = [];
  const ids = sections.map((s, i) => anchor(s.step, i));
  const body = sections
    .map((s, i) => {
      const charts = s.views
        .map((v) => {
          // The reading is printed under the view; keep only the title in the chart.
          const t = v.title as { text?: unknown } | undefined;
          specs.push({ ...v, title: t?.text ? { text: t.text, anchor: "start" } : v.title } as View);
          return `<div class="chart" id="chart-${specs.length - 1}"></div>`;
        })
        .join("\n");
      const tables = (s.tables ?? []).map(tableHtml).join("\n");
      return `<section id="${ids[i]}"><h2>${escapeHtml(s.step)}</h2>\n${charts}\n<p class="reading">${escapeHtml(s.diagnosis)}</p>${tables ? `\n${tables}` : ""}</section>`;
    })
    .join("\n");
  const summary = options.summary ?? {
    headline: "Findings, one per step (details below).",
    items: sections.map((s) => ({ label: s.step.replace(/^\d+\.\s*/, ""), text: firstSentence(s.diagnosis) })),
  };
  const summaryHtml = `<section id="summary" class="summary"><h2>Summary</h2>
<p class="headline">${escapeHtml(summary.headline)}</p>
<dl>${summary.items.map((it) => `<dt>${escapeHtml(it.label)}</dt><dd>${escapeHtml(it.text)}</dd>`).join("")}</dl></section>`;
  const toc = `<nav class="toc" aria-label="contents"><h2>Contents</h2><ol>${sections.map((s, i) => `<li><a href="#${ids[i]}">${escapeHtml(s.step.replace(/^\d+\.\s*/, ""))}</a></li>`).join("")}</ol></nav>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .subtitle { color: #555; margin-top: 0; }
section { margin: 2.5em 0; } .reading { background: #f4f6f8; border-left: 4px solid #4c78a8; padding: 0.6em 1em; }
.summary { background: #fbf7ea; border: 1px solid #e6d9a8; padding: 0.4em 1.2em 0.8em; margin-top: 1em; }
.summary .headline { font-size: 1.15em; font-weight: 600; }
.summary dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4em 1em; margin: 0; }
.summary dt { font-weight: 600; } .summary dd { margin: 0; }
.toc ol { columns: 2; margin-top: 0.3em; } .toc h2 { margin-bottom: 0; font-size: 1.1em; }
.chart { margin: 1em 0; }
details.numbers summary { cursor: pointer; color: #4c78a8; margin: 0.6em 0; }
table.sortable { border-collapse: collapse; font-size: 0.9em; }
table.sortable th button { font: inherit; font-weight: 600; background: none; border: none; cursor: pointer; padding: 0.2em 0.4em; }
table.sortable th button[data-dir="asc"]::after { content: " ▲"; } table.sortable th button[data-dir="desc"]::after { content: " ▼"; }
table.sortable td { padding: 0.15em 0.6em; border-top: 1px solid #e5e5e5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
</style>
<script>${bundled("vega", "vega.min.js")}</script>
<script>${bundled("vega-lite", "vega-lite.min.js")}</script>
<script>${bundled("vega-embed", "vega-embed.min.js")}</script>
</head><body>
<h1>${escapeHtml(title)}</h1><p class="subtitle">${escapeHtml(subtitle)}</p>
${summaryHtml}
${toc}
${body}
<script>
${SORT_SCRIPT}
const specs = ${scriptJson(specs)};
window.qdebugCharts = Promise.all(specs.map((spec, i) => vegaEmbed("#chart-" + i, spec, { actions: false, renderer: "svg" })));
</script>
</body></html>
`;
}
