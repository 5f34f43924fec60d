import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";

/** One group of a model.json's weightsManifest. */
export interface ManifestGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** Bytes one manifest entry takes in the shards, honouring TF.js weight quantization. */
export function weightByteLength(w: tf.io.WeightsManifestEntry): number {
  const count = w.shape.reduce((a, b) => a * b, 1);
  const dtype = w.quantization?.dtype ?? w.dtype;
  const size = BYTES[dtype];
  if (size === undefined) throw new Error(`weight "${w.name}" has dtype ${dtype}, which qdebug cannot read`);
  return count * size;
}

/**
 * Reads the weight shards a manifest lists, confined to the model's folder: every
 * path is checked (relative, no "..", a regular file inside the folder after
 * following links, the sizes the manifest describes) before any shard is read,
 * so a model.json cannot make us read /etc/passwd, block on /dev/zero or a fifo,
 * or report the size of a file outside its folder.
 */
export function readWeightShards(modelFile: string, manifest: readonly ManifestGroup[]): Buffer {
  const folder = fs.realpathSync(path.dirname(modelFile));
  const shards: { file: string; size: number }[] = [];
  let expected = 0;
  let found = 0;
  for (const group of manifest) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) throw new Error(`corrupt model.json: ${modelFile} has a weightsManifest group without paths and weights lists`);
    expected += group.weights.reduce((sum, w) => sum + weightByteLength(w), 0);
    for (const shard of group.paths) {
      const file = confined(modelFile, folder, shard);
      const size = fs.statSync(file).size;
      shards.push({ file, size });
      found += size;
    }
  }
  if (found !== expected) {
    throw new Error(`weight shards of ${modelFile} hold ${found} bytes but the manifest describes ${expected}: a shard is truncated or does not belong to this model`);
  }
  const data = Buffer.alloc(expected);
  let offset = 0;
  for (const { file, size } of shards) {
    // O_NOFOLLOW and a second fstat: the file read is the one checked above, not a swapped-in link or device.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile() || stat.size !== size) throw new Error(`weight shard ${file} changed while it was being read`);
      for (let read = 0; read < size; ) {
        const n = fs.readSync(fd, data, offset + read, size - read, null);
        if (n === 0) throw new Error(`weight shard ${file} ended early`);
        read += n;
      }
      offset += size;
    } finally {
      fs.closeSync(fd);
    }
  }
  return data;
}

/** The checked absolute path of one manifest entry; throws, naming the entry, when it leaves the folder. */
function confined(modelFile: string, folder: string, shard: unknown): string {
  const where = `weight path ${JSON.stringify(shard)} in the weightsManifest of ${modelFile}`;
  if (typeof shard !== "string" || shard === "" || shard.includes("\0")) throw new Error(`invalid ${where}`);
  if (path.isAbsolute(shard) || path.win32.isAbsolute(shard)) throw new Error(`refused ${where}: weight paths must be relative to the model's folder`);
  if (shard.split(/[\\/]/).includes("..")) throw new Error(`refused ${where}: ".." would leave the model's folder`);
  const file = path.join(folder, shard);
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    throw new Error(`missing weight shard: ${file} (listed in the weightsManifest of ${modelFile})`);
  }
  if (!real.startsWith(folder + path.sep)) throw new Error(`refused ${where}: it links outside the model's folder`);
  if (!fs.statSync(real).isFile()) throw new Error(`refused ${where}: not a regular file`);
  return real;
}
