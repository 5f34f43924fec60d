import * as fs from "fs";
import { readJsonFile } from "../json-file";
import { Encoding, encodingFromAimet, encodingToAimet, AimetEncoding } from "./encoding";
import { QuantSim } from "./quantsim";
import { DEFAULT_ACTIVATIONS, DEFAULT_WEIGHTS, SettingsPatch } from "./settings";

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
  quantizer_args: AimetQuantizerArgs;
}

/**
 * The file's `quantizer_args`, with the keys and values AIMET writes
 * (`extract_global_quantizer_args` in aimet_common/quantsim.py): the simulation's
 * default weight and activation settings, not its per-quantizer overrides.
 */
export interface AimetQuantizerArgs {
  activation_bitwidth: number;
  param_bitwidth: number;
  dtype: "int";
  /** The weights' scheme, as AIMET's `defaults.params.is_symmetric`. */
  is_symmetric: boolean;
  per_channel_quantization: boolean;
  /** AIMET's QuantScheme name for the activations' range method; "mse" has none in AIMET and is written as is. */
  quant_scheme: "post_training_tf" | "post_training_tf_enhanced" | "post_training_percentile" | "mse";
}

/** Our range methods by AIMET's QuantScheme names: min-max is "tf", the SQNR search is "tf_enhanced". */
const AIMET_QUANT_SCHEME = {
  minmax: "post_training_tf",
  sqnr: "post_training_tf_enhanced",
  percentile: "post_training_percentile",
  mse: "mse",
} as const;

export function quantizerArgs(sim: QuantSim): AimetQuantizerArgs {
  const w = { ...DEFAULT_WEIGHTS, ...sim.config.weights };
  const a = { ...DEFAULT_ACTIVATIONS, ...sim.config.activations };
  return {
    activation_bitwidth: a.bitwidth,
    param_bitwidth: w.bitwidth,
    dtype: "int",
    is_symmetric: w.scheme !== "asymmetric",
    per_channel_quantization: w.perChannel,
    quant_scheme: AIMET_QUANT_SCHEME[a.rangeMethod],
  };
}

const tensorName = (site: { kind: string; node: string; param?: string }) => (site.kind === "activation" ? site.node : `${site.node}/${site.param}`);

export function exportEncodings(sim: QuantSim): AimetEncodingsFile {
  const file: AimetEncodingsFile = { version: "0.6.1", activation_encodings: {}, param_encodings: {}, excluded_layers: [], quantizer_args: quantizerArgs(sim) };
  for (const q of sim.quantizers()) {
    if (!q.encoding) continue;
    const list = (Array.isArray(q.encoding) ? q.encoding : [q.encoding]).map(encodingToAimet);
    (q.kind === "activation" ? file.activation_encodings : file.param_encodings)[tensorName(q)] = list;
  }
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
