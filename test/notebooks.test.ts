import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";
import { strict as assert } from "assert";
import { ROOT } from "./fixtures/models";
import { Output, PLOT_MIMES } from "./fixtures/notebook-output";


/**
 * Executes every notebook in notebooks/ with real Jupyter (Debian's nbconvert
 * and nbclient) and the tslab kernel, as a user would run them: qdebug is
 * imported by name, as installed in node_modules.
 */
describe("notebooks (real Jupyter + tslab)", function () {
  this.timeout(20 * 60 * 1000);
  const kernels = path.join(ROOT, ".tmp", "jupyter");
  const env = { ...process.env, PATH: `${path.join(ROOT, "node_modules", ".bin")}:${process.env.PATH}`, JUPYTER_PATH: path.join(kernels, "share", "jupyter") };

  before(() => {
    try {
      execFileSync("jupyter", ["nbconvert", "--version"], { env, stdio: "pipe" });
    } catch {
      throw new Error("Jupyter is not installed: run `bash scripts/install-test-deps.sh` (Debian's jupyter-nbconvert, python3-nbclient)");
    }
    execFileSync(path.join(ROOT, "node_modules", ".bin", "tslab"), ["install", "--python=/usr/bin/python3", `--prefix=${kernels}`], { env, stdio: "pipe" });
    // What `npm install qdebug` gives a user: the package under node_modules, by name.
    const link = path.join(ROOT, "node_modules", "qdebug");
    if (!fs.existsSync(link)) fs.symlinkSync("..", link, "dir");
  });

  const notebooks = fs.readdirSync(path.join(ROOT, "notebooks")).filter((f) => f.endsWith(".ipynb")).sort();
  it("there is a quickstart notebook", () => assert.ok(notebooks.includes("00-quickstart.ipynb")));

  for (const name of notebooks) {
    it(`${name} runs top to bottom with no error, and every plot carries the four MIME types`, () => {
      const out = path.join(ROOT, ".tmp", `executed-${name}`);
      execFileSync("jupyter", ["nbconvert", "--to", "notebook", "--execute", name, "--allow-errors", "--output", out, "--ExecutePreprocessor.timeout=900"], {
        cwd: path.join(ROOT, "notebooks"),
        env,
        stdio: "pipe",
      });
      const nb = JSON.parse(fs.readFileSync(out, "utf8")) as { cells: { cell_type: string; outputs?: Output[] }[] };
      const outputs = nb.cells.filter((c) => c.cell_type === "code").flatMap((c) => c.outputs ?? []);
      const errors = outputs.filter((o) => o.output_type === "error" || (o.output_type === "stream" && o.name === "stderr"));
      assert.deepEqual(errors.map((o) => `${o.ename ?? ""} ${o.evalue ?? ""} ${[o.text ?? ""].flat().join("")}`), [], "no error outputs");
      const plots = outputs.filter((o) => o.output_type === "display_data");
      assert.ok(plots.length >= 5, `${name}: only ${plots.length} plots`);
      for (const p of plots) assert.deepEqual(Object.keys(p.data ?? {}).sort(), PLOT_MIMES);
    });
  }
});
