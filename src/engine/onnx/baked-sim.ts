import { GraphNode } from "../../graph/types";
import { Encoding } from "../../quant/encoding";
import { QuantSim } from "../../quant/quantsim";
import { ParamSource, QuantizerLowering } from "./lower-graph";
import { quantizerFeeds, storageFor } from "./sim-config";

/**
 * A simulation baked into lowering options: its activation quantizers with
 * constant encodings and its weights on their grid as constants, for a session
 * or a file that computes exactly this one configuration.
 */
export function bakedSimulation(sim: QuantSim, what: string): { quantizers: Map<string, QuantizerLowering>; paramSource: (node: GraphNode, key: string) => ParamSource; qdq: string[]; floatCodes: string[]; weights: string[] } {
  const quantizers = new Map<string, QuantizerLowering>();
  const qdq: string[] = [];
  const floatCodes: string[] = [];
  for (const site of sim.sites) {
    if (site.kind !== "activation") continue;
    const enc = sim.encodingOf(site.name) as Encoding | null;
    if (!enc) continue;
    if (sim.settingsOf(site.name).rounding === "stochastic") {
      throw new Error(`${what}: activation quantizer "${site.name}" rounds stochastically, which ONNX cannot express`);
    }
    const storage = storageFor(enc);
    const max = storage === "uint8" ? 255 : 65535;
    quantizers.set(site.node, { name: site.name, storage, clip: storage !== "float" && enc.numSteps < max, switchable: false, constants: quantizerFeeds(enc, storage) });
    (storage === "float" ? floatCodes : qdq).push(site.name);
  }
  const weights: string[] = [];
  const byParam = new Map(sim.sites.filter((s) => s.kind !== "activation").map((s) => [`${s.node}/${s.param}`, s.name]));
  const paramSource = (node: GraphNode, key: string): ParamSource => {
    const name = byParam.get(`${node.name}/${key}`);
    const q = name ? sim.quantizedParam(name) : undefined;
    if (!q) return { kind: "constant" };
    weights.push(name!);
    return { kind: "constant", data: q.dataSync() as Float32Array };
  };
  return { quantizers, paramSource, qdq, floatCodes, weights };
}
