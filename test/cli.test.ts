import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { main } from "../src/cli/main";
import { buildBlockModel } from "./fixtures/small-models";
import { saveModel } from "./fixtures/save-model";
import { randomizeWeights, setupBackend } from "./helpers";

async function run(argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(argv, (s) => lines.push(s));
  return { code, text: lines.join("\n") };
}

describe("CLI", () => {
  let dir: string;
  let modelPath: string;
  before(async () => {
    await setupBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-cli-"));
    const model = buildBlockModel();
    randomizeWeights(model, 4);
    modelPath = await saveModel(model, path.join(dir, "block"));
    model.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("info prints nodes in execution order with op, shape and parameter count", async () => {
    const { code, text } = await run(["info", modelPath]);
    assert.equal(code, 0);
    assert.match(text, /inputs: image \[\?, 8, 8, 3\] float32/);
    assert.match(text, /c1\s+conv2d\s+Conv2D\s+\[\?, 8, 8, 4\]\s+112\n/);
    assert.ok(text.indexOf(" dw ") < text.indexOf(" pw "), "execution order");
    assert.match(text, /13 nodes, 245 parameters/);
  });

  it("info --json gives the same as JSON, and --verify the largest relative difference", async () => {
    const before = tf.memory().numTensors;
    const { code, text } = await run(["info", modelPath, "--json", "--verify"]);
    assert.equal(tf.memory().numTensors, before, "the command frees what it made");
    assert.equal(code, 0);
    const json = JSON.parse(text);
    assert.equal(json.nodes.length, 13);
    assert.deepEqual(json.nodes.find((n: { name: string }) => n.name === "dw").params, { depthwise_kernel: [3, 3, 4, 1], bias: [4] });
    assert.ok(json.verify.maxRelDiff <= 1e-5);
  });

  it("explains what is wrong: missing file, unknown command or option", async () => {
    await assert.rejects(run(["info", path.join(dir, "missing.json")]), /model file not found/);
    await assert.rejects(run(["infos"]), /unknown command "infos"/);
    await assert.rejects(run(["info", modelPath, "--jsn"]), /unknown option --jsn/);
    assert.equal((await run([])).code, 1);
  });
});
