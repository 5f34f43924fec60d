import * as fs from "fs";
import * as path from "path";
import { strict as assert } from "assert";

/**
 * The run-time import graph of the package, read from the compiled JavaScript
 * beside this test (type-only imports are erased there, so only imports that
 * load code count): no module may import itself through others, and the
 * folders of src/ must form layers (a folder never imports a folder that
 * imports it back).
 */
const BUILD = path.resolve(__dirname, "..");

/** Folder cycles owned by other work, each with the reason; the test fails when one disappears, so the list stays true. */
const KNOWN_FOLDER_CYCLES: Record<string, string> = {};

function modules(): Map<string, string[]> {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".js")) files.push(p);
    }
  };
  walk(path.join(BUILD, "src"));
  walk(path.join(BUILD, "widgets"));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const deps: string[] = [];
    for (const m of fs.readFileSync(file, "utf8").matchAll(/require\("(\.{1,2}\/[^"]+)"\)/g)) {
      const target = path.resolve(path.dirname(file), m[1]);
      const resolved = [`${target}.js`, path.join(target, "index.js")].find((f) => fs.existsSync(f));
      if (resolved) deps.push(resolved);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Strongly connected components with more than one member (Tarjan). */
function cycles(graph: Map<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** A module's layer: its folder under src/ (a file at src/'s top level is its own), or widgets. */
function folderOf(file: string): string {
  const parts = path.relative(BUILD, file).split(path.sep);
  if (parts[0] !== "src") return parts[0];
  return parts.length > 2 ? `src/${parts[1]}` : `src/${parts[1].replace(/\.js$/, "")}`;
}

describe("import graph (compiled code)", () => {
  const graph = modules();

  it("has the modules to check", () => {
    assert.ok(graph.size > 100, `${graph.size} modules under ${BUILD}`);
    assert.ok([...graph.keys()].some((f) => f.endsWith(path.join("src", "fix", "fold-batch-norm.js"))));
  });

  it("no module imports itself through others", () => {
    const found = cycles(graph).map((c) => c.map((f) => path.relative(BUILD, f)).join(" -> "));
    assert.deepEqual(found, []);
  });

  it("folders form layers: no folder imports one that imports it back (known exceptions listed with their reason)", () => {
    const folders = new Map<string, Set<string>>();
    for (const [file, deps] of graph) {
      const from = folderOf(file);
      if (!folders.has(from)) folders.set(from, new Set());
      for (const d of deps) if (folderOf(d) !== from) folders.get(from)!.add(folderOf(d));
    }
    const found = cycles(new Map([...folders].map(([k, v]) => [k, [...v]])));
    const pairs = new Set<string>();
    for (const component of found) {
      for (const a of component) for (const b of component) if (a < b && folders.get(a)!.has(b) && folders.get(b)!.has(a)) pairs.add(`${a} <-> ${b}`);
    }
    const unexplained = found.filter((c) => !c.every((a) => c.some((b) => a !== b && KNOWN_FOLDER_CYCLES[[a, b].sort().join(" <-> ")])));
    assert.deepEqual(unexplained, [], "folder cycles");
    assert.deepEqual([...pairs].sort(), Object.keys(KNOWN_FOLDER_CYCLES).sort(), "the known folder cycles are exactly those listed");
  });
});
