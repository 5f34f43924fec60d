/** A shape for messages: open dimensions print as "?" (`[?, 8]`), never as an empty slot (`[, 8]`) or "null". */
export function shapeText(shape: readonly (number | null | undefined)[]): string {
  return `[${shape.map((d) => (d === null || d === undefined ? "?" : d)).join(", ")}]`;
}
