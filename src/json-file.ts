import * as fs from "fs";

/**
 * Reads a JSON file a user pointed us at (a model.json, a config). Only regular
 * files are read, so /dev/zero or a fifo fails at once instead of hanging, and a
 * parse error never echoes the file's bytes: binary content is named as such,
 * and control characters in V8's excerpt are escaped.
 */
export function readJsonFile(file: string, what: string): unknown {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new Error(`${what} not found: ${file}`);
  }
  if (!stat.isFile()) throw new Error(`${what} ${file} is not a regular file`);
  const bytes = fs.readFileSync(file);
  let text: string;
  try {
    if (bytes.includes(0)) throw new Error("NUL byte");
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${what} ${file} is not valid JSON: it holds binary data`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} ${file} is not valid JSON (${printable((err as Error).message)})`);
  }
}

/** Escapes control characters and shortens, so a message stays one readable line. */
export function printable(s: string, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const escaped = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}
