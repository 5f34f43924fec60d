import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { assertViewRenders } from "./fixtures/vega-validate";
import { qat } from "../src/fix/qat";
import { importLayersModel } from "../src/graph/import-layers";
import { QuantSim } from "../src/quant/quantsim";
import { CurvePoint } from "../src/fix/training-curve";
import { View } from "../widgets/spec";
import { ALL_RUNS, trainingCurveView } from "../widgets/training-curve-view";
import { buildBlockModel } from "./fixtures/small-models";
import { setupBackend, sliceDataset } from "./helpers";

/** QAT's curve: a loss every 2 steps and a validation accuracy per epoch (before the first step too). */
function qatCurve(): CurvePoint[] {
  const loss = Array.from({ length: 16 }, (_, i) => ({ run: "qat", series: "loss", step: 2 * (i + 1), value: 0.2 + 0.6 * Math.exp(-i / 3) }));
  const accuracy = [0, 16, 32].map((step, i) => ({ run: "qat", series: "accuracy", step, value: [0.736, 0.93, 0.945][i] }));
  return [...accuracy.slice(0, 1), ...loss, ...accuracy.slice(1)];
}

/** AdaRound's shape: one run per layer, two series each, many iterations. */
function adaroundCurve(): CurvePoint[] {
  const points: CurvePoint[] = [];
  for (const layer of ["conv1", "block_1_expand", "block_1_project"]) {
    for (let it = 0; it <= 500; it += 5) {
      points.push({ run: layer, series: "reconstruction", step: it, value: 0.01 + 0.05 / (1 + it / 50) });
      points.push({ run: layer, series: "rounding", step: it, value: Math.max(0, 1 - it / 400) });
    }
  }
  return points;
}

describe("training curve view", () => {
  before(setupBackend);

  const checkSpec = (name: string, spec: View) => assertViewRenders(name, spec, 6);

  it("QAT (one run, loss and accuracy): validates against the Vega-Lite v5 schema and renders to SVG", async () => {
    const spec = trainingCurveView(qatCurve(), { references: [{ series: "accuracy", value: 0.98, label: "FP32" }] });
    const svg = await checkSpec("qat", spec);
    const s = spec as unknown as { facet: { row: { field: string } }; resolve: { scale: { y: string } }; params?: unknown; title: { text: string; subtitle: string[] } };
    assert.equal(s.facet.row.field, "series", "one chart per series");
    assert.equal(s.resolve.scale.y, "independent", "loss and accuracy each get their own y scale");
    assert.equal(s.params, undefined, "no picker for a single run");
    // The reading names the series with their first and last values.
    const subtitle = s.title.subtitle.join(" ");
    assert.match(subtitle, /accuracy 73\.60 % → 94\.50 % \(step 0 → 32\)/);
    assert.match(subtitle, /loss 0\.800 → 0\.2/);
    assert.match(svg, /loss/);
    assert.match(svg, /accuracy/);
    assert.match(svg, /FP32/, "the reference line is labelled");
  });

  it("AdaRound (one run per layer): a run picker bound to a drop-down, with an (all runs) entry", async () => {
    const spec = trainingCurveView(adaroundCurve(), { run: "block_1_expand", stepTitle: "iteration" });
    await checkSpec("adaround", spec);
    const s = spec as unknown as { params: { name: string; value: string; bind: { input: string; options: string[] } }[]; transform: { filter: string }[] };
    assert.equal(s.params[0].bind.input, "select");
    assert.deepEqual(s.params[0].bind.options, [ALL_RUNS, "conv1", "block_1_expand", "block_1_project"]);
    assert.equal(s.params[0].value, "block_1_expand");
    assert.match(s.transform[0].filter, /datum\.run === run_shown/);
  });

  it("a real QAT run's curve (small block model, validation each epoch) draws both series", async () => {
    const model = buildBlockModel();
    const graph = importLayersModel(model);
    model.dispose();
    const x = tf.randomUniform([24, 8, 8, 3], 0, 1, "float32", 2);
    const labels = tf.tensor1d(Array.from({ length: 24 }, (_, i) => i % 5), "int32");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 4 } }).calibrate(sliceDataset(x, 12));
    const streamed: CurvePoint[] = [];
    const r = await qat(sim, { data: sliceDataset(x, 12, labels),  epochs: 3, batchSize: 8, learningRate: 1e-2, validation: sliceDataset(x, 12, labels), onCurve: (p) => streamed.push(p) });
    assert.deepEqual(streamed, r.curve, "onCurve streams every point of the curve");
    assert.deepEqual([...new Set(r.curve.map((p) => p.series))].sort(), ["accuracy", "loss"]);
    await checkSpec("real qat", trainingCurveView(r.curve));
    r.graph.dispose();
    r.sim.dispose();
    sim.dispose();
    graph.dispose();
    tf.dispose([x, labels]);
  });

  it("refuses an empty curve and an unknown run", () => {
    assert.throws(() => trainingCurveView([]), /no points/);
    assert.throws(() => trainingCurveView(adaroundCurve(), { run: "nope" }), /no run "nope".*conv1/);
    assert.throws(() => trainingCurveView(qatCurve(), { references: [{ series: "top-1", value: 1, label: "FP32" }] }), /series "top-1", which the curve does not have \(series: accuracy, loss\)/);
  });
});
