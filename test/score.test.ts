import { strict as assert } from "assert";
import { score } from "../src/analysis/score";
import { toDataset } from "../src/data/dataset";
import { compareWithFp32 } from "../src/eval/side-by-side";
import { Graph } from "../src/graph/graph";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertNoLeak, setupBackend } from "./helpers";

describe("score(subject, { data, metric | evaluate })", function () {
  let graph: Graph;
  let sim: QuantSim;
  const data = () => toDataset("mnist:0:300", { batchSize: 100 });

  before(async () => {
    await setupBackend();
    graph = await loadGraph(EXAMPLE_MODEL);
    sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(toDataset("mnist:300:200"));
  });
  after(() => {
    sim.dispose();
    graph.dispose();
  });

  it("scores the FP32 graph and the simulation as compareWithFp32 counts them, and leaks nothing", async () => {
    const fp32 = await assertNoLeak("score(graph)", () => score(graph, { data: data(), metric: "accuracy" }));
    const quantized = await assertNoLeak("score(sim)", () => score(sim, { data: data(), metric: "accuracy" }));
    const side = await compareWithFp32(graph, { data: data(), variants: { sim } });
    assert.equal(fp32.step, "score");
    assert.equal(fp32.subject, "fp32");
    assert.equal(quantized.subject, "simulation");
    assert.equal(fp32.score, side.referenceAccuracy);
    assert.equal(quantized.score, side.variants.sim.accuracy);
    assert.ok(quantized.score < fp32.score, `4-bit weights cost accuracy: ${quantized.score} vs ${fp32.score}`);
    assert.match(fp32.diagnosis, /^The FP32 model scores \d+\.\d\d % \(top-1 accuracy/i);
    // FP32 has no fidelity score against itself: refused, not "agreement 100 %".
    await assert.rejects(score(graph, { data: data(), metric: "agreement" }), /this is the FP32 model itself: it has no score of its own/);
  });

  it("takes the user's evaluate(sim), and names what is missing", async () => {
    const seen: boolean[] = [];
    const r = await score(graph, { evaluate: (s) => (seen.push(s.sites.every((q) => !s.settingsOf(q.name).enabled)), 0.5) });
    assert.deepEqual([r.score, r.metric.metric, seen], [0.5, "custom", [true]]);
    await assert.rejects(score(sim, data() as never), /^Error: score: give the data in the options, as score\(subject, \{ data \}\)$/);
    await assert.rejects(score(sim, { metric: "accuracy" }), /^Error: score: options\.data is required/);
  });
});
