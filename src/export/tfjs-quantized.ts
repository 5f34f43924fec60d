import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { ensureBackend } from "../backend";
import { Graph } from "../graph/graph";
import { importLayersModel } from "../graph/import-layers";
import { exportEncodings } from "../quant/aimet-encodings";
import { computeEncoding, Encoding, roundHalfEven } from "../quant/encoding";
import { fakeQuant } from "../quant/fake-quant";
import { QuantizerSite } from "../quant/placement";
import { QuantSim } from "../quant/quantsim";
import { checkTopology, diffGraphs, rewriteTopology } from "./keras-topology";

export interface ExportOptions {
  /**
   * Storage of weights quantized to 8 bits or fewer: "uint8" (default) or
   * "uint16". Grids of 9 to 16 bits are always stored as uint16, wider ones as float32.
   */
  dtype?: "uint8" | "uint16";
  /**
   * Per-channel weights, which TF.js's one scale and min per tensor cannot hold:
   * "float32" (default) stores the simulation's values exactly, 4 bytes each;
   * "requantize" puts them on one per-tensor grid of the same bit-width (small,
   * but no longer what the simulation computed: see `weights[].maxError`).
   */
  perChannel?: "float32" | "requantize";
}

/** How one weight of the model was written. */
export interface ExportedWeight {
  /** The Keras weight name, "<layer>/<param>" ("Conv1/kernel"). */
  name: string;
  /** The simulation's quantizer of this weight ("Conv1.kernel"), or null when it has none. */
  quantizer: string | null;
  /** How the values are stored in the .bin file. */
  dtype: "uint8" | "uint16" | "float32";
  /** TF.js's dequantization: value = q * scale + min (quantized dtypes only). */
  scale?: number;
  min?: number;
  /** Bit-width of the grid written (quantized dtypes only). */
  bitwidth?: number;
  /** True when the values TF.js decodes are exactly the ones the simulation computes with. */
  exactGrid: boolean;
  /** Largest |decoded value − simulation's value| (0 when exactGrid). */
  maxError: number;
  /** Why a quantized weight is not on a uint8/uint16 grid, or not exact. */
  reason?: string;
  bytes: number;
}

export interface ExportResult {
  /** Paths of the files written. */
  modelJson: string;
  weightsFiles: string[];
  encodings: string;
  /** One row per weight of the exported model, in layer order. */
  weights: ExportedWeight[];
  /** Size of the weights if all were float32, and as written. */
  bytes: { float32: number; quantized: number };
  /** Topology edits relative to the source model (folded BatchNorms dropped, use_bias, ReLU max_value). */
  topologyChanges: string[];
  /** What the layers model cannot hold and where it is instead (activation quantizers: encodings.json). */
  notes: string[];
}

const WEIGHTS_FILE = "weights.bin";

/**
 * Exports a simulation as a TF.js layers model whose weights are the
 * simulation's quantized weights, stored in TF.js's own quantized weight format
 * (manifest entries with `quantization: { dtype: "uint8" | "uint16", scale, min }`,
 * decoded by TF.js as q * scale + min), plus the AIMET encodings file:
 *   1. read the source topology (model.json's modelTopology, or `model.toJSON()`);
 *   2. compare the graph imported from it with the simulation's graph and rewrite
 *      the topology to match (folded BatchNorms dropped and their consumers
 *      rewired, use_bias set, ReLU max_value changed by CLE); anything else that
 *      differs is an error naming the layer;
 *   3. encode each weight: a per-tensor grid of ≤ 16 bits as q = round(w/Δ) − offset
 *      with scale Δ (as float32) and min offset·Δ, checked to decode to exactly the
 *      simulation's value; frozen (AdaRound) weights as they are; per-channel or
 *      disabled quantizers and wider grids as float32 holding the simulation's
 *      values (said in `weights[].reason`); biases float32 unless a bias quantizer is enabled;
 *   4. check the rewritten topology builds and wants exactly these weights;
 *   5. write model.json, weights.bin and encodings.json into `outDir`.
 * Activation quantizers cannot live in a layers model: the exported model computes
 * activations in float32, and their encodings are in encodings.json (for a runtime
 * that quantizes activations). Weights quantized with stochastic rounding are
 * refused: freeze them first (`withFrozenWeights`).
 */
export async function exportQuantizedModel(
  sim: QuantSim,
  source: string | tf.LayersModel,
  outDir: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  await ensureBackend();
  const dtype = options.dtype ?? "uint8";
  if (dtype !== "uint8" && dtype !== "uint16") throw new Error(`exportQuantizedModel: dtype must be "uint8" or "uint16", got ${JSON.stringify(dtype)}`);
  const perChannel = options.perChannel ?? "float32";
  if (perChannel !== "float32" && perChannel !== "requantize") {
    throw new Error(`exportQuantizedModel: perChannel must be "float32" or "requantize", got ${JSON.stringify(perChannel)}`);
  }
  // 1-2. Topology.
  const topology = typeof source === "string" ? readTopology(source) : (source.toJSON(null, false) as unknown as Record<string, unknown>);
  checkTopology(topology);
  const sourceGraph = typeof source === "string" ? await graphOfTopology(topology, source) : importLayersModel(source);
  let rewrite;
  try {
    rewrite = rewriteTopology(topology, sim.graph, diffGraphs(sourceGraph, sim.graph));
  } finally {
    sourceGraph.dispose();
  }

  // 3. Weights. A shared layer's later calls must hold what its first call holds.
  const encodings = exportEncodings(sim); // fails now, not after writing, if activations need calibration
  const sites = new Map(sim.sites.map((s) => [s.name, s]));
  const written = new Map<string, EncodedWeight>();
  for (const node of sim.graph.nodes) {
    if (node.op === "input") continue;
    const layer = rewrite.layerOfNode.get(node.name)!;
    for (const param of Object.keys(node.params)) {
      const name = `${layer}/${param}`;
      const encoded = encodeWeight(sim, node.name, param, sites.get(`${node.name}.${param}`), { dtype, perChannel });
      const first = written.get(name);
      if (!first) {
        written.set(name, { ...encoded, info: { ...encoded.info, name }, spec: { ...encoded.spec, name } });
      } else if (!sameWeight(first, encoded)) {
        throw new Error(`layer "${layer}" is shared by several calls, and its weight "${param}" is quantized differently in call "${node.name}": a layers model holds one copy of a shared layer's weights`);
      }
    }
  }

  // 4. The rewritten topology must build and want exactly these weights.
  await checkWeightsMatch(rewrite.topology, written);

  // 5. Files; the folder is made only now, so a refused export leaves nothing behind.
  const dir = prepareOutDir(outDir);
  const entries = [...written.values()];
  const bin = Buffer.concat(entries.map((e) => e.data));
  const modelJson = path.join(dir, "model.json");
  const weightsPath = path.join(dir, WEIGHTS_FILE);
  const encodingsPath = path.join(dir, "encodings.json");
  const manifest: tf.io.WeightsManifestConfig = [{ paths: [WEIGHTS_FILE], weights: entries.map((e) => e.spec) }];
  writeFile(weightsPath, bin);
  writeFile(
    modelJson,
    JSON.stringify({ format: "layers-model", generatedBy: "qdebug exportQuantizedModel", convertedBy: null, modelTopology: rewrite.topology, weightsManifest: manifest }),
  );
  writeFile(encodingsPath, `${JSON.stringify(encodings, null, 2)}\n`);

  const activations = sim.sites.filter((s) => s.kind === "activation");
  const enabled = activations.filter((s) => sim.encodingOf(s.name) !== null).length;
  return {
    modelJson,
    weightsFiles: [weightsPath],
    encodings: encodingsPath,
    weights: entries.map((e) => e.info),
    bytes: { float32: entries.reduce((s, e) => s + e.count * 4, 0), quantized: bin.byteLength },
    topologyChanges: rewrite.changes,
    notes: [
      `${enabled} of ${activations.length} activation quantizers are enabled; a layers model cannot hold activation quantizers, so the exported model computes activations in float32 and their encodings are in encodings.json`,
    ],
  };
}

interface EncodedWeight {
  info: ExportedWeight;
  spec: tf.io.WeightsManifestEntry;
  data: Buffer;
  count: number;
}

function sameWeight(a: EncodedWeight, b: EncodedWeight): boolean {
  return JSON.stringify(a.spec.quantization ?? null) === JSON.stringify(b.spec.quantization ?? null) && a.data.equals(b.data);
}

/** The values the simulation computes with for one parameter (its quantized weight, or the parameter itself). */
function simulatedValues(sim: QuantSim, site: QuantizerSite | undefined, t: tf.Tensor): { values: Float32Array; enc: Encoding | Encoding[] | null } {
  if (!site) return { values: Float32Array.from(t.dataSync()), enc: null };
  const frozen = sim.frozenWeightOf(site.name);
  const enc = sim.encodingOf(site.name);
  if (frozen) return { values: Float32Array.from(frozen.values), enc };
  if (!enc) return { values: Float32Array.from(t.dataSync()), enc };
  if (sim.settingsOf(site.name).rounding === "stochastic") {
    throw new Error(`weight quantizer "${site.name}" rounds stochastically, and the simulation does not expose its draw: freeze the weights first (sim.withFrozenWeights) or use rounding "nearest"`);
  }
  const values = tf.tidy(() => {
    const x = site.channelShape ? tf.reshape(t, site.channelShape) : t;
    return fakeQuant(x, enc, { axis: site.channelAxis }).dataSync() as Float32Array;
  });
  return { values: Float32Array.from(values), enc };
}

function encodeWeight(
  sim: QuantSim,
  nodeName: string,
  param: string,
  site: QuantizerSite | undefined,
  options: { dtype: "uint8" | "uint16"; perChannel: "float32" | "requantize" },
): EncodedWeight {
  const t = sim.graph.node(nodeName).params[param];
  const shape = [...t.shape];
  const { values, enc } = simulatedValues(sim, site, t);
  const quantizer = site ? site.name : null;
  const asFloat = (reason?: string): EncodedWeight => ({
    info: { name: "", quantizer, dtype: "float32", exactGrid: true, maxError: 0, reason, bytes: values.byteLength },
    spec: { name: "", shape, dtype: "float32" },
    data: Buffer.from(values.buffer, values.byteOffset, values.byteLength),
    count: values.length,
  });
  if (!site) return asFloat();
  if (!enc) return asFloat(`quantizer ${site.name} is disabled: float32`);
  const list = Array.isArray(enc) ? enc : [enc];
  const bitwidth = list[0].bitwidth;
  if (bitwidth > 16) return asFloat(`${bitwidth}-bit grid: wider than TF.js's uint16 weights, stored as float32 (exact)`);
  const storage = bitwidth <= 8 ? options.dtype : "uint16";
  const frozen = sim.frozenWeightOf(site.name) ? " (frozen weight)" : "";

  if (list.length === 1) {
    const grid = onGrid(values, list[0], storage);
    if ("offGrid" in grid) return asFloat(`value ${values[grid.offGrid]} at index ${grid.offGrid}${frozen} is not on the ${bitwidth}-bit grid of ${site.name}: stored as float32 (exact)`);
    return quantized(values.length, grid, bitwidth, storage, shape, quantizer, true, 0, frozen ? "frozen weight, exported as frozen" : undefined);
  }
  if (options.perChannel === "float32") {
    return asFloat(`per-channel encoding (${list.length} channels): TF.js weights have one scale and min per tensor, so the simulation's values are stored as float32 (exact grid, 4 bytes a value); perChannel: "requantize" stores them on one ${bitwidth}-bit grid instead`);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const perTensor = computeEncoding(lo, hi, bitwidth, list[0].scheme);
  const grid = onGrid(values, perTensor, storage, true) as Grid;
  let maxError = 0;
  values.forEach((v, i) => {
    maxError = Math.max(maxError, Math.abs(Math.fround(grid.codes[i] * grid.scale + grid.min) - v));
  });
  return quantized(
    values.length,
    grid,
    bitwidth,
    storage,
    shape,
    quantizer,
    maxError === 0,
    maxError,
    `per-channel encoding (${list.length} channels) requantized to one per-tensor ${bitwidth}-bit grid (perChannel: "requantize"): values move by up to ${maxError.toPrecision(3)} from the simulation's`,
  );
}

interface Grid {
  codes: Uint8Array | Uint16Array;
  scale: number;
  min: number;
}

/**
 * Codes q with q * scale + min (TF.js's float64 arithmetic, stored as float32)
 * equal to each value: scale = Δ as float32 and min = offset · scale, so
 * q · scale + min = (q + offset) · scale exactly, the simulation's Δ·(q + offset).
 * With `round`, values off the grid are rounded to it (clamped) instead of refused.
 */
function onGrid(values: Float32Array, enc: Encoding, storage: "uint8" | "uint16", round = false): Grid | { offGrid: number } {
  const scale = Math.fround(enc.scale);
  const min = enc.offset * scale;
  const codes = storage === "uint8" ? new Uint8Array(values.length) : new Uint16Array(values.length);
  const top = Math.min(enc.numSteps, storage === "uint8" ? 255 : 65535);
  for (let i = 0; i < values.length; i++) {
    let q = roundHalfEven(Math.fround(values[i] / scale)) - enc.offset;
    if (round) q = Math.min(top, Math.max(0, q));
    if (!round && (q < 0 || q > top || Math.fround(q * scale + min) !== values[i])) return { offGrid: i };
    codes[i] = q;
  }
  return { codes, scale, min };
}

function quantized(
  count: number,
  grid: Grid,
  bitwidth: number,
  storage: "uint8" | "uint16",
  shape: number[],
  quantizer: string | null,
  exactGrid: boolean,
  maxError: number,
  reason: string | undefined,
): EncodedWeight {
  const data = Buffer.from(grid.codes.buffer, grid.codes.byteOffset, grid.codes.byteLength);
  return {
    info: { name: "", quantizer, dtype: storage, scale: grid.scale, min: grid.min, bitwidth, exactGrid, maxError, ...(reason ? { reason } : {}), bytes: data.byteLength },
    spec: { name: "", shape, dtype: "float32", quantization: { dtype: storage, scale: grid.scale, min: grid.min } },
    data,
    count,
  };
}

/** Builds the topology (no weights loaded) and checks it wants exactly the weights written, by name and shape. */
async function checkWeightsMatch(topology: Record<string, unknown>, written: Map<string, EncodedWeight>): Promise<void> {
  let model: tf.LayersModel;
  try {
    model = await buildTopology(topology);
  } catch (err) {
    throw new Error(`the rewritten topology does not build in TensorFlow.js: ${(err as Error).message}`);
  }
  try {
    const wanted = new Map(model.weights.map((v) => [v.originalName, v.shape]));
    for (const [name, shape] of wanted) {
      const w = written.get(name);
      if (!w) throw new Error(`the exported model needs weight "${name}", which the graph does not have`);
      if (w.spec.shape.join(",") !== shape.join(",")) throw new Error(`weight "${name}" has shape [${w.spec.shape.join(", ")}] in the graph, but its layer wants [${shape.join(", ")}]`);
    }
    for (const name of written.keys()) if (!wanted.has(name)) throw new Error(`the graph has weight "${name}", which no layer of the exported model holds`);
  } finally {
    disposeBuilt(model);
  }
}

function prepareOutDir(outDir: string): string {
  const dir = path.resolve(outDir);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    throw new Error(`cannot write the export to ${dir}: ${(err as Error).message}`);
  }
  return dir;
}

function writeFile(file: string, data: string | Buffer): void {
  try {
    fs.writeFileSync(file, data);
  } catch (err) {
    throw new Error(`cannot write ${file}: ${(err as Error).message}`);
  }
}

/** The modelTopology of a model.json (or of a folder's model.json), with errors naming the file. */
function readTopology(source: string): Record<string, unknown> {
  let file = path.resolve(source);
  if (!fs.existsSync(file)) throw new Error(`source model not found: ${file}`);
  if (fs.statSync(file).isDirectory()) file = path.join(file, "model.json");
  let json: { format?: unknown; modelTopology?: unknown };
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8")) as typeof json;
  } catch (err) {
    throw new Error(`cannot read the source model ${file}: ${(err as Error).message}`);
  }
  if (json?.format === "graph-model") throw new Error(`${file} is a TF.js graph model; the export rewrites a layers model's topology`);
  if (!json || typeof json.modelTopology !== "object" || json.modelTopology === null) {
    throw new Error(`the source model ${file} has no modelTopology, so it is not a TF.js layers model`);
  }
  return json.modelTopology as Record<string, unknown>;
}

/** The graph of a topology alone (weights left at their initial values: only the structure is compared). */
async function graphOfTopology(topology: Record<string, unknown>, file: string): Promise<Graph> {
  let model: tf.LayersModel;
  try {
    model = await buildTopology(topology);
  } catch (err) {
    throw new Error(`TensorFlow.js cannot build the source model ${file}: ${(err as Error).message}`);
  }
  try {
    return importLayersModel(model);
  } finally {
    disposeBuilt(model);
  }
}

/** A model built from a topology alone, weights at their initial values. */
function buildTopology(topology: Record<string, unknown>): Promise<tf.LayersModel> {
  return tf.models.modelFromJSON({ modelTopology: topology } as Parameters<typeof tf.models.modelFromJSON>[0]);
}

/**
 * Frees a model built here. tfjs-layers counts one reference per call of a
 * layer and `model.dispose()` drops one, so a shared layer's weights would stay:
 * drop the references of its other calls too.
 */
function disposeBuilt(model: tf.LayersModel): void {
  model.dispose();
  for (const layer of model.layers) for (let call = 1; call < layer.inboundNodes.length; call++) layer.dispose();
}
