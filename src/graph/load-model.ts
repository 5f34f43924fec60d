import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { ensureBackend } from "../backend";
import { readJsonFile } from "../json-file";
import { Graph } from "./graph";
import { importLayersModel } from "./import-layers";
import { ManifestGroup, readWeightShards } from "./weight-files";

/** The parts of a TF.js `model.json` we read. */
interface ModelJson {
  format?: string;
  modelTopology?: unknown;
  weightsManifest?: ManifestGroup[];
}

/**
 * Reads a TF.js layers model from disk: `model.json` and the weight shards its
 * manifest lists, confined to the same folder (see weight-files.ts). No network,
 * no fetch: every failure names the file or weight at fault, and a failed load
 * frees every tensor it made.
 */
export async function loadLayersModelFromFile(modelPath: string): Promise<tf.LayersModel> {
  await ensureBackend();
  const { file, json } = readModelJson(path.resolve(modelPath));
  const manifest = json.weightsManifest ?? [];
  const data = readWeightShards(file, manifest);
  const specs = manifest.flatMap((g) => g.weights);
  const model = await buildModel(file, json.modelTopology);
  let decoded: tf.NamedTensorMap | undefined;
  try {
    checkWeights(file, model, specs);
    decoded = tf.io.decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength), specs);
    const modelWeights: tf.NamedTensorMap = {};
    for (const spec of specs) if (spec.group !== "optimizer") modelWeights[spec.name] = decoded[spec.name];
    model.loadWeights(modelWeights, true);
    return model;
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    if (decoded) tf.dispose(Object.values(decoded));
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

/**
 * The model from its topology alone. TF.js leaves the variables of the layers it
 * built before a failure (an unknown layer) registered, so those are disposed here.
 */
async function buildModel(file: string, topology: unknown): Promise<tf.LayersModel> {
  const registered = () => tf.engine().state.registeredVariables;
  const before = new Set(Object.keys(registered()));
  try {
    return await tf.models.modelFromJSON({ modelTopology: topology } as Parameters<typeof tf.models.modelFromJSON>[0]);
  } catch (err) {
    for (const [name, v] of Object.entries(registered())) if (!before.has(name)) v.dispose();
    const message = (err as Error).message;
    const unknown = /Unknown layer: (\w+)/.exec(message);
    if (unknown) throw new Error(`${file}: layer class ${unknown[1]} is unknown to TensorFlow.js (a custom layer?), so the model cannot be built`);
    throw new Error(`${file}: TensorFlow.js could not build the model: ${message}`);
  }
}

/** Checks the manifest against the model's variables before any tensor is decoded, naming the first weight that does not fit. */
function checkWeights(file: string, model: tf.LayersModel, specs: readonly tf.io.WeightsManifestEntry[]): void {
  const variables = new Map(model.weights.map((w) => [w.originalName, w]));
  const unset = new Set(variables.keys());
  for (const spec of specs) {
    if (spec.group === "optimizer") continue;
    // TF.js's own fallback for nested models saved with an extra scope: "outer/inner/kernel" → "outer/kernel".
    const tokens = spec.name.split("/");
    const name = variables.has(spec.name) ? spec.name : [...tokens.slice(0, -2), tokens[tokens.length - 1]].join("/");
    const v = variables.get(name);
    if (!v) throw new Error(`${file}: the manifest's weight "${spec.name}" has no variable in the model`);
    if (spec.dtype !== v.dtype) throw new Error(`${file}: weight "${spec.name}" is ${spec.dtype} in the manifest but the model's variable is ${v.dtype}`);
    if (spec.shape.join(",") !== v.shape.join(",")) throw new Error(`${file}: weight "${spec.name}" has shape [${spec.shape.join(", ")}] in the manifest but [${v.shape.join(", ")}] in the model`);
    unset.delete(name);
  }
  if (unset.size) throw new Error(`${file}: ${unset.size} of ${variables.size} weights are missing from the manifest: ${[...unset].slice(0, 5).join(", ")}${unset.size > 5 ? ", …" : ""}`);
}

function readModelJson(file: string): { file: string; json: ModelJson } {
  if (!fs.existsSync(file)) throw new Error(`model file not found: ${file}`);
  if (fs.statSync(file).isDirectory()) {
    const inside = path.join(file, "model.json");
    if (fs.existsSync(inside)) return readModelJson(inside);
    throw new Error(`${file} is a folder without a model.json`);
  }
  const json = readJsonFile(file, "model file") as ModelJson;
  if (json === null || typeof json !== "object" || !json.modelTopology) {
    throw new Error(`corrupt model.json: ${file} has no modelTopology, so it is not a TF.js layers model`);
  }
  if (json.format === "graph-model") {
    throw new Error(`${file} is a TF.js graph model; qdebug needs a layers model (format "layers-model")`);
  }
  if (json.weightsManifest !== undefined && !Array.isArray(json.weightsManifest)) {
    throw new Error(`corrupt model.json: ${file} has a weightsManifest that is not a list`);
  }
  return { file, json };
}
