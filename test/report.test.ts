import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { chromium, Browser } from "playwright-core";
import { main } from "../src/cli/main";
import { buildBlockModel } from "./fixtures/small-models";
import { saveModel } from "./fixtures/save-model";
import { writeNpy } from "../src/data/npy";
import { randomizeWeights, setupBackend } from "./helpers";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { fixture } from "./fixtures/views/cases";
import { analysisReport, AnalysisResults } from "../src/report/analysis-report";
import { flowReport, flowSummary } from "../src/report/flow-report";
import { publish } from "../src/cli/publish";
import { mimeBundle } from "../src/display/bundle";
import type { View } from "../widgets/spec";
import { VIEW_CASES } from "./fixtures/views/cases";

const CHROMIUM = "/usr/bin/chromium";

/**
 * `qdebug analyze` writes report.html: opened in headless Chromium with the
 * network off, every chart must render, the console must stay clean, and the
 * layer picker must change the linked views.
 */
describe("report.html in headless Chromium", function () {
  this.timeout(180000);
  let dir: string;
  let browser: Browser;

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/install-test-deps.sh\` (Debian's chromium)`);
    await setupBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-report-"));
    const model = buildBlockModel();
    randomizeWeights(model, 4);
    const modelPath = await saveModel(model, path.join(dir, "block"));
    model.dispose();
    const x = tf.randomUniform([48, 8, 8, 3], 0, 1, "float32", 8);
    writeNpy(path.join(dir, "x.npy"), x.dataSync() as Float32Array, x.shape);
    x.dispose();
    const code = await main(["analyze", modelPath, "--data", path.join(dir, "x.npy"), "--out", path.join(dir, "out"), "--w-bits", "4", "--metric", "sqnr"], () => {});
    assert.equal(code, 0);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
  });
  after(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("is self-contained: no external script, style or data reference", () => {
    const html = fs.readFileSync(path.join(dir, "out", "report.html"), "utf8");
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|"url"\s*:/);
    for (const step of ["1. FP32 sanity check", "2. Weights or activations?", "3. Per-layer analysis", "4. Per-layer error", "5. Visualize layers"]) assert.ok(html.includes(step), step);
  });

  it("renders every chart offline with no console error, and the layer picker drives the linked views", async () => {
    const context = await browser.newContext({ offline: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`file://${path.join(dir, "out", "report.html")}`);
    await page.evaluate(() => (globalThis as unknown as { qdebugCharts: Promise<unknown> }).qdebugCharts.then(() => true));
    const marks = await page.$$eval(".chart", (charts) => charts.map((c) => c.querySelectorAll("svg .role-mark > *").length));
    assert.equal(marks.length, 7, "seven views");
    marks.forEach((n, i) => assert.ok(n > 0, `chart ${i} drew no marks`));
    assert.deepEqual(errors, []);

    // The layer explorer: pick another layer, and both linked views redraw.
    const explorer = page.locator(".chart", { has: page.locator("select") }).first();
    const before = await explorer.locator("svg").innerHTML();
    const options = await explorer.locator("select option").allTextContents();
    const current = await explorer.locator("select").inputValue();
    const other = options.find((o) => o !== current && o === "dw") ?? options.find((o) => o !== current)!;
    await explorer.locator("select").selectOption(other);
    await page.waitForTimeout(300);
    const after = await explorer.locator("svg").innerHTML();
    assert.notEqual(after, before, "the linked views changed");
    const boxes = await explorer.locator("svg .role-mark").first().locator("> *").count();
    assert.ok(boxes > 0);
    // The bit-width slider redraws the grid.
    const slider = page.locator("input[type=range]").last();
    const gridBefore = await page.locator(".chart").last().locator("svg").innerHTML();
    await slider.fill("2");
    await slider.dispatchEvent("input");
    await page.waitForTimeout(300);
    assert.notEqual(await page.locator(".chart").last().locator("svg").innerHTML(), gridBefore, "the bit-width slider redrew the grid");
    assert.deepEqual(errors, []);
    await context.close();
  });

  it("the debugging flow's report (qdebug debug on the example) draws the flow and every step offline", async () => {
    const out = path.join(dir, "debug");
    const code = await main(["debug", EXAMPLE_MODEL, "--data", "mnist:0:300", "--calib", "200", "--w-bits", "4", "--target", "0.005", "--no-per-channel", "--out", out], () => {});
    assert.ok(code === 0 || code === 3, `exit code ${code}`);
    const record = JSON.parse(fs.readFileSync(path.join(out, "record.json"), "utf8")).record;
    const context = await browser.newContext({ offline: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`file://${path.join(out, "report.html")}`);
    await page.evaluate(() => (globalThis as unknown as { qdebugCharts: Promise<unknown> }).qdebugCharts.then(() => true));
    const marks = await page.$$eval(".chart", (charts) => charts.map((c) => c.querySelectorAll("svg .role-mark > *").length));
    assert.equal(marks.length, record.steps.length + 1, "the flow and one view per step");
    marks.forEach((n, i) => assert.ok(n > 0, `chart ${i} drew no marks`));
    // The flow view: one point per step.
    assert.ok(marks[0] >= record.steps.length);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

/**
 * The report's layout, from saved results of real runs (no model run): findings
 * first (a summary naming the culprits, the fix that helped and the next step),
 * a table of contents whose links land on the sections, sortable tables, then
 * each section's views and reading.
 */
describe("report.html: findings first, contents, sortable tables", function () {
  this.timeout(120000);
  let dir: string;
  let browser: Browser;
  const results: AnalysisResults = {
    sanity: fixture("sanity"),
    split: fixture("split"),
    sweepEnabled: fixture("sweep-enabled"),
    sweepDisabled: fixture("sweep-disabled"),
    layerError: fixture("layer-error"),
    ranges: fixture("ranges"),
    weightChannels: fixture("weight-channels"),
    histograms: fixture("histograms"),
  };

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/install-test-deps.sh\` (Debian's chromium)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-report-layout-"));
    fs.writeFileSync(path.join(dir, "analysis.html"), analysisReport("qdebug report: mnist-mbv2", "saved results", results));
    fs.writeFileSync(path.join(dir, "flow.html"), flowReport("qdebug debugging flow: mnist-mbv2", "saved results", fixture("debug-flow")));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
  });
  after(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function open(file: string) {
    const context = await browser.newContext({ offline: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`file://${path.join(dir, file)}`);
    await page.evaluate(() => (globalThis as unknown as { qdebugCharts: Promise<unknown> }).qdebugCharts.then(() => true));
    return { context, page, errors };
  }

  it("the analysis report opens with its findings: the culprits, what recovers the drop, the next step", async () => {
    const { context, page, errors } = await open("analysis.html");
    const headings = await page.$$eval("h2", (hs) => hs.map((h) => h.textContent));
    assert.deepEqual(headings.slice(0, 3), ["Summary", "Contents", "1. FP32 sanity check"]);
    const summary = await page.locator("#summary").innerText();
    assert.match(summary, /Quantized, the model scores 95\.00 % against 97\.80 % in FP32 \(−2\.80 pt/);
    assert.match(summary, /Culprits\s+Weight quantization causes most of the drop; quantized alone, block_1_project \(−1\.00 pt\)/);
    assert.match(summary, /What recovers it\s+Keeping block_2_project in float recovers 43 % of the drop/);
    assert.match(summary, /Next step/);
    // Every contents link lands on a section.
    const targets = await page.$$eval(".toc a", (as) => as.map((a) => (a as unknown as { hash: string }).hash));
    assert.equal(targets.length, 5);
    for (const t of targets) assert.equal(await page.locator(t).count(), 1, t);
    const marks = await page.$$eval(".chart", (charts) => charts.map((c) => c.querySelectorAll("svg .role-mark > *").length));
    assert.equal(marks.length, 7);
    marks.forEach((n, i) => assert.ok(n > 0, `chart ${i} drew no marks`));
    assert.deepEqual(errors, []);
    await context.close();
  });

  it("a table sorts by the clicked column, numbers as numbers, and back", async () => {
    const { context, page, errors } = await open("analysis.html");
    const table = page.locator("section#s3-per-layer-analysis table.sortable");
    await page.locator("section#s3-per-layer-analysis details summary").click();
    const column = async (i: number) => table.locator(`tbody tr td:nth-child(${i})`).evaluateAll((cells) => cells.map((c) => (c as unknown as { dataset: { v: string } }).dataset.v));
    assert.equal((await column(2))[0], "image", "execution order first");
    await table.locator("th button", { hasText: "its cost (drop)" }).click();
    const ascending = (await column(4)).map(Number);
    assert.deepEqual(ascending, [...ascending].sort((a, b) => a - b));
    await table.locator("th button", { hasText: "its cost (drop)" }).click();
    const descending = (await column(4)).map(Number);
    assert.deepEqual(descending, [...ascending].reverse());
    assert.equal((await column(2))[0], "block_1_project", "the costliest layer on top");
    assert.deepEqual(errors, []);
    await context.close();
  });

  it("the flow report of a run stopped before any score (a failed FP32 sanity check) says so", () => {
    const record = fixture("debug-flow");
    const stopped = { ...record, met: false, steps: record.steps.slice(0, 1), final: { ...record.final, score: null }, diagnosis: "The simulation does not reproduce FP32 at 32 bits." };
    const summary = JSON.stringify(flowSummary(stopped as typeof record));
    assert.match(summary, /Target not met: the flow stopped before it scored the quantized model\. The simulation does not reproduce FP32 at 32 bits\./);
    assert.match(flowReport("stopped", "saved results", stopped as typeof record), /stopped before it scored/);
  });

  it("the flow report names the fix that helped and what was tried and not kept", async () => {
    const { context, page, errors } = await open("flow.html");
    const record = fixture("debug-flow");
    const summary = await page.locator("#summary").innerText();
    assert.match(summary, /^Summary\s+Target met: 97\.80 % against 97\.80 % in FP32/);
    assert.match(summary, /Fix that helped\s+Bias correction \(\+2\.80 pt, to 97\.80 %\)\. Tried and not kept: Cross-layer equalization\./);
    const marks = await page.$$eval(".chart", (charts) => charts.map((c) => c.querySelectorAll("svg .role-mark > *").length));
    assert.equal(marks.length, record.steps.length + 1);
    marks.forEach((n, i) => assert.ok(n > 0, `chart ${i} drew no marks`));
    assert.equal(await page.locator("section table.sortable tbody tr").count(), record.steps.length);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

/**
 * `qdebug publish`: an executed notebook (here built from the very display_data
 * `qd.show` sends, for views of saved results) becomes one page that works
 * offline, where every view draws and the pickers and sliders redraw.
 */
describe("qdebug publish: a notebook as one offline page", function () {
  this.timeout(120000);
  let dir: string;
  let browser: Browser;

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/install-test-deps.sh\` (Debian's chromium)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-publish-"));
    const display = async (view: View, text: string) => ({ output_type: "display_data", ...(await mimeBundle(view, text)) });
    const notebook = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" } },
      cells: [
        { cell_type: "markdown", source: ["# Per-layer analysis\n", "\n", "What you will learn:\n", "- which layer costs the most, by **name**\n", "- how to read the `allowed drop` slider\n"] },
        { cell_type: "code", source: 'const qd = require("qdebug");', outputs: [{ output_type: "stream", name: "stdout", text: "backend wasm\n" }] },
        { cell_type: "code", source: "await qd.show(sweep);", outputs: [await display(VIEW_CASES["sweep-both"](), "sweep")] },
        { cell_type: "markdown", source: "Pick a layer in the [layer explorer](#explorer):" },
        { cell_type: "code", source: "await qd.show(explorer);", outputs: [await display(VIEW_CASES["layer-explorer"](), "explorer")] },
        { cell_type: "code", source: "await qd.show(oops);", outputs: [{ output_type: "stream", name: "stderr", text: "ReferenceError: oops is not defined\n" }] },
        { cell_type: "code", source: "// not run yet", outputs: [] },
      ],
    };
    fs.writeFileSync(path.join(dir, "nb.ipynb"), JSON.stringify(notebook));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
  });
  after(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("writes one self-contained page and says what it holds", async () => {
    const lines: string[] = [];
    assert.equal(await publish([path.join(dir, "nb.ipynb")], (s) => lines.push(s)), 0);
    assert.match(lines.join("\n"), /nb\.html: 7 cells, 2 interactive views; 1 code cells have no output/);
    const html = fs.readFileSync(path.join(dir, "nb.html"), "utf8");
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|"url"\s*:/);
    assert.match(html, /<h1>Per-layer analysis<\/h1>/);
    assert.match(html, /<li>which layer costs the most, by <strong>name<\/strong><\/li>/);
    assert.match(html, /<pre class="stream stderr">ReferenceError: oops is not defined/);
  });

  it("refuses what is not an executed notebook, naming the problem", async () => {
    fs.writeFileSync(path.join(dir, "bad.ipynb"), JSON.stringify({ nbformat: 3, cells: [] }));
    await assert.rejects(publish([path.join(dir, "bad.ipynb")], () => {}), /nbformat 3 is not supported/);
    fs.writeFileSync(path.join(dir, "notes.ipynb"), "{ not json");
    await assert.rejects(publish([path.join(dir, "notes.ipynb")], () => {}), /is not valid JSON/);
    await assert.rejects(publish([path.join(dir, "nb.ipynb"), "--out", path.join(dir, "page.txt")], () => {}), /--out must name an \.html file/);
    await assert.rejects(publish([path.join(dir, "missing.ipynb")], () => {}), /no notebook file/);
  });

  it("in headless Chromium offline: every view draws, the slider and the picker redraw, no console error", async () => {
    await publish([path.join(dir, "nb.ipynb"), "--out", path.join(dir, "page.html")], () => {});
    const context = await browser.newContext({ offline: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`file://${path.join(dir, "page.html")}`);
    await page.evaluate(() => (globalThis as unknown as { qdebugCharts: Promise<unknown> }).qdebugCharts.then(() => true));
    const marks = await page.$$eval(".chart", (charts) => charts.map((c) => c.querySelectorAll("svg .role-mark > *").length));
    assert.equal(marks.length, 2);
    marks.forEach((n, i) => assert.ok(n > 10, `chart ${i} drew ${n} marks`));

    // The sweep's slider: a larger allowed drop rings fewer layers, and the threshold label follows.
    const sweep = page.locator(".chart").nth(0);
    const slider = sweep.locator("input[type=range]");
    assert.equal(await slider.getAttribute("step"), "0.001");
    const before = await sweep.locator("svg").innerHTML();
    await slider.fill(await slider.getAttribute("max") as string);
    await slider.dispatchEvent("input");
    await page.waitForTimeout(300);
    const after = await sweep.locator("svg").innerHTML();
    assert.notEqual(after, before, "the slider redrew the sweep");
    assert.match(after, /allowed drop 2\.80%/);

    // The layer explorer's picker: another layer, and the title and both panels follow.
    const explorer = page.locator(".chart").nth(1);
    await explorer.locator("select").selectOption("block_3_project");
    await page.waitForTimeout(300);
    assert.match(await explorer.locator("svg").innerHTML(), /Layer explorer: block_3_project/);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
