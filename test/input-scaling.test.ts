import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { PNG } from "pngjs";
import { toDataset } from "../src/data/dataset";
import { writeNpy } from "../src/data/npy";
import { Batch } from "../src/data/types";

async function firstBatch(ds: { batches(): AsyncIterable<Batch> }): Promise<number[]> {
  for await (const b of ds.batches()) {
    const values = Array.from(b.inputs[0].dataSync());
    tf.dispose([...b.inputs, ...(b.labels ? [b.labels] : [])]);
    return values;
  }
  throw new Error("empty");
}

/** The CLI's --input-range, --mean and --std, as toDataset's imageRange, mean and std. */
describe("input scaling: imageRange, mean and std for image folders and .npy", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-scaling-"));
    // One 1×2 RGB image: pixels (0, 128, 255) and (255, 0, 51).
    const png = new PNG({ width: 2, height: 1 });
    png.data.set([0, 128, 255, 255, 255, 0, 51, 255]);
    fs.mkdirSync(path.join(dir, "images"));
    fs.writeFileSync(path.join(dir, "images", "a.png"), PNG.sync.write(png));
    writeNpy(path.join(dir, "u8.npy"), Uint8Array.from([0, 128, 255, 255, 0, 51]), [1, 1, 2, 3]);
    writeNpy(path.join(dir, "f32.npy"), Float32Array.from([0, 0.5, 1, 1, 0, 0.2]), [1, 1, 2, 3]);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("maps 0..255 pixels onto a range, then normalizes per channel, alike for images and uint8 .npy", async () => {
    const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-5);
    const raw = [0, 128, 255, 255, 0, 51];
    assert.deepEqual(await firstBatch(toDataset(path.join(dir, "images"), { imageRange: [0, 255] })), raw);
    assert.deepEqual(await firstBatch(toDataset(path.join(dir, "u8.npy"), { imageRange: [0, 255] })), raw);
    assert.deepEqual(await firstBatch(toDataset(path.join(dir, "u8.npy"))), raw, "no option: the values as stored");
    const std = [0.5, 0.25, 1];
    const want = raw.map((v, i) => (v / 255 - 0.5) / std[i % 3]);
    const image = await firstBatch(toDataset(path.join(dir, "images"), { imageRange: [0, 1], mean: [0.5, 0.5, 0.5], std }));
    assert.ok(close(image, want), `${image} vs ${want}`);
    const npy = await firstBatch(toDataset(path.join(dir, "u8.npy"), { imageRange: [0, 1], mean: [0.5, 0.5, 0.5], std }));
    assert.ok(close(npy, want), `${npy} vs ${want}`);
    // A float .npy: mean and std apply; a pixel range does not.
    const f = await firstBatch(toDataset(path.join(dir, "f32.npy"), { mean: 0.5, std: 0.5 }));
    assert.ok(close(f, [0, 0.5, 1, 1, 0, 0.2].map((v) => (v - 0.5) / 0.5)), `${f}`);
    assert.throws(() => toDataset(path.join(dir, "f32.npy"), { imageRange: [0, 255] }), /holds float32 values: an input range maps 8-bit pixel values/);
    assert.throws(() => toDataset(path.join(dir, "u8.npy"), { mean: [1, 2] }), /mean gives 2 values, but the inputs have 3 channels/);
    assert.throws(() => toDataset(tf.zeros([1, 2]) as tf.Tensor, { mean: 1 }), /normalize tensors and arrays yourself/);
  });
});
