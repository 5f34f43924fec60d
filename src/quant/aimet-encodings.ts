import * as fs from "fs";
import { readJsonFile } from "../json-file";
import { Encoding, encodingFromAimet, encodingToAimet, AimetEncoding } from "./encoding";
import { QuantSim } from "./quantsim";
import { SettingsPatch } from "./settings";

/**
 * AIMET's encodings file: `activation_encodings` and `param_encodings`, each
 * mapping a tensor name to a list of encodings (one, or one per channel).
 * Tensor names: an activation is named by the node that produces it
 * ("block_1_add"); a parameter by node and Keras weight name
 * ("block_1_expand/kernel"). Bypassed quantizers are left out, as AIMET does.
 */
export interface AimetEncodingsFile {
  version: string;
  activation_encodings: Record<string, AimetEncoding[]>;
  param_encodings: Record<string, AimetEncoding[]>;
  excluded_layers: string[];
  quantizer_args: Record<string, unknown>;
}

const tensorName = (site: { kind: string; node: string; param?: string }) => (site.kind === "activation" ? site.node : `${site.node}/${site.param}`);

export function exportEncodings(sim: QuantSim): AimetEncodingsFile {
  const file: AimetEncodingsFile = { version: "0.6.1", activation_encodings: {}, param_encodings: {}, excluded_layers: [], quantizer_args: {} };
  for (const q of sim.quantizers()) {
    if (!q.encoding) continue;
    const list = (Array.isArray(q.encoding) ? q.encoding : [q.encoding]).map(encodingToAimet);
    (q.kind === "activation" ? file.activation_encodings : file.param_encodings)[tensorName(q)] = list;
  }
  const w = sim.config.weights ?? {};
  const a = sim.config.activations ?? {};
  file.quantizer_args = {
    param_bw: w.bitwidth ?? 8,
    activation_bw: a.bitwidth ?? 8,
    per_channel_quantization: w.perChannel ?? false,
    quant_scheme: a.rangeMethod ?? "minmax",
    dtype: "int",
  };
  return file;
}

export function writeEncodings(sim: QuantSim, file: string): void {
  fs.writeFileSync(file, `${JSON.stringify(exportEncodings(sim), null, 2)}\n`);
}

/**
 * Reads an AIMET encodings file into fixed encodings for `sim`'s quantizers and
 * returns the new simulation. Settings (bit-width, scheme) follow the file, so
 * the imported simulation computes exactly what the exported one did. Unknown
 * tensor names are an error that names them.
 */
export function importEncodings(sim: QuantSim, source: string | AimetEncodingsFile): QuantSim {
  let file: AimetEncodingsFile;
  if (typeof source === "string") {
    file = readJsonFile(source, "encodings file") as AimetEncodingsFile;
  } else {
    file = source;
  }
  if (!file || typeof file !== "object" || !file.activation_encodings || !file.param_encodings) {
    throw new Error(`not an AIMET encodings file: it needs "activation_encodings" and "param_encodings"`);
  }
  const byTensor = new Map(sim.sites.map((s) => [tensorName(s), s]));
  const fixed = new Map<string, Encoding | Encoding[]>();
  const overrides: Record<string, SettingsPatch> = {};
  for (const [section, entries] of [["activation_encodings", file.activation_encodings], ["param_encodings", file.param_encodings]] as const) {
    for (const [tensor, list] of Object.entries(entries)) {
      const site = byTensor.get(tensor);
      if (!site) throw new Error(`encodings file: ${section} names "${tensor}", which is not a quantized tensor of this model`);
      if (!Array.isArray(list) || list.length === 0) throw new Error(`encodings file: ${section}["${tensor}"] must be a non-empty list`);
      const encs = list.map((e) => encodingFromAimet(e));
      fixed.set(site.name, encs.length === 1 ? encs[0] : encs);
      overrides[site.name] = { bitwidth: encs[0].bitwidth, scheme: encs[0].scheme, perChannel: encs.length > 1, enabled: true };
    }
  }
  // Quantizers absent from the file were bypassed when it was written.
  for (const s of sim.sites) if (!fixed.has(s.name)) overrides[s.name] = { enabled: false };
  return sim.with(overrides).withEncodings(fixed);
}
