import type { TopLevelSpec } from "vega-lite";

/** What every view returns: a Vega-Lite v5 spec, plain JSON, nothing computed. */
export type View = TopLevelSpec & { $schema: string };

export const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/** Shared look: one width for all step views, so a notebook reads as one column. */
export const WIDTH = 560;

export const COLORS = {
  fp32: "#4c78a8",
  quantized: "#e45756",
  weights: "#f58518",
  activations: "#54a24b",
  pass: "#54a24b",
  fail: "#e45756",
  local: "#72b7b2",
  propagated: "#e45756",
};

/** A view with the schema and a title with the plain-language reading as its subtitle. */
export function view(title: string, subtitle: string | undefined, body: Record<string, unknown>): View {
  return {
    $schema: SCHEMA,
    title: { text: title, subtitle: subtitle ? wrap(subtitle, 100) : undefined, anchor: "start" },
    ...body,
  } as View;
}

/** Splits a long sentence into lines for a subtitle. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
