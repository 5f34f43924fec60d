import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { measureCleOnMobileNet } from "../scripts/measure-cle-mobilenet";
import { setupBackend } from "./helpers";

/**
 * The white paper's case on a real network: MobileNetV2 (nsfwjs) with BatchNorm
 * folded collapses under per-tensor 8-bit weights; CLE brings it back. Scored
 * by top-1 agreement with the original FP32 model on 48 crops of six real photos.
 */
describe("CLE on MobileNetV2 with real photos", () => {
  before(setupBackend);

  it("per-tensor W8A8 agreement with FP32: collapsed before CLE, restored after (ReLU6 kept as per-channel clips)", async () => {
    const before = tf.memory().numTensors;
    const r = await measureCleOnMobileNet({ weightBits: 8, relu6: "per-channel" });
    assert.equal(tf.memory().numTensors, before, "nothing leaked");
    assert.equal(r.examples, 48);
    assert.equal(r.pairs, 32);
    assert.ok(r.before < 0.4, `before CLE ${r.before}`);
    assert.ok(r.after >= 0.85, `after CLE ${r.after}`);
  });

  it("the paper's way (ReLU6 → ReLU) also helps, capped by what ReLU changes in FP32", async () => {
    const r = await measureCleOnMobileNet({ weightBits: 8, relu6: "relu" });
    assert.equal(r.relu6Replaced, 30);
    assert.ok(r.after > r.before + 0.3, `${r.before} → ${r.after}`);
  });
});
