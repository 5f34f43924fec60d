import { strict as assert } from "assert";
import { toDataset } from "../src/data/dataset";
import { crossLayerEqualization } from "../src/fix/cross-layer-equalization";
import { foldBatchNorms } from "../src/fix/fold-batch-norm";
import { ACTIVATION_FIXES, UNEVEN_ACTIVATIONS } from "../src/flow/flow-fixes";
import { FlowContext, makeScorer } from "../src/flow/flow-scoring";
import { DebugFlowOptions } from "../src/flow/flow-types";
import { Graph } from "../src/graph/graph";
import { loadGraph } from "../src/graph/load-model";
import { QuantSim } from "../src/quant/quantsim";
import { TEXT_ENCODER_EVAL, TEXT_ENCODER_MODEL } from "../src/text-encoder";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { setupBackend } from "./helpers";
import { flowStepView } from "../src/display/show";
import { activationAwareCleView } from "../widgets/activation-aware-cle-view";

const awareStep = ACTIVATION_FIXES.find((f) => f.title === "Activation-aware cross-layer equalization")!;

async function context(graph: Graph, options: DebugFlowOptions): Promise<FlowContext> {
  const sim = await QuantSim.create(graph, options.config).calibrate(options.data);
  return { reference: graph, graph, sim, calibration: options.data, options, score: makeScorer(graph, options) };
}

describe("the flow's activation fixes: activation-aware CLE", () => {
  before(setupBackend);

  it("comes first under fixing activations", () => {
    assert.deepEqual(ACTIVATION_FIXES.map((f) => f.title), ["Activation-aware cross-layer equalization", "Activation range setting"]);
  });

  it("after vanilla CLE left the example model's activations uneven, it offers an equalized graph with even activations", async () => {
    const original = await loadGraph(EXAMPLE_MODEL);
    const folded = foldBatchNorms(original);
    original.dispose();
    // Where the flow stands after BatchNorm folding and a kept vanilla CLE (ReLU6 → ReLU, the flow's default).
    const cle = crossLayerEqualization(folded.graph, { relu6: "relu" });
    folded.graph.dispose();
    const options: DebugFlowOptions = { data: toDataset("mnist:0:128", { batchSize: 64 }), metric: "agreement", target: 0.01, config: { activations: { bitwidth: 6 } } };
    const ctx = await context(cle.graph, options);
    try {
      const outcome = await awareStep.run(ctx, 0.9, 0.99);
      assert.ok(!("skip" in outcome) && !("analysis" in outcome), JSON.stringify(outcome).slice(0, 300));
      const candidate = outcome as Exclude<typeof outcome, { skip: string } | { analysis: unknown }>;
      try {
        const result = candidate.result as { activations: { ratio: { original: number; cle: number; aware: number } }[] };
        const median = (key: "cle" | "aware") => result.activations.map((a) => a.ratio[key]).sort((a, b) => a - b)[(result.activations.length - 1) >> 1];
        assert.ok(median("cle") >= UNEVEN_ACTIVATIONS, `vanilla CLE leaves ${median("cle")}×`);
        assert.ok(median("aware") < median("cle") * 0.8, `${median("cle")}× → ${median("aware")}×`);
        assert.match(candidate.finding, /after the CLE applied above/);
        // Recorded as a flow step, it is drawn by the activation-aware CLE view.
        const step = { index: 5, box: awareStep.box, title: awareStep.title, kind: "fix", score: 0.95, drop: 0.02, before: 0.9, fp32: 0.97, target: 0.96, kept: true, skipped: false, met: false, finding: candidate.finding, result: candidate.result, seconds: 1 } as const;
        assert.deepEqual(flowStepView(step), activationAwareCleView(candidate.result as never));
        assert.ok(candidate.graph!.edits.some((e) => e.by === "activation-aware-cle"));
        assert.ok(candidate.graph!.edits.some((e) => e.by === "cross-layer-equalization"), "it starts from the graph the flow stands at");
        assert.equal(candidate.sim.graph, candidate.graph);
        assert.ok(candidate.sim.calibrated);
      } finally {
        candidate.sim.dispose();
        candidate.graph!.dispose();
      }
    } finally {
      ctx.sim.dispose();
      cle.graph.dispose();
    }
  });

  it("is skipped, with the reason, on a model without layer pairs to equalize (the text encoder)", async () => {
    const graph = await loadGraph(TEXT_ENCODER_MODEL);
    const options: DebugFlowOptions = { data: toDataset(TEXT_ENCODER_EVAL, { batchSize: 32, limit: 32 }), metric: "agreement", target: 0.01 };
    const ctx = await context(graph, options);
    try {
      const outcome = await awareStep.run(ctx, 0.9, 0.99);
      assert.ok("skip" in outcome);
      assert.match((outcome as { skip: string }).skip, /found no layer pair/);
    } finally {
      ctx.sim.dispose();
      graph.dispose();
    }
  });
});
