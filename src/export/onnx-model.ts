import * as fs from "fs";
import * as path from "path";
import { lowerGraph, QuantizerLowering } from "../engine/onnx/lower-graph";
import { quantizerFeeds, storageFor } from "../engine/onnx/sim-config";
import { exportEncodings } from "../quant/aimet-encodings";
import { Encoding } from "../quant/encoding";
import { QuantSim } from "../quant/quantsim";

export interface OnnxExportResult {
  modelOnnx: string;
  encodingsJson: string;
  /** Activation quantizers written as QuantizeLinear → DequantizeLinear (8- or 16-bit codes). */
  qdq: string[];
  /** Activation quantizers of wider grids, written as Div → Round → Clip → Mul. */
  floatCodes: string[];
  /** Weights written on their grid (the simulation's quantize-dequantized or frozen values). */
  weights: string[];
}

/**
 * Writes the simulation as an ONNX model a runtime can take on: weights on
 * their grid (exactly the simulation's values, AdaRound's frozen ones
 * included), activation quantizers as QuantizeLinear/DequantizeLinear pairs
 * with constant scale and zero point (Div/Round/Clip/Mul beyond 16 bits),
 * inputs and outputs in the TF.js model's own layout (NHWC); AIMET's
 * encodings.json beside it. Both files appear together or not at all.
 */
export function exportOnnxModel(sim: QuantSim, outDir: string, options: { name?: string } = {}): OnnxExportResult {
  const quantizers = new Map<string, QuantizerLowering>();
  const qdq: string[] = [];
  const floatCodes: string[] = [];
  for (const site of sim.sites) {
    if (site.kind !== "activation") continue;
    const enc = sim.encodingOf(site.name) as Encoding | null;
    if (!enc) continue;
    if (sim.settingsOf(site.name).rounding === "stochastic") {
      throw new Error(`exportOnnxModel: activation quantizer "${site.name}" rounds stochastically, which an ONNX model cannot express`);
    }
    const storage = storageFor(enc);
    const max = storage === "uint8" ? 255 : 65535;
    quantizers.set(site.node, { name: site.name, storage, clip: storage !== "float" && enc.numSteps < max, switchable: false, constants: quantizerFeeds(enc, storage) });
    (storage === "float" ? floatCodes : qdq).push(site.name);
  }
  const weights: string[] = [];
  const byParam = new Map(sim.sites.filter((s) => s.kind !== "activation").map((s) => [`${s.node}/${s.param}`, s.name]));
  const lowered = lowerGraph(sim.graph, {
    quantizers,
    paramSource: (node, key) => {
      const name = byParam.get(`${node.name}/${key}`);
      const q = name ? sim.quantizedParam(name) : undefined;
      if (!q) return { kind: "constant" };
      weights.push(name!);
      return { kind: "constant", data: q.dataSync() as Float32Array };
    },
  });
  const base = options.name ?? "model";
  const modelOnnx = path.join(outDir, `${base}.onnx`);
  const encodingsJson = path.join(outDir, `${base}.encodings.json`);
  fs.mkdirSync(outDir, { recursive: true });
  // Temporary names first, renamed once both are complete.
  const tmp = [`${modelOnnx}.tmp-${process.pid}`, `${encodingsJson}.tmp-${process.pid}`];
  try {
    fs.writeFileSync(tmp[0], lowered.bytes);
    fs.writeFileSync(tmp[1], `${JSON.stringify(exportEncodings(sim), null, 2)}\n`);
    fs.renameSync(tmp[0], modelOnnx);
    fs.renameSync(tmp[1], encodingsJson);
  } finally {
    for (const t of tmp) fs.rmSync(t, { force: true });
  }
  return { modelOnnx, encodingsJson, qdq, floatCodes, weights };
}
