import * as fs from "fs";
import * as tf from "@tensorflow/tfjs";

/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0), C order, little-endian.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */

export type NpyTypedArray = Float32Array | Float64Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

/** A parsed .npy array. `dtype` is NumPy's name ("float32", "uint8", "bool", ...). */
export interface Npy {
  data: NpyTypedArray;
  shape: number[];
  dtype: string;
}

interface DtypeInfo {
  name: string;
  bytes: number;
  /** Copies `count` elements starting at a byte offset of an (aligned, copied) buffer. */
  read: (buffer: ArrayBuffer, count: number) => NpyTypedArray;
}

const DTYPES: Record<string, DtypeInfo> = {
  "<f4": { name: "float32", bytes: 4, read: (b, n) => new Float32Array(b, 0, n) },
  "<f8": { name: "float64", bytes: 8, read: (b, n) => new Float64Array(b, 0, n) },
  "|u1": { name: "uint8", bytes: 1, read: (b, n) => new Uint8Array(b, 0, n) },
  "|i1": { name: "int8", bytes: 1, read: (b, n) => new Int8Array(b, 0, n) },
  "<i2": { name: "int16", bytes: 2, read: (b, n) => new Int16Array(b, 0, n) },
  "<u2": { name: "uint16", bytes: 2, read: (b, n) => new Uint16Array(b, 0, n) },
  "<i4": { name: "int32", bytes: 4, read: (b, n) => new Int32Array(b, 0, n) },
  "<u4": { name: "uint32", bytes: 4, read: (b, n) => new Uint32Array(b, 0, n) },
  "|b1": { name: "bool", bytes: 1, read: (b, n) => new Uint8Array(b, 0, n) },
  // tfjs has no 64-bit integers: values are narrowed to int32 and must fit.
  "<i8": { name: "int64", bytes: 8, read: (b, n) => narrowInt64(b, n) },
};

/** Single-byte types may also be written with "=" or "<" by some writers. */
const ALIASES: Record<string, string> = { "<u1": "|u1", "=u1": "|u1", "<i1": "|i1", "=i1": "|i1", "<b1": "|b1", "=b1": "|b1" };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

class Int64RangeError extends Error {}

function narrowInt64(buffer: ArrayBuffer, count: number): Int32Array {
  const wide = new BigInt64Array(buffer, 0, count);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = wide[i];
    if (v > 2147483647n || v < -2147483648n) throw new Int64RangeError(`int64 value ${v} at flat index ${i} does not fit in int32`);
    out[i] = Number(v);
  }
  return out;
}

/** The fixed part before the header (magic, version, header length): where the header and the data start. */
function fixedPart(buffer: Uint8Array, fail: (why: string) => Error): { major: number; headerStart: number; dataStart: number } {
  if (buffer.length < 10 || MAGIC.some((b, i) => buffer[i] !== b)) throw fail("not a .npy file (missing the \\x93NUMPY magic string)");
  const major = buffer[6];
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (major === 1) return { major, headerStart: 10, dataStart: 10 + view.getUint16(8, true) };
  if (major === 2 || major === 3) {
    if (buffer.length < 12) throw fail(`truncated: expected at least 12 bytes, got ${buffer.length}`);
    return { major, headerStart: 12, dataStart: 12 + view.getUint32(8, true) };
  }
  throw fail(`unsupported .npy format version ${major}.${buffer[7]} (expected 1.0, 2.0 or 3.0)`);
}

/** What a .npy header says: where the data starts, its type, shape and size in bytes. */
interface NpyLayout {
  dataStart: number;
  info: DtypeInfo;
  shape: number[];
  count: number;
  bytes: number;
}

/**
 * Reads the header at the start of `buffer` (at least the header's bytes); the
 * file is `fileLength` bytes long. `fail` makes an error naming the file.
 */
function parseHeader(buffer: Uint8Array, fileLength: number, fail: (why: string) => Error): NpyLayout {
  const { major, headerStart, dataStart } = fixedPart(buffer, fail);
  const headerLength = dataStart - headerStart;
  if (buffer.length < dataStart) throw fail(`truncated: expected ${dataStart} bytes of header, got ${buffer.length}`);
  const header = Buffer.from(buffer.buffer, buffer.byteOffset + headerStart, headerLength).toString(major === 3 ? "utf8" : "latin1");

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  if (descr === undefined) throw fail(`unsupported dtype (structured or missing 'descr') in header ${header.trim()}`);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  if (fortran === undefined) throw fail(`malformed header (no fortran_order): ${header.trim()}`);
  if (fortran === "True") throw fail("fortran_order is True: only C-order arrays are supported (save with np.ascontiguousarray(x))");
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) throw fail(`malformed header (no shape): ${header.trim()}`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => Number(s.replace(/L$/, "")));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw fail(`malformed shape (${shapeText})`);

  const info = DTYPES[ALIASES[descr] ?? descr];
  if (info === undefined) {
    const why = descr.startsWith(">") ? "big-endian data is not supported (convert with x.astype(x.dtype.newbyteorder('<')))" : "unsupported dtype";
    throw fail(`${why}: '${descr}' (supported: ${Object.keys(DTYPES).join(" ")})`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = count * info.bytes;
  const actual = fileLength - dataStart;
  if (actual < bytes) {
    throw fail(`truncated: shape [${shape.join(", ")}] ${descr} needs ${bytes} data bytes, the file has ${actual}`);
  }
  return { dataStart, info, shape, count, bytes };
}

/** The array over `data`: exactly the data's bytes, at the start of their own (so aligned) buffer. */
function decode(layout: NpyLayout, data: ArrayBuffer, fail: (why: string) => Error): Npy {
  try {
    return { data: layout.info.read(data, layout.count), shape: layout.shape, dtype: layout.info.name };
  } catch (err) {
    if (err instanceof Int64RangeError) throw fail(err.message);
    throw err;
  }
}

/** Parses the bytes of a .npy file. `source` names the file in error messages. */
export function parseNpy(buffer: Uint8Array, source = "<npy buffer>"): Npy {
  const fail = (why: string) => new Error(`${source}: ${why}`);
  const layout = parseHeader(buffer, buffer.length, fail);
  // Copy: the data may be unaligned for its element size, and this detaches it from the file buffer.
  const start = buffer.byteOffset + layout.dataStart;
  return decode(layout, buffer.buffer.slice(start, start + layout.bytes) as ArrayBuffer, fail);
}

/**
 * Reads a .npy file. The data goes straight from the file into its own
 * buffer: reading the whole file first held the data twice (MobileNetV2's 256
 * photos: 2 × 154 MB) until the file's buffer was collected.
 */
export function readNpy(path: string): Npy {
  const fail = (why: string) => new Error(`${path}: ${why}`);
  let fd: number;
  try {
    fd = fs.openSync(path, "r");
  } catch (err) {
    throw new Error(`cannot read .npy file ${path}: ${(err as Error).message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const readInto = (target: Uint8Array, position: number): Uint8Array => {
      let done = 0;
      while (done < target.length) {
        const n = fs.readSync(fd, target, done, target.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
      return target.subarray(0, done);
    };
    // The fixed part (10 or 12 bytes) gives the header's length; then read exactly the header, then the data.
    const { dataStart } = fixedPart(readInto(new Uint8Array(Math.min(size, 12)), 0), fail);
    const layout = parseHeader(readInto(new Uint8Array(Math.min(size, dataStart)), 0), size, fail);
    const data = new ArrayBuffer(layout.bytes);
    readInto(new Uint8Array(data), layout.dataStart);
    return decode(layout, data, fail);
  } finally {
    fs.closeSync(fd);
  }
}

/** Data types `encodeNpy` writes. */
export type NpyWritable = Float32Array | Int32Array | Uint8Array;

function descrOf(data: NpyWritable): string {
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Int32Array) return "<i4";
  if (data instanceof Uint8Array) return "|u1";
  throw new Error("encodeNpy: expected a Float32Array, Int32Array or Uint8Array");
}

/** Encodes a C-order array as a version 1.0 .npy file (version 2.0 for headers beyond 64 KiB). */
export function encodeNpy(data: NpyWritable, shape: number[]): Buffer {
  const descr = descrOf(data);
  const count = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`encodeNpy: invalid shape [${shape.join(", ")}]`);
  if (count !== data.length) throw new Error(`encodeNpy: shape [${shape.join(", ")}] has ${count} elements, data has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // The header (magic + version + length + dict + padding + "\n") is padded to a multiple of 64 bytes.
  let prefix = 10;
  let major = 1;
  if (dict.length + 1 + prefix > 0xffff) {
    prefix = 12;
    major = 2;
  }
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const headerText = dict.padEnd(total - prefix - 1, " ") + "\n";
  const out = Buffer.alloc(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  if (major === 1) out.writeUInt16LE(headerText.length, 8);
  else out.writeUInt32LE(headerText.length, 8);
  out.write(headerText, prefix, "latin1");
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

export function writeNpy(path: string, data: NpyWritable, shape: number[]): void {
  fs.writeFileSync(path, encodeNpy(data, shape));
}

/**
 * The tfjs dtype a .npy dtype maps to: floats → float32 (float64 is narrowed),
 * integers → int32 (uint32 values must fit), bool → bool.
 */
export function tfDtypeOf(npyDtype: string): "float32" | "int32" | "bool" {
  if (npyDtype === "float32" || npyDtype === "float64") return "float32";
  if (npyDtype === "bool") return "bool";
  return "int32";
}

/** The data of `npy` as a typed array tfjs accepts for `tfDtypeOf(npy.dtype)`. */
export function npyToTfData(npy: Npy): Float32Array | Int32Array | Uint8Array {
  const dtype = tfDtypeOf(npy.dtype);
  if (dtype === "float32") return npy.data instanceof Float32Array ? npy.data : Float32Array.from(npy.data);
  if (dtype === "bool") return npy.data as Uint8Array;
  if (npy.data instanceof Int32Array) return npy.data;
  if (npy.data instanceof Uint32Array) {
    const i = npy.data.findIndex((v) => v > 2147483647);
    if (i >= 0) throw new Error(`uint32 value ${npy.data[i]} at flat index ${i} does not fit in int32`);
  }
  return Int32Array.from(npy.data);
}

/** A tensor of the .npy data: floats → float32, integer types → int32, bool → bool. */
export function npyToTensor(npy: Npy): tf.Tensor {
  return tf.tensor(npyToTfData(npy), npy.shape, tfDtypeOf(npy.dtype));
}
