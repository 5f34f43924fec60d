import * as tf from "@tensorflow/tfjs";
import { ManifestGroup, readWeightShards } from "../weight-files";

/** The parts of a graph model's model.json we read. */
export interface GraphModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  modelTopology?: { node?: unknown[] };
  weightsManifest?: ManifestGroup[];
  signature?: unknown;
  userDefinedMetadata?: Record<string, unknown>;
  modelInitializer?: unknown;
  initializerSignature?: unknown;
}

/**
 * Loads a graph model (`model.json` with `"format": "graph-model"`) from disk
 * as a tf.GraphModel: the shards its manifest lists are read from the model's
 * folder only (see weight-files.ts), decoded by TF.js itself (uint8/uint16
 * affine and float16 weights included). No network.
 */
export async function graphModelFromJson(file: string, json: GraphModelJson): Promise<tf.GraphModel> {
  if (!Array.isArray(json.modelTopology?.node)) throw new Error(`corrupt model.json: ${file} is a graph model without modelTopology.node`);
  const manifest = json.weightsManifest ?? [];
  const data = readWeightShards(file, manifest);
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts["modelTopology"],
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: manifest.flatMap((g) => g.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
    signature: json.signature as tf.io.ModelArtifacts["signature"],
    userDefinedMetadata: json.userDefinedMetadata as tf.io.ModelArtifacts["userDefinedMetadata"],
    modelInitializer: json.modelInitializer as tf.io.ModelArtifacts["modelInitializer"],
    initializerSignature: json.initializerSignature as tf.io.ModelArtifacts["initializerSignature"],
  };
  try {
    return await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    throw new Error(`${file}: TensorFlow.js could not load the graph model: ${(err as Error).message}`);
  }
}
