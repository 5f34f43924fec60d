import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { ensureBackend } from "../backend";
import { Graph } from "./graph";
import { importLayersModel } from "./import-layers";

/** The parts of a TF.js `model.json` we read. */
interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology?: unknown;
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/**
 * Reads a TF.js layers model from disk: `model.json` and the weight shards its
 * manifest lists, from the same folder. No network, no fetch: every failure names
 * the file at fault (missing, corrupt, wrong format, short or missing shard).
 */
export async function loadLayersModelFromFile(modelPath: string): Promise<tf.LayersModel> {
  await ensureBackend();
  const file = path.resolve(modelPath);
  const json = readModelJson(file);
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) {
      const shardPath = path.resolve(path.dirname(file), shard);
      if (!fs.existsSync(shardPath)) {
        throw new Error(`missing weight shard: ${shardPath} (listed in the weightsManifest of ${file})`);
      }
      shards.push(fs.readFileSync(shardPath));
    }
  }
  const data = Buffer.concat(shards);
  const expected = weightSpecs.reduce((sum, w) => sum + weightByteLength(w), 0);
  if (data.byteLength !== expected) {
    throw new Error(`weight shards of ${file} hold ${data.byteLength} bytes but the manifest describes ${expected}: a shard is truncated or does not belong to this model`);
  }
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology as tf.io.ModelArtifacts["modelTopology"],
        weightSpecs,
        weightData,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy ?? undefined,
      }),
    );
  } catch (err) {
    const message = (err as Error).message;
    const unknown = /Unknown layer: (\w+)/.exec(message);
    if (unknown) {
      throw new Error(`${file}: layer class ${unknown[1]} is unknown to TensorFlow.js (a custom layer?), so the model cannot be built`);
    }
    throw new Error(`${file}: TensorFlow.js could not build the model: ${message}`);
  }
}

/** Loads `model.json` (and shards) and imports it as a graph; the tfjs model is freed. */
export async function loadGraph(source: string | tf.LayersModel): Promise<Graph> {
  await ensureBackend();
  if (typeof source !== "string") return importLayersModel(source);
  const model = await loadLayersModelFromFile(source);
  try {
    return importLayersModel(model);
  } finally {
    model.dispose();
  }
}

function readModelJson(file: string): ModelJson {
  if (!fs.existsSync(file)) throw new Error(`model file not found: ${file}`);
  if (fs.statSync(file).isDirectory()) {
    const inside = path.join(file, "model.json");
    if (fs.existsSync(inside)) return readModelJson(inside);
    throw new Error(`${file} is a folder without a model.json`);
  }
  let json: ModelJson;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8")) as ModelJson;
  } catch (err) {
    throw new Error(`corrupt model.json: ${file} is not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== "object" || !json.modelTopology) {
    throw new Error(`corrupt model.json: ${file} has no modelTopology, so it is not a TF.js layers model`);
  }
  if (json.format === "graph-model") {
    throw new Error(`${file} is a TF.js graph model; qdebug needs a layers model (format "layers-model")`);
  }
  if (json.weightsManifest !== undefined && !Array.isArray(json.weightsManifest)) {
    throw new Error(`corrupt model.json: ${file} has a weightsManifest that is not a list`);
  }
  return json;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** Bytes one manifest entry takes in the shards, honouring TF.js weight quantization. */
function weightByteLength(w: tf.io.WeightsManifestEntry): number {
  const count = w.shape.reduce((a, b) => a * b, 1);
  const dtype = w.quantization?.dtype ?? w.dtype;
  const size = BYTES[dtype];
  if (size === undefined) throw new Error(`weight "${w.name}" has dtype ${dtype}, which qdebug cannot read`);
  return count * size;
}
