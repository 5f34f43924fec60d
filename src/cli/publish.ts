import * as fs from "fs";
import * as path from "path";
import { checkNotebook, notebookPage } from "../report/notebook-page";
import { parseArgs } from "./args";

export const PUBLISH_USAGE = `qdebug publish <notebook.ipynb> [--out page.html] [--title "..."]
  Writes one self-contained HTML page from an executed notebook: the narrative, the code and its
  outputs, each qdebug view as a live chart (vega, vega-lite and vega-embed inlined: pickers and
  sliders work offline). Default --out: the notebook's path with .html.`;

/** `qdebug publish`: an executed notebook as one page that works offline. */
export async function publish(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const args = parseArgs(argv, { boolean: [], value: ["out", "title"] });
  if (args.positionals.length !== 1) throw new Error(`publish needs one notebook path\n${PUBLISH_USAGE}`);
  const source = args.positionals[0];
  if (!/\.ipynb$/i.test(source)) throw new Error(`publish: ${source} is not an .ipynb notebook`);
  if (!fs.existsSync(source) || !fs.statSync(source).isFile()) throw new Error(`publish: no notebook file at ${source}`);
  const target = (args.flags.get("out") as string | undefined) ?? source.replace(/\.ipynb$/i, ".html");
  if (!/\.html?$/i.test(target)) throw new Error(`publish: --out must name an .html file, got ${target}`);
  if (fs.existsSync(target) && !fs.statSync(target).isFile()) throw new Error(`publish: --out ${target} exists and is not a file`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(source, "utf8"));
  } catch (err) {
    throw new Error(`publish: ${source} is not valid JSON (${(err as Error).message})`);
  }
  const notebook = checkNotebook(parsed, source);
  const html = notebookPage(notebook, { title: args.flags.get("title") as string | undefined });
  // Written beside the target and renamed into place: a reader never sees half a page.
  fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
  const partial = `${target}.qdebug-partial-${process.pid}`;
  fs.writeFileSync(partial, html);
  fs.renameSync(partial, target);
  const charts = (html.match(/<div class="chart" id="chart-/g) ?? []).length;
  const unexecuted = notebook.cells.filter((c) => c.cell_type === "code" && (c.outputs ?? []).length === 0).length;
  out(`wrote ${target}: ${notebook.cells.length} cells, ${charts} interactive views${unexecuted ? `; ${unexecuted} code cells have no output (execute the notebook first to publish its plots)` : ""}`);
  return 0;
}
