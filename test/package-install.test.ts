import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { strict as assert } from "assert";
import { ROOT } from "./fixtures/models";
import { Output, PLOT_MIMES } from "./fixtures/notebook-output";

/** The tfjs minor the user's project already holds: esrgan-slim's peer range (~4.11), not our own 4.22. */
const USER_TFJS = "4.11.0";

const code = (source: string) => ({ cell_type: "code", metadata: {}, execution_count: null, outputs: [], source });

/** A new user's first notebook: their own tfjs, a model they build, qdebug by name. */
const NOTEBOOK = {
  nbformat: 4,
  nbformat_minor: 5,
  metadata: { kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" } },
  cells: [
    code(`import * as tf from "@tensorflow/tfjs";
import * as qd from "qdebug";
import { equalizingScales } from "qdebug/internals";
const backend = await qd.ensureBackend();
const internals = { typed: equalizingScales([1, 4], [4, 1]), inMain: "equalizingScales" in qd };
console.log("RESULT " + JSON.stringify({ tfjs: tf.version.tfjs, backend: backend.name, internals }));`),
    code(`const input = tf.input({ shape: [12, 12, 3] });
let h = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", useBias: false }).apply(input) as tf.SymbolicTensor;
h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
const output = tf.layers.dense({ units: 4, activation: "softmax" }).apply(h) as tf.SymbolicTensor;
const model = tf.model({ inputs: input, outputs: output });
const graph = await qd.loadGraph(model);
const x = tf.randomNormal([2, 12, 12, 3], 0, 1, "float32", 7);
const [fromGraph] = qd.forward(graph, x);
const fromModel = model.predict(x) as tf.Tensor;
const diff = tf.max(tf.abs(tf.sub(fromGraph, fromModel))).dataSync()[0];
console.log("RESULT " + JSON.stringify({ nodes: graph.nodes.length, layers: model.layers.length, diff }));
tf.dispose([x, fromGraph, fromModel]);`),
    code(`const example = await qd.loadGraph(qd.EXAMPLE_MODEL);
const sim = await qd.QuantSim.create(example).calibrate(qd.toDataset("mnist:0:32"));
await qd.show(qd.encodingRanges(sim));
console.log("RESULT " + JSON.stringify({ quantizers: sim.quantizers().length }));
sim.dispose(); example.dispose(); graph.dispose(); model.dispose();`),
  ],
};

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(cmd, args, { cwd, env, stdio: "pipe", encoding: "utf8", maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/** Every installed copy of a package under a project's node_modules, nested ones included. */
function copiesOf(dir: string, name: string): string[] {
  const found: string[] = [];
  const walk = (modules: string) => {
    if (!fs.existsSync(modules)) return;
    for (const entry of fs.readdirSync(modules)) {
      const scoped = entry.startsWith("@") ? fs.readdirSync(path.join(modules, entry)).map((e) => `${entry}/${e}`) : [entry];
      for (const pkg of scoped) {
        const pkgDir = path.join(modules, pkg);
        if (pkg === name) found.push(JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version as string);
        walk(path.join(pkgDir, "node_modules"));
      }
    }
  };
  walk(path.join(dir, "node_modules"));
  return found;
}

/**
 * What a new user meets: the package as `npm pack` makes it, installed into a
 * fresh project that already holds another tfjs 4.x minor, used from a tslab
 * notebook under real Jupyter. The package is staged from this build's output
 * (dist/ under `npm test`), so the test checks the code it was compiled with.
 */
describe("package: npm pack, install into a project with another tfjs, run a notebook", function () {
  this.timeout(15 * 60 * 1000);
  const build = path.resolve(__dirname, "..");
  let work = "";
  let project = "";
  let packed: { filename: string; files: { path: string }[] } | undefined;

  before(function () {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-package-"));
    // The package folder as `npm pack` sees it after `prepack` has built dist/.
    const stage = path.join(work, "qdebug");
    fs.mkdirSync(stage);
    for (const f of ["package.json", "README.md", "LICENSE", "bin", "models", "data", "schema"]) {
      fs.cpSync(path.join(ROOT, f), path.join(stage, f), { recursive: true });
    }
    for (const d of ["src", "widgets"]) fs.cpSync(path.join(build, d), path.join(stage, "dist", d), { recursive: true });
    packed = JSON.parse(run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], stage))[0];

    project = path.join(work, "project");
    fs.mkdirSync(project);
    const deps = { "@tensorflow/tfjs": USER_TFJS, "@tensorflow/tfjs-backend-wasm": USER_TFJS, qdebug: `file:${path.join(work, packed!.filename)}` };
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "user-project", version: "1.0.0", private: true, dependencies: deps }, null, 2));
    // ONNX Runtime's install script fetches GPU libraries (see README: Engines); the user is told to skip it.
    run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], project, { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" });
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("the tarball holds the built code, its types, the LICENSE and what the README uses, and no tests", () => {
    const files = new Set(packed!.files.map((f) => f.path));
    for (const f of ["LICENSE", "README.md", "bin/qdebug.js", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "dist/widgets/sweep-view.js", "models/mnist-mbv2/model.json", "schema/qdebug-config.schema.json"]) {
      assert.ok(files.has(f), `${f} is not in the tarball`);
    }
    assert.ok([...files].some((f) => f.startsWith("data/mnist/")), "the MNIST sample is not in the tarball");
    assert.deepEqual([...files].filter((f) => f.startsWith("dist/test") || f.startsWith("dist/bench") || f.startsWith("test/")), []);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    assert.equal(pkg.private, undefined);
    assert.match(fs.readFileSync(path.join(ROOT, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0/);
  });

  it("the project keeps its one tfjs: qdebug brings no second copy", () => {
    assert.deepEqual(copiesOf(project, "@tensorflow/tfjs-core"), [USER_TFJS]);
    assert.deepEqual(copiesOf(project, "@tensorflow/tfjs"), [USER_TFJS]);
    assert.deepEqual(copiesOf(project, "@tensorflow/tfjs-backend-wasm"), [USER_TFJS]);
  });

  it("a tslab notebook imports qdebug with no warnings, and loadGraph reads a model built in it", () => {
    const prefix = path.join(work, "jupyter");
    const env = { ...process.env, PATH: `${path.join(ROOT, "node_modules", ".bin")}:${process.env.PATH}`, JUPYTER_PATH: path.join(prefix, "share", "jupyter") };
    run(path.join(ROOT, "node_modules", ".bin", "tslab"), ["install", "--python=/usr/bin/python3", `--prefix=${prefix}`], project, env);
    fs.writeFileSync(path.join(project, "check.ipynb"), JSON.stringify(NOTEBOOK));
    run("jupyter", ["nbconvert", "--to", "notebook", "--execute", "check.ipynb", "--allow-errors", "--output", "executed.ipynb", "--ExecutePreprocessor.timeout=600"], project, env);
    const nb = JSON.parse(fs.readFileSync(path.join(project, "executed.ipynb"), "utf8")) as { cells: { outputs?: Output[] }[] };
    const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
    const text = (o: Output) => [o.text ?? ""].flat().join("");
    // tslab reports errors, type errors and console.warn as stderr text; nbconvert exits 0 anyway.
    const problems = outputs.filter((o) => o.output_type === "error" || (o.output_type === "stream" && o.name === "stderr"));
    assert.deepEqual(problems.map((o) => `${o.ename ?? ""} ${o.evalue ?? ""} ${text(o)}`), [], "no errors or warnings (no 'already registered')");
    const results = outputs.flatMap((o) => text(o).split("\n")).filter((l) => l.startsWith("RESULT ")).map((l) => JSON.parse(l.slice(7)));
    assert.equal(results.length, 3, `results printed: ${JSON.stringify(results)}`);
    const [env0, built, example] = results;
    assert.deepEqual(env0, { tfjs: USER_TFJS, backend: "wasm", internals: { typed: [0.5, 2], inMain: false } }, "qdebug/internals resolves (types too); the main entry keeps them out");
    assert.equal(built.layers, 6);
    assert.equal(built.nodes, 6, "input, conv, batch norm, relu6, pooling, dense");
    assert.ok(built.diff < 1e-5, `graph vs model.predict: ${built.diff}`);
    assert.ok(example.quantizers > 20, `example model quantizers: ${example.quantizers}`);
    const plots = outputs.filter((o) => o.output_type === "display_data");
    assert.equal(plots.length, 1);
    assert.deepEqual(Object.keys(plots[0].data ?? {}).sort(), PLOT_MIMES);
  });

  it("a model built by another copy of tfjs is a clear error, not an empty graph", () => {
    // The repository's own tfjs (4.22) is a second copy from the project's point of view.
    const script = `
      const qd = require("qdebug");
      const other = require(${JSON.stringify(path.join(ROOT, "node_modules", "@tensorflow", "tfjs"))});
      (async () => {
        await qd.ensureBackend();
        const model = other.sequential({ layers: [other.layers.dense({ units: 2, inputShape: [3] })] });
        try { const g = await qd.loadGraph(model); console.log("LOADED " + g.nodes.length); }
        catch (err) { console.log("ERROR " + err.message); }
      })();`;
    const out = run(process.execPath, ["-e", script], project);
    const line = out.split("\n").find((l) => l.startsWith("ERROR ") || l.startsWith("LOADED "));
    assert.match(line ?? out, /^ERROR .*another copy of @tensorflow\/tfjs/);
  });
});
