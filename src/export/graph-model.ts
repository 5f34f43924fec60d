import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { ensureBackend } from "../backend";
import { Graph } from "../graph/graph";
import { loadGraph } from "../graph/load-model";
import { GraphModelJson } from "../graph/tf-graph/read-graph-model";
import { readWeightShards } from "../graph/weight-files";
import { Encoding } from "../quant/encoding";
import { QuantSim } from "../quant/quantsim";

/** How one TF weight of the exported graph model was written. */
export interface ExportedGraphWeight {
  /** The weight's name in the manifest (a Const of the GraphDef). */
  name: string;
  /** The simulation's quantizer that set its values, or null when the weight is written as the source had it. */
  quantizer: string | null;
  dtype: "uint8" | "uint16" | "float32" | "int32";
  scale?: number;
  min?: number;
  /** Why a quantized weight is float32. */
  reason?: string;
}

export interface GraphModelExportResult {
  modelJson: string;
  weightsFile: string;
  weights: ExportedGraphWeight[];
  bytes: { source: number; written: number };
}

const WEIGHTS_FILE = "weights.bin";

/**
 * Writes a simulation of an imported graph model back as a TF.js graph model in
 * tfjs-converter's own weight format, loadable with tf.loadGraphModel:
 *   1. check the simulation's graph still matches the source's import node for
 *      node (same ops, attributes and parameters: CLE, bias correction and
 *      AdaRound change values only; anything else is refused, naming the node);
 *   2. each weight the simulation quantizes per tensor on a grid of at most 16
 *      bits becomes a uint8/uint16 affine record (q * scale + min) that decodes
 *      to exactly the simulation's values; per-channel grids and wider ones are
 *      float32 holding those values (said in `weights[].reason`);
 *   3. every other weight is written as the source stores it, decoded
 *      (float16/uint8 sources become float32);
 *   4. model.json keeps the source's GraphDef and signature.
 * Activation quantizers are not part of a TF.js graph model: the exported model
 * computes activations in float32.
 */
export async function exportGraphModel(sim: QuantSim, source: string, outDir: string): Promise<GraphModelExportResult> {
  await ensureBackend();
  const file = fs.statSync(source).isDirectory() ? path.join(source, "model.json") : source;
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as GraphModelJson;
  if (json.format !== "graph-model") throw new Error(`exportGraphModel: ${file} is not a TF.js graph model`);
  const sourceGraph = await loadGraph(file, graphOptions(sim.graph));
  try {
    checkSameStructure(sourceGraph, sim.graph);
  } finally {
    sourceGraph.dispose();
  }

  // The simulation's value of each TF weight it quantizes.
  const replaced = new Map<string, { values: Float32Array; enc: Encoding | Encoding[]; quantizer: string }>();
  for (const site of sim.sites) {
    if (site.kind === "activation") continue;
    const node = sim.graph.node(site.node);
    const tfName = (node.attrs.weights as Record<string, string> | undefined)?.[site.param!];
    const enc = sim.encodingOf(site.name);
    if (!tfName || !enc) continue;
    const q = sim.quantizedParam(site.name)!;
    const values = tf.tidy(() => (node.attrs.kernelTransposed && site.param === "kernel" ? tf.transpose(q) : q.clone()).dataSync() as Float32Array);
    replaced.set(tfName, { values: Float32Array.from(values), enc, quantizer: site.name });
  }

  const manifest = json.weightsManifest ?? [];
  const data = readWeightShards(file, manifest);
  const specs = manifest.flatMap((g) => g.weights);
  const decoded = tf.io.decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer, specs);
  const parts: Buffer[] = [];
  const entries: tf.io.WeightsManifestEntry[] = [];
  const rows: ExportedGraphWeight[] = [];
  try {
    for (const spec of specs) {
      const value = decoded[spec.name];
      const r = replaced.get(spec.name);
      if (r && r.values.length !== value.size) throw new Error(`exportGraphModel: weight "${spec.name}" has ${value.size} values in the source but ${r.values.length} in the simulation`);
      if (r) {
        const grid = Array.isArray(r.enc) ? undefined : affineRecord(r.values, r.enc);
        if (grid) {
          parts.push(Buffer.from(grid.codes.buffer, grid.codes.byteOffset, grid.codes.byteLength));
          entries.push({ name: spec.name, shape: spec.shape, dtype: "float32", quantization: { dtype: grid.dtype, scale: grid.scale, min: grid.min, original_dtype: "float32" } as tf.io.WeightsManifestEntry["quantization"] });
          rows.push({ name: spec.name, quantizer: r.quantizer, dtype: grid.dtype, scale: grid.scale, min: grid.min });
          continue;
        }
        const reason = Array.isArray(r.enc) ? "per-channel grid: TF.js weights have one scale and min per tensor, so the simulation's values are stored as float32 (exact)" : `${r.enc.bitwidth}-bit grid: stored as float32 (exact)`;
        parts.push(Buffer.from(r.values.buffer, r.values.byteOffset, r.values.byteLength));
        entries.push({ name: spec.name, shape: spec.shape, dtype: "float32" });
        rows.push({ name: spec.name, quantizer: r.quantizer, dtype: "float32", reason });
        continue;
      }
      const dtype = value.dtype === "int32" ? "int32" : "float32";
      const raw = value.dataSync();
      const typed = dtype === "int32" ? Int32Array.from(raw) : Float32Array.from(raw);
      parts.push(Buffer.from(typed.buffer));
      entries.push({ name: spec.name, shape: spec.shape, dtype });
      rows.push({ name: spec.name, quantizer: null, dtype });
    }
  } finally {
    tf.dispose(Object.values(decoded));
  }
  fs.mkdirSync(outDir, { recursive: true });
  const bin = Buffer.concat(parts);
  const weightsFile = path.join(outDir, WEIGHTS_FILE);
  const modelJson = path.join(outDir, "model.json");
  fs.writeFileSync(weightsFile, bin);
  const out = { ...json, generatedBy: json.generatedBy, convertedBy: "qdebug exportGraphModel", weightsManifest: [{ paths: [WEIGHTS_FILE], weights: entries }] };
  fs.writeFileSync(modelJson, JSON.stringify(out));
  return { modelJson, weightsFile, weights: rows, bytes: { source: data.byteLength, written: bin.byteLength } };
}

/** The import options the simulation's graph was made with: its outputs (a cut) and input sizes. */
function graphOptions(graph: Graph) {
  const outputs = graph.outputs.map((o) => graph.node(o).attrs.tfName as string);
  const inputShapes = Object.fromEntries(graph.inputSpecs.map((s) => [s.name, s.shape.map((d) => d ?? 1)]));
  return { outputs, inputShapes };
}

/** The simulation's graph must be the source's import with other weight values only. */
function checkSameStructure(source: Graph, graph: Graph): void {
  const strip = (attrs: Record<string, unknown>) => JSON.stringify({ ...attrs, label: undefined });
  for (const n of graph.nodes) {
    if (!source.has(n.name)) throw new Error(`exportGraphModel: node "${n.name}" is not in the source graph model (the simulation's graph was edited, which a graph model's GraphDef cannot hold)`);
    const s = source.node(n.name);
    if (s.op !== n.op || strip(s.attrs) !== strip(n.attrs)) throw new Error(`exportGraphModel: node "${n.name}" differs from the source graph model (op ${n.op} vs ${s.op}, or its attributes): only weight values can change`);
    const keys = (x: typeof n) => Object.keys(x.params).sort().join(",");
    if (keys(s) !== keys(n)) throw new Error(`exportGraphModel: node "${n.name}" has params [${keys(n)}] but the source has [${keys(s)}]: a graph model cannot gain a weight`);
  }
  if (source.nodes.length !== graph.nodes.length) throw new Error(`exportGraphModel: the simulation's graph has ${graph.nodes.length} nodes, the source ${source.nodes.length}`);
}

/**
 * TF.js's affine record for values on one per-tensor grid: codes q with
 * fround(q * scale + min) equal to each value, trying the grid's step as is and
 * as float32. Undefined when the grid is wider than 16 bits or no record is exact.
 */
function affineRecord(values: Float32Array, enc: Encoding): { dtype: "uint8" | "uint16"; codes: Uint8Array | Uint16Array; scale: number; min: number } | undefined {
  if (enc.bitwidth > 16) return undefined;
  const dtype = enc.bitwidth <= 8 ? "uint8" : "uint16";
  for (const scale of [enc.scale, Math.fround(enc.scale)]) {
    const min = enc.offset * scale;
    const codes = dtype === "uint8" ? new Uint8Array(values.length) : new Uint16Array(values.length);
    let exact = true;
    for (let i = 0; i < values.length && exact; i++) {
      const q = Math.round((values[i] - min) / scale);
      codes[i] = q;
      exact = q >= 0 && q <= enc.numSteps && Math.fround(q * scale + min) === values[i];
    }
    if (exact) return { dtype, codes, scale, min };
  }
  return undefined;
}
