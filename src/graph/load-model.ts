import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { ensureBackend } from "../backend";
import { readJsonFile } from "../json-file";
import { Graph } from "./graph";
import { importLayersModel } from "./import-layers";
import { GraphModelImportOptions, importGraphModel } from "./tf-graph/import-graph-model";
import { GraphModelJson, graphModelFromJson } from "./tf-graph/read-graph-model";
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

/** Options of `loadGraph`; they apply to graph models (a layers model has no cut points or open sizes to fill). */
export type LoadGraphOptions = GraphModelImportOptions;

/**
 * Loads `model.json` (and shards) and imports it as a graph; the tfjs model is
 * freed. The format is detected: a layers model, or a graph model
 * (`"format": "graph-model"`, tfjs-converter's output), which can be cut at
 * `outputs` (TF tensor names) before control flow it has.
 */
export async function loadGraph(source: string | tf.LayersModel | tf.GraphModel, options: LoadGraphOptions = {}): Promise<Graph> {
  await ensureBackend();
  if (source instanceof tf.GraphModel) return importGraphModel(source, options);
  if (typeof source !== "string") return importLayersModel(source);
  const file = modelFile(path.resolve(source));
  const json = readJsonFile(file, "model file") as GraphModelJson | null;
  if (json !== null && typeof json === "object" && isGraphModel(json)) {
    const model = await graphModelFromJson(file, json);
    try {
      return importGraphModel(model, { ...options, name: options.name ?? modelName(file) });
    } finally {
      model.dispose();
    }
  }
  if (options.outputs || options.inputShapes || options.inputs) throw new Error(`${file} is a layers model: the outputs, inputs and inputShapes options apply to graph models only`);
  const model = await loadLayersModelFromFile(source);
  try {
    return importLayersModel(model);
  } finally {
    model.dispose();
  }
}

/** Reads a graph model from disk as a tf.GraphModel (the caller disposes it): for comparing against `GraphModel.execute`. */
export async function loadGraphModelFromFile(modelPath: string): Promise<tf.GraphModel> {
  await ensureBackend();
  const file = modelFile(path.resolve(modelPath));
  const json = readJsonFile(file, "model file") as GraphModelJson | null;
  if (json === null || typeof json !== "object" || !isGraphModel(json)) throw new Error(`${file} is not a TF.js graph model (no "format": "graph-model")`);
  return graphModelFromJson(file, json);
}

/** Whether the model file (or folder) at `modelPath` holds a TF.js graph model rather than a layers model. */
export function isGraphModelFile(modelPath: string): boolean {
  const json = readJsonFile(modelFile(path.resolve(modelPath)), "model file") as GraphModelJson | null;
  return json !== null && typeof json === "object" && isGraphModel(json);
}

/** "blazeface" for blazeface.json, the folder's name for a model.json. */
function modelName(file: string): string {
  const base = path.basename(file, ".json");
  return base === "model" ? path.basename(path.dirname(file)) : base;
}

/** tfjs-converter writes format "graph-model"; older converters left it out but wrote a GraphDef (a node list). */
function isGraphModel(json: GraphModelJson): boolean {
  return json.format === "graph-model" || (json.format === undefined && Array.isArray(json.modelTopology?.node));
}

/** The model.json a path names (a folder means the model.json inside it). */
function modelFile(file: string): string {
  if (!fs.existsSync(file)) throw new Error(`model file not found: ${file}`);
  if (fs.statSync(file).isDirectory()) {
    const inside = path.join(file, "model.json");
    if (fs.existsSync(inside)) return inside;
    throw new Error(`${file} is a folder without a model.json`);
  }
  return file;
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
    throw new Error(`${file} is a TF.js graph model: load it with loadGraph (or loadGraphModelFromFile for the tf.GraphModel itself)`);
  }
  if (json.weightsManifest !== undefined && !Array.isArray(json.weightsManifest)) {
    throw new Error(`corrupt model.json: ${file} has a weightsManifest that is not a list`);
  }
  return { file, json };
}
