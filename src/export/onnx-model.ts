import * as fs from "fs";
import * as path from "path";
import { bakedSimulation } from "../engine/onnx/baked-sim";
import { lowerGraph } from "../engine/onnx/lower-graph";
import { exportEncodings } from "../quant/aimet-encodings";
import { QuantSim } from "../quant/quantsim";

export interface OnnxExportResult {
  modelOnnx: string;
  /** Null when left out (`encodings: false`). */
  encodingsJson: string | null;
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
export function exportOnnxModel(sim: QuantSim, outDir: string, options: { name?: string; encodings?: boolean } = {}): OnnxExportResult {
  const { quantizers, paramSource, qdq, floatCodes, weights } = bakedSimulation(sim, "exportOnnxModel");
  const lowered = lowerGraph(sim.graph, { quantizers, paramSource });
  const base = options.name ?? "model";
  const modelOnnx = path.join(outDir, `${base}.onnx`);
  const encodingsJson = path.join(outDir, `${base}.encodings.json`);
  const files: [string, string | Uint8Array][] = [[modelOnnx, lowered.bytes]];
  // Callers that already write AIMET's encodings (the TF.js export beside it) can leave them out.
  if (options.encodings !== false) files.push([encodingsJson, `${JSON.stringify(exportEncodings(sim), null, 2)}\n`]);
  fs.mkdirSync(outDir, { recursive: true });
  // Temporary names first, renamed once every file is complete.
  const tmp = files.map(([file]) => `${file}.tmp-${process.pid}`);
  try {
    files.forEach(([, bytes], i) => fs.writeFileSync(tmp[i], bytes));
    files.forEach(([file], i) => fs.renameSync(tmp[i], file));
  } finally {
    for (const t of tmp) fs.rmSync(t, { force: true });
  }
  return { modelOnnx, encodingsJson: options.encodings !== false ? encodingsJson : null, qdq, floatCodes, weights };
}
