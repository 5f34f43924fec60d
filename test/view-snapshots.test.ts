import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { strict as assert } from "assert";
import Ajv from "ajv";
import { renderSvg } from "../src/display/render";
import { viewOf } from "../src/display/show";
import { registeredViews } from "../widgets/registry";
import type { View } from "../widgets/spec";
import { niceSlider, plainTitle, significant } from "../widgets/spec";
import { FIXTURES, fixture, flowStep, VIEW_CASES } from "./fixtures/views/cases";
import { ROOT } from "./fixtures/models";

const OUTPUT = path.join(ROOT, "test", "output");

/**
 * A spec as saved: the same JSON, with each inline data array summarized by its
 * length, first row and a hash of all rows (the data comes from the fixtures,
 * which are saved already; the snapshot checks the view's own structure).
 */
function summarized(spec: unknown): unknown {
  if (Array.isArray(spec)) return spec.map(summarized);
  if (spec === null || typeof spec !== "object") return spec;
  return Object.fromEntries(
    Object.entries(spec).map(([key, value]) => {
      if (key === "values" && Array.isArray(value) && value.length > 3 && typeof value[0] === "object") {
        const hash = crypto.createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
        return [key, { rows: value.length, first: value[0], sha256: hash }];
      }
      return [key, summarized(value)];
    }),
  );
}

/**
 * Compares `actual` with the saved `test/output/<file>`: a missing snapshot is
 * written (and passes); a different one leaves `<name>-changed<ext>` beside it
 * and fails. To accept a change, move the -changed file over the saved one.
 */
function matchSnapshot(file: string, actual: string): void {
  const saved = path.join(OUTPUT, file);
  const ext = file.endsWith(".vl.json") ? ".vl.json" : path.extname(file);
  const changed = path.join(OUTPUT, `${file.slice(0, -ext.length)}-changed${ext}`);
  fs.rmSync(changed, { force: true });
  if (!fs.existsSync(saved)) {
    fs.mkdirSync(OUTPUT, { recursive: true });
    fs.writeFileSync(saved, actual);
    return;
  }
  if (fs.readFileSync(saved, "utf8") !== actual) {
    fs.writeFileSync(changed, actual);
    assert.fail(`${file} differs from its snapshot: see ${path.relative(ROOT, changed)} (move it over ${path.relative(ROOT, saved)} to accept it)`);
  }
}

/**
 * Vega numbers gradients (and clip paths) with a counter global to the process,
 * so an SVG's ids depend on what was rendered before it: numbered here in order
 * of appearance within the SVG, so the snapshot does not depend on test order.
 */
function stableIds(svg: string): string {
  const ids = new Map<string, string>();
  return svg.replace(/\b(gradient_|clip|pattern_)(\d+)\b/g, (whole, prefix: string) => {
    if (!ids.has(whole)) ids.set(whole, `${prefix}${[...ids.keys()].filter((k) => k.startsWith(prefix)).length}`);
    return ids.get(whole)!;
  });
}

let validate: ReturnType<Ajv["compile"]> | undefined;
let ajv: Ajv | undefined;
function schemaErrors(spec: View): string | undefined {
  if (!validate) {
    ajv = new Ajv({ strict: false, validateFormats: false });
    validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "vega-lite", "build", "vega-lite-schema.json"), "utf8")));
  }
  return validate(spec) ? undefined : ajv!.errorsText(validate.errors);
}

/** The visible text of an SVG (its <text> elements), for checks on what a reader sees. */
const texts = (svg: string) => [...svg.matchAll(/<text(?:\s[^>]*?)?(?:\/>|>(.*?)<\/text>)/g)].filter((m) => m[1]).map((m) => m[1].replace(/<tspan[^>]*>/g, "").replace(/<\/tspan>/g, " ").trim().replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&#39;/g, "'").replace(/&quot;/g, '"'));

/**
 * Snapshot tests for every view (as Observable Plot's): each is built from
 * saved results (test/fixtures/views, written by scripts/make-view-fixtures.ts
 * from real runs on the example model and nsfwjs's MobileNetV2), with no model
 * run; its spec and SVG are compared with test/output/; every spec is checked
 * against Vega-Lite's own JSON schema and must draw marks.
 */
describe("view snapshots", () => {
  const svgs = new Map<string, string>();
  const specs = new Map<string, View>();

  for (const [name, build] of Object.entries(VIEW_CASES)) {
    it(`${name}: valid Vega-Lite, draws marks, matches its snapshot`, async () => {
      const spec = build();
      specs.set(name, spec);
      assert.equal(schemaErrors(spec), undefined, `${name} is not valid Vega-Lite v5`);
      const svg = await renderSvg(JSON.parse(JSON.stringify(spec)));
      svgs.set(name, svg);
      const marks = (svg.match(/<path|<rect|<line|<text/g) ?? []).length;
      assert.ok(marks >= 5, `${name}: only ${marks} marks drawn`);
      matchSnapshot(`${name}.vl.json`, `${JSON.stringify(summarized(spec), null, 1)}\n`);
      matchSnapshot(`${name}.svg`, stableIds(svg));
    });
  }

  describe("what a reader of the PNG sees", () => {
    const svg = async (name: string) => svgs.get(name) ?? renderSvg(JSON.parse(JSON.stringify(VIEW_CASES[name]())));

    it("every view's plain-text title (what text/plain carries) is the title its picture shows", async () => {
      for (const name of Object.keys(VIEW_CASES)) {
        const title = plainTitle(VIEW_CASES[name]());
        assert.ok(title, `${name} has a title`);
        assert.ok(texts(await svg(name)).includes(title!), `${name}: "${title}" is drawn`);
      }
    });

    it("the sweep names every layer on its axis and labels the costliest in the plot", async () => {
      const text = texts(await svg("sweep-both"));
      const rows = fixture("sweep-enabled").rows as { key: string; drop: number }[];
      for (const r of rows) assert.ok(text.includes(r.key), `layer ${r.key} is on the axis`);
      const worst = [...rows].sort((a, b) => b.drop - a.drop)[0];
      assert.ok(text.some((t) => t.includes(`${worst.key} costs the most alone`)), "the title names the costliest layer");
      assert.ok(text.includes(`−${(worst.drop * 100).toFixed(2)} pt`), `its change is written beside it: ${text.filter((t) => t.includes("pt")).join(" | ")}`);
    });

    it("the sweep's slider has a round step and value (no 0.005125000000000018)", () => {
      const spec = VIEW_CASES["sweep-both"]() as unknown as { params: { value: number; bind: { step: number; max: number } }[] };
      const [param] = spec.params;
      for (const v of [param.value, param.bind.step, param.bind.max]) assert.ok(String(v).length <= 6, `slider number ${v}`);
      assert.deepEqual(niceSlider(0.0205, 0.005125000000000018), { min: 0, max: 0.0205, step: 0.0005, value: 0.005 });
      assert.deepEqual(niceSlider(328.1666666666661, 82.04166666666652), { min: 0, max: 330, step: 10, value: 80 });
      assert.equal(significant(0.005125000000000018), "0.00513");
    });

    it("the layer explorer says which layer it shows, whose output quantizer a fused layer uses, and why there is none", async () => {
      const fused = texts(await svg("layer-explorer-fused-output"));
      assert.ok(fused.includes("Layer explorer: block_5_depthwise"), fused.slice(0, 3).join(" | "));
      assert.ok(fused.includes("output histogram (fused: block_5_depthwise_relu)"), "the fused activation's histogram, named");
      assert.ok((await svg("layer-explorer-fused-output")).match(/role-mark[^>]*>(?:(?!<\/g>).)*<path/s), "the histogram draws bars");
      const none = texts(await svg("layer-explorer-no-output-quantizer")).join(" ");
      assert.match(none, /block_5_depthwise has no output quantizer/);
    });

    it("the histogram and weight-channel titles name the picked quantizer; count axes do not crowd", async () => {
      const histograms = fixture("histograms").histograms as { quantizer: string; clippedFraction: number }[];
      const first = [...histograms].sort((a, b) => b.clippedFraction - a.clippedFraction)[0].quantizer;
      const text = texts(await svg("histograms"));
      assert.ok(text.some((t) => t.startsWith(`Activation histogram: ${first} (`)), text[0]);
      assert.ok(!text.some((t) => /^0k$/.test(t)), "no 0k labels");
      // The count axis: powers of ten only (it crowded 10,000 / 20,000 / 40,000 at the top before).
      const counts = texts(await svg("bitwidth-explorer"));
      assert.ok(counts.includes("1k") && counts.includes("10k"), counts.join(", "));
      assert.ok(!counts.some((c) => /^(20|40)(k|,000)$/.test(c)), counts.join(", "));
      assert.ok(texts(await svg("weight-channels")).some((t) => t.startsWith("Weight ranges per output channel: ")));
    });

    it("channel ranges on MobileNetV2: a constant channel is drawn and said, never 1.797e308", async () => {
      const s = await svg("channel-ranges-mobilenet");
      assert.doesNotMatch(s, /1\.79\d*e\+?308|Infinity/);
      const text = texts(s).join(" ");
      assert.match(text, /constant output channel/);
      assert.match(text, /Conv1/);
      const spec = JSON.stringify(VIEW_CASES["channel-ranges-mobilenet"]());
      assert.doesNotMatch(spec.replace(/"rangeRatio":[^,}]+/g, ""), /1\.79\d*e\+?308/);
      const marks = (s.match(/<path/g) ?? []).length;
      assert.ok(marks > 100, `${marks} marks: every layer drawn`);
    });

    it("per-layer error, ranges and channel ranges name layers on their axes", async () => {
      const errorText = texts(await svg("layer-error"));
      for (const r of fixture("layer-error").rows as { node: string }[]) assert.ok(errorText.includes(r.node), r.node);
      const rangeText = texts(await svg("ranges"));
      assert.ok(rangeText.includes("block_3_add") && rangeText.includes("Conv1"), "ranges named by layer");
      assert.ok(rangeText.some((t) => t.startsWith("[-8.62, 8.55]")), "the widest activation range is written beside it");
    });

    it("fix results each draw their own view: HBA, bias correction, mean shifts, AdaRound, folding, CLE", async () => {
      assert.match(texts(await svg("high-bias-absorption")).join(" "), /1185 channels absorbed, most in block_11_expand/);
      assert.match(texts(await svg("high-bias-absorption-nothing")).join(" "), /nothing to absorb/);
      assert.match(texts(await svg("bias-correction")).join(" "), /largest in block_5_project/);
      assert.match(texts(await svg("mean-shifts")).join(" "), /before and after bias correction/);
      assert.match(texts(await svg("adaround")).join(" "), /AdaRound: reconstruction error per layer, most improved: /);
      assert.match(texts(await svg("fold-batch-norm")).join(" "), /BatchNorm folding: 17 folded/);
      assert.match(texts(await svg("cross-layer-equalization-scales")).join(" "), /widest spread in /);
      assert.ok(texts(await svg("adaround-curves")).includes("Training curves: Conv1.kernel"), "the picked run (layer) is in the title");
    });
  });

  describe("show draws any result", () => {
    it("every saved result has a view, found by its step or its shape", () => {
      for (const file of fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".json"))) {
        const spec = viewOf(fixture(file.replace(/\.json$/, "")));
        assert.equal(spec.$schema, "https://vega.github.io/schema/vega-lite/v5.json", file);
      }
    });

    it("a flow step whose result has a view draws that view; one without draws its scores", () => {
      for (const box of ["fp32-sanity-check", "weights-vs-activations", "fold-batch-norm", "cross-layer-equalization", "bias-correction"]) {
        const step = flowStep(box);
        assert.deepEqual(viewOf(step), viewOf(step.result as never), box);
      }
      const baseline = viewOf(flowStep("quantized-baseline")) as unknown as { title: { text: string } };
      assert.equal(baseline.title.text, "2. Quantized baseline");
    });

    it("every registered result step is drawn, and an unknown one is refused with the list", () => {
      const steps = registeredViews().flatMap((v) => v.steps);
      for (const step of ["score", "fp32-sanity-check", "weights-vs-activations", "sweep-enabled", "layer-error", "ranges", "weight-channels", "histograms", "activation-axes", "debug-flow", "mixed-precision", "qat", "fold-batch-norm", "cross-layer-equalization", "high-bias-absorption", "bias-correction", "adaround", "range-setting", "fix-quantizers"]) {
        assert.ok(steps.includes(step), `a view for "${step}"`);
      }
      assert.throws(() => viewOf({ step: "no-such-step" }), /nothing to draw for "no-such-step".*adaround/);
    });
  });
});
