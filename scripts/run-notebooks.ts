/**
 * The tutorial notebooks, executed as a reader runs them: real Jupyter
 * (Debian's nbconvert and nbclient) and the tslab kernel from node_modules,
 * with qdebug imported by name.
 *
 *   npm run notebooks                      re-executes every notebooks/*.ipynb and writes the executed copy back
 *   npm run notebooks -- 03-fixing-weights  only the notebooks whose names contain one of the words
 *
 * The executed copies are committed (GitHub and nbviewer show their plots);
 * test/notebooks.test.ts re-executes each one and compares it with the
 * committed copy (`compareNotebooks`), so a stale notebook fails the tests.
 */
import * as fs from "fs";
import * as path from "path";
import { execFile, execFileSync } from "child_process";

const ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return dir;
})();
export const NOTEBOOKS_DIR = path.join(ROOT, "notebooks");

/**
 * Numbers in text outputs may move by this much between runs (a value within
 * rounding of a tie may land on the neighbouring code, thread counts change
 * float sums): |a − b| ≤ absolute + relative · max(|a|, |b|). Integers (counts,
 * layer numbers, sizes) must match exactly, and durations ("4.0 s") are not compared.
 */
export const TOLERANCE = { absolute: 1e-3, relative: 0.02 };

export interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
export interface NotebookCell {
  cell_type: string;
  source: string | string[];
  metadata?: Record<string, unknown>;
  outputs?: NotebookOutput[];
  execution_count?: number | null;
  id?: string;
}
export interface NotebookJson {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

/** Every notebook in notebooks/, by file name, sorted. */
export function listNotebooks(): string[] {
  return fs.readdirSync(NOTEBOOKS_DIR).filter((f) => f.endsWith(".ipynb")).sort();
}

const joined = (s: string | string[] | undefined): string => (Array.isArray(s) ? s.join("") : s ?? "");

/**
 * What executing needs, made once: the tslab kernel spec under .tmp/jupyter
 * (its kernel.json runs a bare `tslab`, so node_modules/.bin goes on PATH) and
 * notebooks/node_modules/qdebug linking to this package, so `import * as qd
 * from "qdebug"` resolves as in a user's project. Returns the environment.
 */
export function prepareJupyter(): NodeJS.ProcessEnv {
  const kernels = path.join(ROOT, ".tmp", "jupyter");
  const bin = path.join(ROOT, "node_modules", ".bin");
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, JUPYTER_PATH: path.join(kernels, "share", "jupyter") };
  try {
    execFileSync("jupyter", ["nbconvert", "--version"], { env, stdio: "pipe" });
  } catch {
    throw new Error("Jupyter is not installed: run `bash scripts/install-test-deps.sh` (Debian's jupyter-nbconvert, python3-nbclient)");
  }
  execFileSync(path.join(bin, "tslab"), ["install", "--python=/usr/bin/python3", `--prefix=${kernels}`], { env, stdio: "pipe" });
  const link = path.join(NOTEBOOKS_DIR, "node_modules", "qdebug");
  if (!fs.existsSync(link)) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join("..", ".."), link, "dir");
  }
  return env;
}

/**
 * Executes one notebook top to bottom (errors do not stop it: they are in the
 * outputs, where `notebookErrors` finds them) and returns the executed copy,
 * cleaned of what changes on every run (timestamps).
 */
export async function executeNotebook(name: string, env: NodeJS.ProcessEnv, timeoutSeconds = 900): Promise<{ notebook: NotebookJson; seconds: number }> {
  const out = path.join(ROOT, ".tmp", "notebooks", `executed-${name}`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  const start = Date.now();
  await new Promise<void>((resolve, reject) => {
    execFile("jupyter", ["nbconvert", "--to", "notebook", "--execute", name, "--allow-errors", "--output", out, `--ExecutePreprocessor.timeout=${timeoutSeconds}`], { cwd: NOTEBOOKS_DIR, env, maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`jupyter nbconvert failed on ${name}: ${err.message}\n${String(stderr).slice(-2000)}`)) : resolve(),
    );
  });
  const seconds = (Date.now() - start) / 1000;
  return { notebook: cleanExecuted(JSON.parse(fs.readFileSync(out, "utf8")) as NotebookJson), seconds };
}

/**
 * Executes notebooks `jobs` at a time (default 2: one per core of the CI
 * machine; each kernel runs tfjs on one thread). Returns one promise per name,
 * so a caller can check each as soon as it is done.
 */
export function executeNotebooks(names: readonly string[], env: NodeJS.ProcessEnv, jobs = 2): Map<string, Promise<{ notebook: NotebookJson; seconds: number }>> {
  type Run = { notebook: NotebookJson; seconds: number };
  const settle = new Map<string, { resolve: (r: Run) => void; reject: (e: unknown) => void }>();
  const results = new Map<string, Promise<Run>>();
  for (const name of names) {
    const promise = new Promise<Run>((resolve, reject) => settle.set(name, { resolve, reject }));
    promise.catch(() => undefined); // reported to whoever awaits it, not as an unhandled rejection
    results.set(name, promise);
  }
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++];
      await executeNotebook(name, env).then(settle.get(name)!.resolve, settle.get(name)!.reject);
    }
  };
  for (let i = 0; i < Math.max(1, jobs); i++) void worker();
  return results;
}

/** Drops per-run metadata (execution timestamps), so a re-executed notebook differs only where its results do. */
export function cleanExecuted(nb: NotebookJson): NotebookJson {
  const cells = nb.cells.map((c, i) => {
    const { execution: _, ...metadata } = (c.metadata ?? {}) as Record<string, unknown>;
    return { ...c, id: c.id ?? `cell-${String(i).padStart(2, "0")}`, metadata };
  });
  return { ...nb, cells, nbformat: 4, nbformat_minor: Math.max(nb.nbformat_minor, 5) };
}

/** Writes a notebook as Jupyter does (one-space indent, trailing newline). */
export function writeNotebook(file: string, nb: NotebookJson): void {
  fs.writeFileSync(file, `${JSON.stringify(nb, null, 1)}\n`);
}

/**
 * A notebook's failed cells. tslab reports a thrown error as stderr text, not
 * as an error output, and nbconvert exits 0 either way: both count here.
 */
export function notebookErrors(nb: NotebookJson): string[] {
  const found: string[] = [];
  nb.cells.forEach((c, i) => {
    for (const o of c.outputs ?? []) {
      if (o.output_type === "error") found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
      else if (o.output_type === "stream" && o.name === "stderr") found.push(`cell ${i}: stderr: ${joined(o.text).trim().slice(0, 500)}`);
    }
  });
  return found;
}

/** Consecutive stream outputs of one name are one text (how they are split depends on timing). */
function mergedOutputs(outputs: NotebookOutput[]): NotebookOutput[] {
  const merged: NotebookOutput[] = [];
  for (const o of outputs) {
    const last = merged[merged.length - 1];
    if (o.output_type === "stream" && last?.output_type === "stream" && last.name === o.name) last.text = joined(last.text) + joined(o.text);
    else merged.push({ ...o, text: o.output_type === "stream" ? joined(o.text) : o.text });
  }
  return merged;
}

const DURATION = /\d+(?:\.\d+)?\s?(?:ms|s|min)\b/g;
const NUMBER = /\d[\d,]*(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** Where two texts differ beyond the tolerance, or undefined. */
export function compareText(committed: string, executed: string, tolerance = TOLERANCE): string | undefined {
  const [a, b] = [committed, executed].map((t) => t.replace(DURATION, "<duration>"));
  const words = (t: string) => t.split(NUMBER);
  const numbers = (t: string) => t.match(NUMBER) ?? [];
  const [wa, wb] = [words(a), words(b)];
  const [na, nb] = [numbers(a), numbers(b)];
  if (wa.length !== wb.length || wa.some((w, i) => w !== wb[i])) {
    const i = wa.findIndex((w, k) => w !== wb[k]);
    return `the text differs: committed ${JSON.stringify((wa[i] ?? "").slice(0, 80))}, executed ${JSON.stringify((wb[i] ?? "").slice(0, 80))}`;
  }
  for (let i = 0; i < na.length; i++) {
    const [x, y] = [Number(na[i].replace(/,/g, "")), Number(nb[i].replace(/,/g, ""))];
    const integer = /^[\d,]+$/.test(na[i]) && /^[\d,]+$/.test(nb[i]);
    const close = integer ? x === y : Math.abs(x - y) <= tolerance.absolute + tolerance.relative * Math.max(Math.abs(x), Math.abs(y));
    if (!close) return `a number differs: committed ${na[i]}, executed ${nb[i]} (in ${JSON.stringify(b.slice(0, 120))}…)`;
  }
  return undefined;
}

/**
 * Where a committed notebook is stale against a fresh execution: different
 * cells (type or source), a different number or kind of outputs, different
 * MIME types, text (printed or a plot's reading) whose words differ or whose
 * numbers differ beyond the tolerance. Empty when the committed copy is current.
 */
export function compareNotebooks(committed: NotebookJson, executed: NotebookJson, tolerance = TOLERANCE): string[] {
  const problems: string[] = [];
  if (committed.cells.length !== executed.cells.length) return [`${committed.cells.length} cells committed, ${executed.cells.length} executed`];
  committed.cells.forEach((c, i) => {
    const e = executed.cells[i];
    if (c.cell_type !== e.cell_type || joined(c.source) !== joined(e.source)) {
      problems.push(`cell ${i}: the source differs`);
      return;
    }
    if (c.cell_type !== "code") return;
    const [co, eo] = [mergedOutputs(c.outputs ?? []), mergedOutputs(e.outputs ?? [])];
    if (co.length === 0 && eo.length > 0) {
      problems.push(`cell ${i}: committed without outputs (run \`npm run notebooks\`)`);
      return;
    }
    if (co.length !== eo.length) {
      problems.push(`cell ${i}: ${co.length} outputs committed, ${eo.length} executed`);
      return;
    }
    co.forEach((x, k) => {
      const y = eo[k];
      const where = `cell ${i} output ${k}`;
      if (x.output_type !== y.output_type || x.name !== y.name) return problems.push(`${where}: ${x.output_type} ${x.name ?? ""} committed, ${y.output_type} ${y.name ?? ""} executed`);
      if (x.output_type === "stream") {
        const d = compareText(joined(x.text), joined(y.text), tolerance);
        if (d) problems.push(`${where}: ${d}`);
        return;
      }
      const [mx, my] = [Object.keys(x.data ?? {}).sort(), Object.keys(y.data ?? {}).sort()];
      if (mx.join() !== my.join()) return problems.push(`${where}: MIME types ${mx.join(", ")} committed, ${my.join(", ")} executed`);
      const [tx, ty] = [x.data?.["text/plain"], y.data?.["text/plain"]];
      if (tx !== undefined || ty !== undefined) {
        const d = compareText(joined(tx as string | string[]), joined(ty as string | string[]), tolerance);
        if (d) problems.push(`${where}: ${d}`);
      }
      return undefined;
    });
  });
  return problems;
}

if (require.main === module) {
  (async () => {
    const words = process.argv.slice(2);
    const names = listNotebooks().filter((n) => words.length === 0 || words.some((w) => n.includes(w)));
    if (names.length === 0) throw new Error(`no notebook in notebooks/ matches ${words.join(", ")}`);
    const env = prepareJupyter();
    const start = Date.now();
    let failed = 0;
    for (const [name, run] of executeNotebooks(names, env)) {
      const { notebook, seconds } = await run;
      const errors = notebookErrors(notebook);
      if (errors.length) {
        // A failed notebook is not written back: the committed copy stays as it was.
        failed++;
        console.log(`${name}: FAILED after ${seconds.toFixed(0)} s, not written:\n  ${errors.join("\n  ")}`);
        continue;
      }
      const file = path.join(NOTEBOOKS_DIR, name);
      writeNotebook(file, notebook);
      console.log(`${name}: executed in ${seconds.toFixed(0)} s, wrote ${(fs.statSync(file).size / 1024).toFixed(0)} KB`);
    }
    console.log(`${names.length - failed} of ${names.length} notebooks executed and written in ${((Date.now() - start) / 1000).toFixed(0)} s`);
    process.exitCode = failed ? 1 : 0;
  })().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
