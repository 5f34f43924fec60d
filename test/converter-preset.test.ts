import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { loadGraph } from "../src/graph/load-model";
import { converterFlags, converterQuantize, decode, fromHalfBits, resolvePreset, simulateConverter, toHalfBits } from "../src/quant/converter-preset";
import { forward } from "../src/graph/forward";
import { setupBackend } from "./helpers";
import { nsfwjsMobileNetV2 } from "./fixtures/models";

interface Entry { name: string; shape: number[]; dtype: string; quantization?: { dtype: string; min: number; scale: number } }

describe("tfjs-converter weight storage (the converter preset)", function () {
  this.timeout(300000);
  before(setupBackend);

  it("nsfwjs MobileNetV2 (stored with --quantize_uint8): its codes, dequantized and quantized again, come back bit for bit, with the same scale and min", () => {
    const file = nsfwjsMobileNetV2();
    const json = JSON.parse(fs.readFileSync(file, "utf8")) as { weightsManifest: { weights: Entry[] }[] };
    const bytes = fs.readFileSync(path.join(path.dirname(file), "weights.bin"));
    const entries = json.weightsManifest.flatMap((g) => g.weights);
    let offset = 0;
    let checked = 0;
    let exactRecords = 0;
    let nudged = 0;
    for (const e of entries) {
      const count = e.shape.reduce((a, b) => a * b, 1);
      assert.equal(e.quantization?.dtype, "uint8", `${e.name} is stored as uint8`);
      const stored = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, count);
      offset += count;
      const { min, scale } = e.quantization!;
      const loaded = decode(stored, scale, min);
      // What TF.js itself loads from the same bytes.
      const tfjs = tf.io.decodeWeights(stored.slice().buffer, [e as tf.io.WeightsManifestEntry])[e.name];
      assert.deepEqual(Array.from(tfjs.dataSync()), Array.from(loaded), `${e.name}: decoded as TF.js does`);
      tfjs.dispose();
      const again = converterQuantize(loaded, "uint8");
      assert.deepEqual(Array.from(again.codes), Array.from(stored), `${e.name}: codes`);
      // The stored record was computed from the original float weights; from their grid it comes back to float32 precision.
      assert.ok(Math.abs(again.scale! - scale) <= 1e-6 * scale, `${e.name}: scale ${again.scale} vs ${scale}`);
      assert.ok(Math.abs(again.min! - min) <= 1e-6 * Math.max(Math.abs(min), scale), `${e.name}: min ${again.min} vs ${min}`);
      if (again.scale === scale && again.min === min) exactRecords++;
      if (min < 0 && min + 255 * scale > 0) nudged++;
      checked++;
    }
    assert.equal(offset, bytes.length);
    assert.ok(checked > 250, `${checked} weights`);
    assert.ok(nudged > 100, "most weights hold 0 and were nudged");
    assert.ok(exactRecords > 0, "records of ranges without 0 come back exactly");
  });

  it("known answers: the nudge only when the range holds 0, constants, uint16 and float16", () => {
    // [-1, 2]: scale 3/255, zero point round(85) = 85, min = -85 * scale.
    const a = converterQuantize(new Float32Array([-1, 0, 2, 0.5]), "uint8");
    assert.equal(a.scale, 3 / 255);
    assert.equal(a.min, -85 * (3 / 255));
    assert.deepEqual(Array.from(a.codes), [0, 85, 255, 128]);
    assert.equal(a.values[1], 0, "0 is exactly on the grid");
    // [1, 3]: no zero in range, no nudge (AIMET would widen it to [0, 3]).
    const b = converterQuantize(new Float32Array([1, 3, 2]), "uint8");
    assert.equal(b.min, 1);
    // (2 - 1) / scale is 127.5 in exact arithmetic but 127.49999 in the float32 the converter computes in.
    assert.deepEqual(Array.from(b.codes), [0, 255, 127]);
    const c = converterQuantize(new Float32Array([0.25, 0.25]), "uint16");
    assert.deepEqual([c.min, c.scale, ...c.codes], [0.25, 1, 0, 0]);
    for (const v of [0, 1, -2.5, 65504, 1e-8, 6.1e-5, 0.1, 3.14159]) {
      assert.equal(fromHalfBits(toHalfBits(v)), v === 0.1 ? 0.0999755859375 : v === 3.14159 ? 3.140625 : v === 1e-8 ? 0 : v === 6.1e-5 ? 1023 * 2 ** -24 : v);
    }
  });

  it("a preset on a real graph: patterns by weight name, one fallthrough, flags printed back", async () => {
    const before = tf.memory().numTensors;
    const graph = await loadGraph(nsfwjsMobileNetV2());
    const sim = simulateConverter(graph, { uint16: ["Conv1/*"], uint8: true });
    try {
      assert.equal(sim.weights.find((w) => w.name === "Conv1/kernel")?.dtype, "uint16");
      assert.ok(sim.weights.filter((w) => w.dtype === "uint8").length > 200);
      const x = tf.randomUniform([2, 224, 224, 3], 0, 1, "float32", 9);
      const [y0, y1] = [forward(graph, x)[0], forward(sim.graph, x)[0]];
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(y0, y1))).dataSync()[0]);
      // The shipped weights are already on a uint8 grid, so storing them again changes nothing beyond float rounding.
      assert.ok(diff < 1e-4, `outputs move by ${diff}`);
      tf.dispose([x, y0, y1]);
      assert.throws(() => resolvePreset(sim.weights, { uint8: true, float16: true }), /more than one fallthrough/);
      assert.throws(() => resolvePreset(sim.weights, { uint8: ["Conv1/*"], uint16: ["Conv1/kernel"] }), /matches both uint8 and uint16/);
      assert.equal(converterFlags({ "a/kernel": "uint8", "b/kernel": "uint8", "c/bias": "float16" }), '--quantize_uint8="a/kernel,b/kernel" --quantize_float16="c/bias"');
    } finally {
      sim.graph.dispose();
      graph.dispose();
    }
    assert.equal(tf.memory().numTensors, before, "no tensor leaked");
  });
});
