import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { shapeText } from "../shape-text";
import { imageFolderDataset } from "./images";
import { loadMnist, MnistVariant } from "./mnist";
import { npyToTfData, readNpy, tfDtypeOf } from "./npy";
import { takeExamples } from "./take";
import { Batch, Dataset, InputSpec } from "./types";

/**
 * `toDataset` turns whatever the user gives as data into a `Dataset`; it is the
 * one place where data sources are recognized.
 *
 * Ownership: tensors passed in by the user are never disposed here. Batches cut
 * from them are new tensors (slices, gathers or clones) that the consumer owns.
 * Data read from files stays in JS memory; its tensors are made per batch.
 *
 * Sources (in the order they are recognized):
 * - a string: "mnist", "mnist-full", "mnist:OFFSET:LIMIT" (or "mnist-full:…");
 *   a .npy file (one input, no labels); a folder holding .npy files — `x.npy`
 *   for one input or `x0.npy, x1.npy, …` for several, labels from `y.npy` or
 *   `labels.npy` (other .npy names are an error); any other folder is a folder
 *   of images (see images.ts), sized by `inputSpecs`.
 * - a `tf.Tensor`: one input, examples along axis 0;
 * - a `Dataset` (anything with `name` and `batches()`): used as is;
 * - an array whose items are all tensors: one tensor per input, same first dimension;
 * - an array of (nested arrays of) numbers: one float32 input;
 * - `{ inputs, labels? }`: inputs as above (tensor, tensors, nested numbers);
 * - any other (async) iterable: each item is one batch — a `Batch`, a tensor,
 *   or an array of tensors (one per input). Batch size, shuffling and the
 *   labels option do not apply; items are cloned, so the source keeps its tensors.
 *   A generator can be iterated only once; pass an array or a Dataset to re-iterate.
 *
 * Labels passed as numbers become int32 if all are integers, float32 otherwise;
 * .npy labels follow `npyToTensor` (floats → float32, integers → int32).
 */

export type NestedNumbers = number | NestedNumbers[];

export type BatchLike = Batch | tf.Tensor | tf.Tensor[];

export type DataSource =
  | string
  | Dataset
  | tf.Tensor
  | tf.Tensor[]
  | NestedNumbers[]
  | { inputs: tf.Tensor | tf.Tensor[] | NestedNumbers[]; labels?: tf.Tensor | number[] }
  | Iterable<BatchLike>
  | AsyncIterable<BatchLike>;

export interface DatasetOptions {
  /** Examples per batch (default 32); not applied to iterables and Datasets, which batch themselves. */
  batchSize?: number;
  /** Labels for a source without them: a tensor, numbers, or a .npy path. */
  labels?: tf.Tensor | number[] | string;
  /** The model's inputs: image folders take their size and channel count from the (single) spec. */
  inputSpecs?: InputSpec[];
  /**
   * Pixel values 0..255 are mapped onto this range: images (default [0, 1]) and
   * uint8 .npy inputs (default: as stored). Float .npy inputs are refused (scale them with mean/std).
   */
  imageRange?: [number, number];
  /**
   * Inputs of image folders and .npy files are normalized as (x − mean) / std,
   * after `imageRange`; one number, or one per channel (the last axis).
   */
  mean?: number | number[];
  std?: number | number[];
  /** Use at most this many examples (after shuffling). */
  limit?: number;
  /** Deterministic shuffle: the same seed gives the same order on every iteration and run. */
  shuffle?: { seed: number };
}

/** A dataset made by `toDataset`; image folders with class sub-folders also name their classes. */
export interface SourceDataset extends Dataset {
  readonly classes?: string[];
}

const EXPECTED =
  'expected a Dataset, a tf.Tensor, an array of tensors, { inputs, labels? }, nested number arrays, an (async) iterable of batches or tensors, "mnist", "mnist-full", "mnist:OFFSET:LIMIT", a folder of images, a .npy file or a folder of .npy files';

/** A short description of any value, for error messages. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value !== "object") return `${typeof value} ${String(value)}`;
  if (value instanceof tf.Tensor) return `tensor ${value.dtype} [${value.shape.join(", ")}]`;
  if (Array.isArray(value)) return `array of ${value.length} item(s)${value.length ? ` (first: ${describeValue(value[0])})` : ""}`;
  const name = value.constructor?.name ?? "object";
  return `${name === "Object" ? "object" : name} with keys {${Object.keys(value).join(", ")}}`;
}

function invalidSource(what: unknown, detail?: string): Error {
  return new Error(`invalid data source: ${describeValue(what)} (${EXPECTED})${detail ? `: ${detail}` : ""}`);
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`invalid ${what}: ${value} (expected a positive integer)`);
  return value;
}

// ---------------------------------------------------------------- in-memory examples

/** Host data, example-major (C order): row i is the i-th example. */
interface HostArray {
  data: Float32Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: "float32" | "int32" | "bool";
}

/** One input (or the labels) of an in-memory dataset: a user's tensor, or host data. */
type Column = tf.Tensor | HostArray;

const rowsOf = (c: Column) => c.shape[0];

/** The examples `indices` of a column, as a new tensor the caller owns. */
function takeRows(column: Column, indices: number[], contiguous: boolean): tf.Tensor {
  if (column instanceof tf.Tensor) {
    if (contiguous) return column.slice(indices[0], indices.length);
    return tf.tidy(() => tf.gather(column, tf.tensor1d(indices, "int32")));
  }
  const rowSize = column.shape.slice(1).reduce((a, b) => a * b, 1);
  const Ctor = column.data.constructor as new (n: number) => Float32Array | Int32Array | Uint8Array;
  const out = new Ctor(indices.length * rowSize);
  indices.forEach((row, k) => out.set(column.data.subarray(row * rowSize, (row + 1) * rowSize), k * rowSize));
  return tf.tensor(out, [indices.length, ...column.shape.slice(1)], column.dtype);
}

/** A seeded permutation of 0..n-1 (mulberry32 + Fisher–Yates): the same for a seed everywhere. */
export function seededPermutation(n: number, seed: number): number[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** The example order after `shuffle` and `limit`. */
function exampleOrder(n: number, options: DatasetOptions): number[] {
  const order = options.shuffle ? seededPermutation(n, options.shuffle.seed) : Array.from({ length: n }, (_, i) => i);
  return options.limit === undefined ? order : order.slice(0, options.limit);
}

function describeOptions(name: string, options: DatasetOptions, n: number): string {
  const notes: string[] = [];
  if (options.shuffle) notes.push(`shuffled, seed ${options.shuffle.seed}`);
  if (options.limit !== undefined && options.limit < n) notes.push(`first ${options.limit}`);
  return notes.length ? `${name} (${notes.join(", ")})` : name;
}

function inMemoryDataset(name: string, inputs: Column[], labels: Column | undefined, options: DatasetOptions): SourceDataset {
  if (inputs.length === 0) throw new Error(`${name}: no inputs`);
  const n = rowsOf(inputs[0]);
  for (const [i, c] of inputs.entries()) {
    if (c.shape.length === 0) throw new Error(`${name}: input ${i} is a scalar; examples must lie along axis 0`);
    if (rowsOf(c) !== n) throw new Error(`${name}: input ${i} has ${rowsOf(c)} examples, input 0 has ${n} (inputs must share their first dimension)`);
  }
  if (labels && (labels.shape.length === 0 || rowsOf(labels) !== n)) {
    throw new Error(`${name}: ${labels.shape.length === 0 ? "labels are a scalar" : `${rowsOf(labels)} labels`} for ${n} examples`);
  }
  const batchSize = options.batchSize ?? 32;
  const order = exampleOrder(n, options);
  const contiguous = !options.shuffle;
  return {
    name: describeOptions(name, options, n),
    size: order.length,
    async *batches(): AsyncGenerator<Batch> {
      for (let start = 0; start < order.length; start += batchSize) {
        const indices = order.slice(start, start + batchSize);
        const batch: Batch = { inputs: inputs.map((c) => takeRows(c, indices, contiguous)) };
        if (labels) batch.labels = takeRows(labels, indices, contiguous);
        yield batch;
      }
    },
  };
}

// ---------------------------------------------------------------- conversions

/** Flattens rectangular nested number arrays into float32 host data. */
function fromNestedNumbers(value: NestedNumbers[], what: string): HostArray {
  const shape: number[] = [];
  for (let v: NestedNumbers = value; Array.isArray(v); v = v[0]) {
    shape.push(v.length);
    if (v.length === 0) break;
  }
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let k = 0;
  const walk = (v: NestedNumbers, depth: number, at: string) => {
    if (depth === shape.length) {
      if (typeof v !== "number") throw new Error(`${what}: expected a number at ${at}, got ${describeValue(v)}`);
      out[k++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new Error(`${what}: ragged nested arrays: expected ${shape[depth]} items at ${at || "top level"}, got ${describeValue(v)}`);
    }
    v.forEach((item, i) => walk(item, depth + 1, `${at}[${i}]`));
  };
  walk(value, 0, "");
  return { data: out, shape, dtype: "float32" };
}

const isTensorArray = (v: unknown[]): v is tf.Tensor[] => v.length > 0 && v.every((t) => t instanceof tf.Tensor);
const isNumberArray = (v: unknown[]): v is NestedNumbers[] => v.length > 0 && v.every((t) => typeof t === "number" || Array.isArray(t));

function inputColumns(inputs: unknown, source: unknown): { columns: Column[]; name: string } {
  if (inputs instanceof tf.Tensor) return { columns: [inputs], name: `tensor [${inputs.shape.join(", ")}]` };
  if (Array.isArray(inputs) && isTensorArray(inputs)) {
    return { columns: inputs, name: `${inputs.length} tensors ${inputs.map((t) => `[${t.shape.join(", ")}]`).join(", ")}` };
  }
  if (Array.isArray(inputs) && isNumberArray(inputs)) {
    const host = fromNestedNumbers(inputs, "nested number arrays");
    return { columns: [host], name: `array [${host.shape.join(", ")}]` };
  }
  throw invalidSource(source, `inputs must be a tensor, an array of tensors or nested number arrays, got ${describeValue(inputs)}`);
}

function labelsColumn(labels: tf.Tensor | number[] | string): Column {
  if (labels instanceof tf.Tensor) return labels;
  if (typeof labels === "string") {
    const npy = readNpy(labels);
    return { data: npyToTfData(npy), shape: npy.shape, dtype: tfDtypeOf(npy.dtype) };
  }
  if (Array.isArray(labels) && labels.every((v) => typeof v === "number")) {
    const integral = labels.every(Number.isInteger);
    return { data: integral ? Int32Array.from(labels) : Float32Array.from(labels), shape: [labels.length], dtype: integral ? "int32" : "float32" };
  }
  throw new Error(`invalid labels: ${describeValue(labels)} (expected a tensor, an array of numbers or a .npy path)`);
}

/** Labels from the source or from the options; giving both is an error. */
function pickLabels(own: Column | undefined, options: DatasetOptions, name: string): Column | undefined {
  if (options.labels === undefined) return own;
  if (own) throw new Error(`${name} already has labels; the labels option would replace them (drop one of the two)`);
  return labelsColumn(options.labels);
}

// ---------------------------------------------------------------- files

const MNIST_PATTERN = /^(mnist|mnist-full)(?::(\d+)(?::(\d+))?)?$/;

function fromMnist(match: RegExpExecArray, options: DatasetOptions): SourceDataset {
  const variant = match[1] as MnistVariant;
  const mnist = loadMnist(variant, {
    offset: match[2] === undefined ? undefined : Number(match[2]),
    limit: match[3] === undefined ? undefined : Number(match[3]),
  });
  const images: HostArray = { data: mnist.images, shape: mnist.shape, dtype: "float32" };
  const labels: HostArray = { data: mnist.labels, shape: [mnist.labels.length], dtype: "int32" };
  return inMemoryDataset(mnist.name, [images], pickLabels(labels, options, mnist.name), options);
}

function hostFromNpy(file: string): HostArray {
  const npy = readNpy(file);
  return { data: npyToTfData(npy), shape: npy.shape, dtype: tfDtypeOf(npy.dtype) };
}

/** An input .npy array with `imageRange`, `mean` and `std` applied (on the host, once). */
function inputFromNpy(file: string, options: DatasetOptions): HostArray {
  const npy = readNpy(file);
  const scaled = options.imageRange !== undefined || options.mean !== undefined || options.std !== undefined;
  if (!scaled) return { data: npyToTfData(npy), shape: npy.shape, dtype: tfDtypeOf(npy.dtype) };
  if (options.imageRange !== undefined && npy.dtype !== "uint8") {
    throw new Error(`${file} holds ${npy.dtype} values: an input range maps 8-bit pixel values (0..255: images, or uint8 .npy arrays) onto a range; scale ${npy.dtype} arrays with mean and std instead`);
  }
  if (tfDtypeOf(npy.dtype) === "bool") throw new Error(`${file} holds booleans: mean, std and input ranges apply to numbers`);
  const [lo, hi] = options.imageRange ?? [0, 255];
  const data = Float32Array.from(npy.data as ArrayLike<number>, (v) => lo + (v * (hi - lo)) / 255);
  normalizeInPlace(data, npy.shape, options, file);
  return { data, shape: npy.shape, dtype: "float32" };
}

/** (x − mean) / std over the last axis, in place; checks the options against the channel count. */
function normalizeInPlace(data: Float32Array, shape: readonly number[], options: DatasetOptions, name: string): void {
  if (options.mean === undefined && options.std === undefined) return;
  const channels = shape[shape.length - 1] ?? 1;
  const mean = perChannel(options.mean ?? 0, channels, "mean", name);
  const std = perChannel(options.std ?? 1, channels, "std", name);
  if (std.some((v) => !(v > 0))) throw new Error(`std must be > 0, got ${options.std}`);
  for (let i = 0; i < data.length; i++) data[i] = (data[i] - mean[i % channels]) / std[i % channels];
}

function perChannel(v: number | number[], channels: number, what: string, name: string): number[] {
  const values = typeof v === "number" ? [v] : v;
  if (values.some((x) => typeof x !== "number" || !Number.isFinite(x))) throw new Error(`${what} must be a number or one number per channel, got ${JSON.stringify(v)}`);
  if (values.length === 1) return Array.from({ length: channels }, () => values[0]);
  if (values.length !== channels) throw new Error(`${name}: ${what} gives ${values.length} values, but the inputs have ${channels} channels (the last axis)`);
  return values;
}

/** A dataset whose inputs are normalized as (x − mean) / std (image folders: after the pixel range). */
function normalizedDataset(dataset: SourceDataset, options: DatasetOptions): SourceDataset {
  if (options.mean === undefined && options.std === undefined) return dataset;
  let checked = false;
  return {
    ...dataset,
    name: `${dataset.name}, normalized (mean ${JSON.stringify(options.mean ?? 0)}, std ${JSON.stringify(options.std ?? 1)})`,
    async *batches() {
      for await (const batch of dataset.batches()) {
        const x = batch.inputs[0];
        const channels = x.shape[x.rank - 1] ?? 1;
        let mean: number[];
        let std: number[];
        try {
          mean = perChannel(options.mean ?? 0, channels, "mean", dataset.name);
          std = perChannel(options.std ?? 1, channels, "std", dataset.name);
          if (!checked && std.some((v) => !(v > 0))) throw new Error(`std must be > 0, got ${options.std}`);
        } catch (err) {
          tf.dispose([...batch.inputs, ...(batch.labels ? [batch.labels] : [])]);
          throw err;
        }
        checked = true;
        const inputs = batch.inputs.map((t) => tf.tidy(() => tf.div(tf.sub(t, tf.tensor1d(mean)), tf.tensor1d(std))));
        tf.dispose(batch.inputs);
        yield { ...batch, inputs };
      }
    },
  };
}

/** A folder of .npy files: x.npy or x0.npy, x1.npy, … (inputs), y.npy or labels.npy (labels). */
function fromNpyFolder(dir: string, npyFiles: string[], options: DatasetOptions): SourceDataset {
  const names = new Set(npyFiles);
  const labelFiles = ["y.npy", "labels.npy"].filter((f) => names.has(f));
  if (labelFiles.length > 1) throw new Error(`${dir}: both y.npy and labels.npy are present; keep one`);
  let inputFiles: string[];
  if (names.has("x.npy")) {
    if (names.has("x0.npy")) throw new Error(`${dir}: both x.npy and x0.npy are present; use x.npy for one input or x0.npy, x1.npy, … for several`);
    inputFiles = ["x.npy"];
  } else {
    inputFiles = [];
    while (names.has(`x${inputFiles.length}.npy`)) inputFiles.push(`x${inputFiles.length}.npy`);
    if (inputFiles.length === 0) throw new Error(`${dir}: a folder of .npy files needs x.npy (or x0.npy, x1.npy, … for several inputs); found ${npyFiles.join(", ")}`);
  }
  const known = new Set([...inputFiles, ...labelFiles]);
  const stray = npyFiles.find((f) => !known.has(f));
  if (stray) throw new Error(`${dir}: unexpected file ${path.join(dir, stray)} (a .npy folder holds x.npy or x0.npy, x1.npy, … and optionally y.npy or labels.npy)`);
  const inputs = inputFiles.map((f) => inputFromNpy(path.join(dir, f), options));
  const own = labelFiles.length ? hostFromNpy(path.join(dir, labelFiles[0])) : undefined;
  const name = `${dir} (${[...inputFiles, ...labelFiles].join(", ")})`;
  return inMemoryDataset(name, inputs, pickLabels(own, options, name), options);
}

/** Image size and channel count from the model's single input spec, [batch, height, width, channels]. */
function imageShapeFromSpecs(specs: InputSpec[] | undefined, dir: string): { size?: [number, number]; channels?: 1 | 3 } {
  if (!specs) return {};
  if (specs.length !== 1) throw new Error(`image folder ${dir} gives one input, but the model has ${specs.length} (${specs.map((s) => s.name).join(", ")})`);
  const shape = specs[0].shape;
  if (shape.length !== 4) throw new Error(`image folder ${dir}: the model input "${specs[0].name}" has shape ${shapeText(shape)}; images need [batch, height, width, channels]`);
  const [, h, w, c] = shape;
  if (c !== null && c !== 1 && c !== 3) throw new Error(`image folder ${dir}: the model input "${specs[0].name}" has ${c} channels; images give 1 (luminance) or 3 (RGB)`);
  return { size: h !== null && w !== null ? [h, w] : undefined, channels: c ?? 3 };
}

function fromImageFolder(dir: string, options: DatasetOptions): SourceDataset {
  if (options.labels !== undefined) throw new Error(`image folder ${dir}: the labels option is not supported for images; put them in one sub-folder per class instead`);
  const dataset = imageFolderDataset(dir, {
    ...imageShapeFromSpecs(options.inputSpecs, dir),
    range: options.imageRange,
    batchSize: options.batchSize,
    order: (count) => exampleOrder(count, options),
  });
  const name = describeOptions(dataset.name, options, dataset.files.length);
  return normalizedDataset({ name, size: dataset.size, classes: dataset.classes, batches: () => dataset.batches() }, options);
}

function fromString(source: string, options: DatasetOptions): SourceDataset {
  const mnist = MNIST_PATTERN.exec(source);
  if (mnist) return fromMnist(mnist, options);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch {
    throw invalidSource(source, "no such file or folder");
  }
  if (stat.isFile()) {
    if (path.extname(source).toLowerCase() !== ".npy") throw invalidSource(source, "a single file must be a .npy array");
    return inMemoryDataset(source, [inputFromNpy(source, options)], pickLabels(undefined, options, source), options);
  }
  const npyFiles = fs.readdirSync(source).filter((f) => !f.startsWith(".") && f.toLowerCase().endsWith(".npy")).sort();
  return npyFiles.length ? fromNpyFolder(source, npyFiles, options) : fromImageFolder(source, options);
}

// ---------------------------------------------------------------- iterables and datasets

const isDataset = (v: object): v is Dataset => typeof (v as Dataset).batches === "function" && typeof (v as Dataset).name === "string";

function isIterable(v: object): v is Iterable<unknown> | AsyncIterable<unknown> {
  return typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function" || typeof (v as Iterable<unknown>)[Symbol.iterator] === "function";
}

/** A generator (or any iterator that is its own iterable) can be walked only once. */
function isOneShot(v: Iterable<unknown> | AsyncIterable<unknown>): boolean {
  const asyncIt = (v as AsyncIterable<unknown>)[Symbol.asyncIterator];
  const it = typeof asyncIt === "function" ? asyncIt.call(v) : (v as Iterable<unknown>)[Symbol.iterator]();
  return (it as unknown) === v;
}

/** A copy of one iterable item as a Batch the consumer owns. */
function cloneAsBatch(item: unknown, index: number, name: string): Batch {
  const clone = (t: tf.Tensor) => tf.clone(t);
  if (item instanceof tf.Tensor) return { inputs: [clone(item)] };
  if (Array.isArray(item) && isTensorArray(item)) return { inputs: item.map(clone) };
  if (item !== null && typeof item === "object" && "inputs" in item) {
    const { inputs, labels } = item as { inputs: unknown; labels?: unknown };
    const tensors = inputs instanceof tf.Tensor ? [inputs] : Array.isArray(inputs) && isTensorArray(inputs) ? inputs : undefined;
    if (tensors && (labels === undefined || labels instanceof tf.Tensor)) {
      return labels ? { inputs: tensors.map(clone), labels: clone(labels) } : { inputs: tensors.map(clone) };
    }
  }
  throw new Error(`${name}: item ${index} is ${describeValue(item)} (expected a Batch { inputs: Tensor[], labels?: Tensor }, a tensor or an array of tensors)`);
}

function iterableDataset(source: Iterable<unknown> | AsyncIterable<unknown>, options: DatasetOptions): Dataset {
  if (options.shuffle || options.labels !== undefined) throw invalidSource(source, "shuffle and labels need a source with indexable examples, not an iterable of batches");
  const name = Array.isArray(source) ? `array of ${source.length} batches` : `iterable of batches`;
  const oneShot = isOneShot(source);
  let started = false;
  return {
    name,
    async *batches(): AsyncGenerator<Batch> {
      if (oneShot && started) throw new Error(`${name}: this iterator was already consumed and cannot restart; pass an array or a Dataset to iterate more than once`);
      started = true;
      let index = 0;
      for await (const item of source) yield cloneAsBatch(item, index++, name);
    },
  };
}

// ---------------------------------------------------------------- entry point

export function toDataset(source: DataSource, options: DatasetOptions = {}): SourceDataset {
  if (options.batchSize !== undefined) positiveInteger(options.batchSize, "batch size");
  if (options.limit !== undefined) positiveInteger(options.limit, "limit");
  if (options.shuffle && !Number.isInteger(options.shuffle.seed)) throw new Error(`invalid shuffle seed: ${options.shuffle.seed} (expected an integer)`);

  if (typeof source === "string") return fromString(source, options);
  if (options.mean !== undefined || options.std !== undefined) throw new Error("mean and std normalize image folders and .npy files; normalize tensors and arrays yourself before passing them");
  if (source instanceof tf.Tensor) {
    return inMemoryDataset(`tensor [${source.shape.join(", ")}]`, [source], pickLabels(undefined, options, "tensor"), options);
  }
  if (source === null || typeof source !== "object") throw invalidSource(source);
  if (isDataset(source)) {
    if (options.shuffle || options.labels !== undefined) throw new Error(`dataset "${source.name}": shuffle and labels options do not apply to a Dataset (it batches itself)`);
    return options.limit === undefined ? source : takeExamples(source, options.limit);
  }
  if (Array.isArray(source) && (isTensorArray(source) || isNumberArray(source))) {
    const { columns, name } = inputColumns(source, source);
    return inMemoryDataset(name, columns, pickLabels(undefined, options, name), options);
  }
  if (!Array.isArray(source) && "inputs" in source) {
    const { columns, name } = inputColumns(source.inputs, source);
    const own = source.labels === undefined ? undefined : labelsColumn(source.labels);
    return inMemoryDataset(name, columns, pickLabels(own, options, name), options);
  }
  if (Array.isArray(source) && source.length === 0) throw invalidSource(source, "the array is empty");
  if (isIterable(source)) {
    const dataset = iterableDataset(source, options);
    return options.limit === undefined ? dataset : takeExamples(dataset, options.limit);
  }
  throw invalidSource(source);
}
