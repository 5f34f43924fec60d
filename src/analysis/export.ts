import * as fs from "fs";
import * as path from "path";

type Cell = string | number | boolean | null | undefined;

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return cell(v.join(" "));
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Rows of plain objects as CSV (RFC 4180 quoting). Nested objects are flattened
 * one level ("local.mse"), so per-layer error rows keep their columns.
 */
export function toCsv(rows: readonly object[]): string {
  const flat = rows.map((row) => {
    const out: Record<string, Cell> = {};
    for (const [k, v] of Object.entries(row as Record<string, unknown>)) {
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) out[`${k}.${k2}`] = v2 as Cell;
      } else out[k] = v as Cell;
    }
    return out;
  });
  const columns = [...new Set(flat.flatMap((r) => Object.keys(r)))];
  return [columns.map(cell).join(","), ...flat.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

/** The tables of each result section, by file name. */
export type Tables = Record<string, readonly object[]>;

/** Writes `<name>.json` (default results.json) and one CSV per table into `dir`; returns the files written. */
export function writeResults(dir: string, results: Record<string, unknown>, tables: Tables, name = "results"): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, `${name}.json`)];
  fs.writeFileSync(files[0], `${JSON.stringify(results, null, 2)}\n`);
  for (const [name, rows] of Object.entries(tables)) {
    const file = path.join(dir, `${name}.csv`);
    fs.writeFileSync(file, toCsv(rows));
    files.push(file);
  }
  return files;
}
