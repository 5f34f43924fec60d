import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import { PLOT_MIMES } from "./fixtures/notebook-output";
import { compareNotebooks, executeNotebooks, listNotebooks, NOTEBOOKS_DIR, NotebookJson, notebookErrors, prepareJupyter, TOLERANCE } from "../scripts/run-notebooks";

/**
 * Executes every notebook in notebooks/ with real Jupyter (Debian's nbconvert
 * and nbclient) and the tslab kernel, as a user would run them (qdebug imported
 * by name), and checks the committed copy is what it gives: same cells, no
 * error, the same outputs with the same MIME types, numbers within TOLERANCE.
 * A stale notebook fails here; `npm run notebooks` refreshes them.
 */
describe("notebooks (real Jupyter + tslab)", function () {
  this.timeout(20 * 60 * 1000);
  const executed = new Map<string, NotebookJson>();
  let runs: ReturnType<typeof executeNotebooks>;
  const read = (file: string) => JSON.parse(fs.readFileSync(file, "utf8")) as NotebookJson;

  const notebooks = listNotebooks();
  // QDEBUG_NOTEBOOKS=00,case-mobilenet runs only the notebooks whose names contain one of the words (while writing one).
  const words = process.env.QDEBUG_NOTEBOOKS?.split(",").filter(Boolean);
  const executedHere = notebooks.filter((n) => !words || words.some((w) => n.includes(w)));
  // Two at a time (the CI machine's two cores); each test waits for its own.
  before(() => {
    runs = executeNotebooks(executedHere, prepareJupyter(), 2);
  });

  it("the tutorial series is there, quickstart first", () => {
    assert.equal(notebooks[0], "00-quickstart.ipynb");
    for (const n of ["01-", "02-", "03-", "04-", "05-", "06-", "case-mobilenet-cle"]) assert.ok(notebooks.some((f) => f.startsWith(n)), `no notebook ${n}*`);
  });

  for (const name of executedHere) {
    it(`${name}: runs with no error and the committed copy is current`, async () => {
      const { notebook, seconds } = await runs.get(name)!;
      executed.set(name, notebook);
      console.log(`      ${name}: executed in ${seconds.toFixed(0)} s`);
      assert.deepEqual(notebookErrors(notebook), [], "failed cells (tslab reports errors as stderr text)");
      const outputs = notebook.cells.flatMap((c) => c.outputs ?? []);
      const plots = outputs.filter((o) => o.output_type === "display_data");
      assert.ok(plots.length >= 2, `${name}: only ${plots.length} plots`);
      for (const p of plots) assert.deepEqual(Object.keys(p.data ?? {}).sort(), PLOT_MIMES);
      const problems = compareNotebooks(read(path.join(NOTEBOOKS_DIR, name)), notebook);
      assert.deepEqual(problems, [], `${name} is stale: run \`npm run notebooks -- ${name.replace(/\.ipynb$/, "")}\` and commit it`);
    });
  }

  it("a stale copy fails the check: altered copies in a temp dir, each against the quickstart's fresh execution", function () {
    const fresh = executed.get("00-quickstart.ipynb");
    if (!fresh) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-stale-"));
    try {
      const committed = path.join(NOTEBOOKS_DIR, "00-quickstart.ipynb");
      const alter = (label: string, change: (nb: NotebookJson) => void): string[] => {
        const file = path.join(dir, `${label}.ipynb`);
        const nb = read(committed);
        change(nb);
        fs.writeFileSync(file, JSON.stringify(nb));
        return compareNotebooks(read(file), fresh!);
      };
      const code = (nb: NotebookJson) => nb.cells.filter((c) => c.cell_type === "code");
      // A plot's reading (nbformat stores it as a list of lines) with a decimal number and no duration.
      const reading = (o: { data?: Record<string, unknown> }) => [o.data?.["text/plain"] as string | string[]].flat().join("");
      const textOut = (nb: NotebookJson) => code(nb).flatMap((c) => c.outputs ?? []).find((o) => o.output_type === "display_data" && /\d\.\d/.test(reading(o)) && !/\d\s?(ms|s|min)\b/.test(reading(o)))!;
      assert.deepEqual(alter("unchanged", () => undefined), []);
      // A number moved beyond the tolerance (doubled), and one within it.
      const moved = (factor: number) => (nb: NotebookJson) => {
        const o = textOut(nb);
        o.data!["text/plain"] = reading(o).replace(/\d+\.\d+/, (n) => (Number(n) * factor).toFixed(n.split(".")[1].length + 2));
      };
      assert.match(alter("number-doubled", moved(2)).join("\n"), /a number differs/);
      assert.deepEqual(alter("number-within-tolerance", moved(1 + TOLERANCE.relative / 4)), []);
      assert.match(alter("source-edited", (nb) => (code(nb)[1].source = `${[code(nb)[1].source].flat().join("")}\nconsole.log("edited");`)).join("\n"), /source differs/);
      assert.match(alter("png-missing", (nb) => delete textOut(nb).data!["image/png"]).join("\n"), /MIME types/);
      assert.match(alter("outputs-stripped", (nb) => code(nb).forEach((c) => (c.outputs = []))).join("\n"), /committed without outputs/);
      assert.match(alter("cell-added", (nb) => nb.cells.push({ cell_type: "markdown", source: "more", metadata: {} })).join("\n"), /cells committed/);
      // A fresh run that failed: tslab's error text on stderr.
      const failed = structuredClone(fresh!);
      code(failed)[1].outputs!.push({ output_type: "stream", name: "stderr", text: "ReferenceError: data is not defined\n" });
      assert.equal(notebookErrors(failed).length, 1);
      assert.match(compareNotebooks(read(committed), failed).join("\n"), /outputs committed|stream/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
