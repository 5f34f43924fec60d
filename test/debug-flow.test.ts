import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { toDataset } from "../src/data/dataset";
import { debugFlow, DebugFlowResult } from "../src/flow/debug-flow";
import { viewOf } from "../src/display/show";
import { channelRangesView } from "../widgets/channel-ranges-view";
import { EXAMPLE_MODEL } from "./fixtures/models";
import { assertViewRenders } from "./fixtures/vega-validate";
import { setupBackend } from "./helpers";

/** The guided flow on the example model at 4-bit weights: it must reach the target and say how. */
describe("debugFlow", () => {
  let result: DebugFlowResult;
  let tensorsBefore: number;
  const seen: string[] = [];

  before(async () => {
    await setupBackend();
    tensorsBefore = tf.memory().numTensors;
    result = await debugFlow(EXAMPLE_MODEL, {
      data: toDataset("mnist:0:1000", { batchSize: 250 }),
      calibration: toDataset("mnist:1000:256", { batchSize: 128 }),
      metric: "accuracy",
      target: 0.01,
      config: { weights: { bitwidth: 4 } },
      allowPerChannel: false,
      onStep: (s) => void seen.push(s.box),
    });
  });

  it("reaches the target and records every step in the flow chart's order, with scores", () => {
    const { record } = result;
    assert.equal(record.met, true, record.diagnosis);
    assert.ok(record.final.score >= record.target, `${record.final.score} < ${record.target}`);
    assert.ok(Math.abs(record.fp32! - 0.978) < 0.01, `FP32 accuracy on 1000 images ${record.fp32}`);
    const boxes = record.steps.map((s) => s.box);
    assert.deepEqual(boxes.slice(0, 4), ["fp32-sanity-check", "quantized-baseline", "weights-vs-activations", "fold-batch-norm"]);
    assert.deepEqual(seen, boxes, "onStep saw every step as it happened");
    // Weights are the culprit here: the weight fixes come first, in the guidebook's order, then activations, then the last resorts.
    const canonical: string[] = ["fold-batch-norm", "cross-layer-equalization", "high-bias-absorption", "per-channel", "bias-correction", "adaround", "range-setting", "per-layer-analysis", "fix-quantizers", "qat"];
    const fixes: string[] = boxes.slice(3);
    assert.deepEqual(fixes, canonical.filter((b) => fixes.includes(b)), `order ${fixes.join(", ")}`);
    assert.deepEqual(fixes, canonical.slice(0, fixes.length), "no box skipped silently: skipped ones are recorded too");
    assert.equal(record.steps[boxes.length - 1].met, true);
    assert.ok(record.steps.slice(0, -1).every((s) => !s.met || s.box === "fp32-sanity-check"), "it stops as soon as the target is met");
    // Only fixes that raise the score are kept (folding always: runtimes fold).
    let current = record.steps[1].score;
    for (const s of record.steps.slice(2)) {
      if (s.kind === "fix" && !s.skipped) {
        if (s.box !== "fold-batch-norm") assert.equal(s.kept, s.score! > s.before!, `${s.box}: kept ${s.kept} at ${s.before} → ${s.score}`);
        if (s.kept) current = s.score;
      }
      assert.ok(s.finding.length > 20, `${s.box} says what it found`);
    }
    assert.equal(record.final.score, current);
    assert.ok(record.final.graphChanges.includes("fold-batch-norm"));
    JSON.parse(JSON.stringify(record));
  });

  it("the final simulation scores what the record says, and the skipped per-channel step says why", async () => {
    const perChannel = result.record.steps.find((s) => s.box === "per-channel");
    if (perChannel) {
      assert.equal(perChannel.skipped, true);
      assert.match(perChannel.finding, /allowPerChannel: false/);
    }
    assert.equal(result.sim.graph, result.graph);
    assert.ok(!result.graph.nodes.some((n) => n.op === "batchNorm"), "the final graph is folded");
  });

  it("draws the record and the CLE step's before/after channel ranges", async () => {
    await assertViewRenders("flow", viewOf(result.record));
    const cle = result.record.steps.find((s) => s.box === "cross-layer-equalization")!;
    const ranges = (cle.result as { channelRanges: Parameters<typeof channelRangesView>[0] }).channelRanges;
    await assertViewRenders("channel ranges", channelRangesView(ranges, "CLE"));
    // Every step draws on its own (what a notebook shows beside each step).
    for (const s of result.record.steps) await assertViewRenders(s.box, viewOf(s), 3);
  });

  it("frees everything it made; refuses a negative target", async () => {
    result.dispose();
    assert.equal(tf.memory().numTensors, tensorsBefore);
    await assert.rejects(debugFlow(EXAMPLE_MODEL, { data: toDataset("mnist:0:10"), target: -1 }), /target must be/);
  });
});
