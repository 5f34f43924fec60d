import * as fs from "fs";
import * as path from "path";
import { plainTitle, View } from "../../widgets/spec";
import { fixStepView } from "../../widgets/flow-view";
import { sweepView } from "../../widgets/sweep-view";
import { registeredViews, viewFor } from "../../widgets/registry";
import "../../widgets/all";
import type { FlowStep } from "../flow/flow-types";
import type { MetricInfo } from "../analysis/evaluation";
import type { ProgressFn } from "../progress";
import { MimeBundle, mimeBundle } from "./bundle";
import { renderSvg } from "./render";
import { inNotebook, sendDisplay } from "./tslab-channel";

/** Anything `show` can draw: a view, or an analysis result (dispatched on its `step`). */
export type Showable = View | { step: string; diagnosis?: string } | readonly { step: string }[] | FlowStep;

/**
 * The view of a result: the view its kind registered (widgets/registry.ts; each
 * view file registers the result kinds it draws), a flow step's own view, or
 * the view itself.
 */
export function viewOf(x: Showable): View {
  if (Array.isArray(x)) return sweepView(...(x as Parameters<typeof sweepView>));
  const r = x as Record<string, unknown>;
  if (r.$schema) return x as View;
  if ("box" in r) return flowStepView(x as FlowStep);
  const drawn = viewFor(r);
  if (drawn) return drawn;
  const known = registeredViews().flatMap((v) => v.steps);
  throw new Error(`show: nothing to draw for ${JSON.stringify(r.step ?? Object.keys(r).slice(0, 4))} (give an analysis or fix result — steps ${known.join(", ")} — or a Vega-Lite view)`);
}

/**
 * A step of the debugging flow: its result's own view when it has one, else
 * the score before and after (in the flow's metric's units when given).
 */
export function flowStepView(step: FlowStep, metric?: MetricInfo): View {
  const result = step.result as Record<string, unknown> | undefined;
  const drawn = result && typeof result === "object" && !step.skipped ? viewFor(result) : undefined;
  return drawn ?? fixStepView(step, metric);
}

function textOf(view: View, x: Showable): string {
  const title = view.title as { subtitle?: string[] } | undefined;
  const diagnosis = !Array.isArray(x) && ((x as { diagnosis?: string }).diagnosis ?? (x as { finding?: string }).finding);
  return [plainTitle(view), diagnosis || title?.subtitle?.join(" ")].filter(Boolean).join("\n");
}

/**
 * Shows a result beside the cell: in a tslab notebook as one display_data with
 * Vega-Lite, SVG, PNG and text; elsewhere it prints the title and the reading,
 * and writes the plot when `options.file` names an .svg, .png or .json file.
 */
export async function show(x: Showable, options: { file?: string } = {}): Promise<void> {
  const view = viewOf(x);
  const bundle = await mimeBundle(view, textOf(view, x));
  if (options.file) writeBundle(bundle, options.file);
  if (inNotebook()) sendDisplay(bundle);
  else if (!options.file) process.stdout.write(`${bundle.data["text/plain"]}\n`);
}

function writeBundle(bundle: MimeBundle, file: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const ext = path.extname(file).toLowerCase();
  if (ext === ".svg") fs.writeFileSync(file, bundle.data["image/svg+xml"] as string);
  else if (ext === ".png") fs.writeFileSync(file, Buffer.from(bundle.data["image/png"] as string, "base64"));
  else if (ext === ".json") fs.writeFileSync(file, JSON.stringify(bundle.data["application/vnd.vegalite.v5+json"], null, 2));
  else throw new Error(`show: cannot write ${file} (use .svg, .png or .json)`);
}

let liveCount = 0;

/**
 * One output that updates in place: a progress bar while long work runs, then
 * (or meanwhile, with partial results) its chart. Outside a notebook, progress
 * goes to the terminal as one line.
 */
export function live(): { progress: ProgressFn; update: (x: Showable) => Promise<void>; flush: () => Promise<void> } {
  const id = `qdebug-live-${process.pid}-${++liveCount}`;
  let shown = false;
  let pending: Promise<void> = Promise.resolve();
  const send = (bundle: { data: Record<string, unknown>; metadata: Record<string, unknown> }) => {
    if (!inNotebook()) return;
    sendDisplay(bundle, id, shown);
    shown = true;
  };
  let last = 0;
  const draw = (x: Showable | View, text?: string) => {
    const view = viewOf(x as Showable);
    pending = pending.then(async () => send(await mimeBundle(view, text ?? textOf(view, x as Showable))));
    return pending;
  };
  return {
    progress: (e) => {
      const share = e.total ? Math.min(1, e.done / e.total) : undefined;
      const text = `${e.task}: ${e.done}${e.total ? `/${e.total}` : ""} ${e.unit} (${(e.elapsedMs / 1000).toFixed(1)} s)${e.detail ? ` ${e.detail}` : ""}`;
      const finished = share === 1;
      if (!inNotebook()) {
        if (finished) process.stdout.write(`${text}\n`);
        return;
      }
      // Redraw at most every 300 ms, and always at the end.
      if (!finished && Date.now() - last < 300) return;
      last = Date.now();
      void draw(progressView(share ?? 0, text), text);
    },
    update: async (x) => {
      await draw(x);
    },
    /** Waits until every redraw has been sent (await it before the cell ends). */
    flush: () => pending,
  };
}

function progressView(share: number, text: string): View {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    width: 400,
    height: 18,
    data: { values: [{ share }] },
    mark: { type: "bar", color: "#4c78a8" },
    encoding: { x: { field: "share", type: "quantitative", scale: { domain: [0, 1] }, axis: { format: "%", title: text } } },
  } as View;
}

export { renderSvg };
