import { QuantSim } from "../quant/quantsim";
import { SettingsPatch } from "../quant/settings";

/** A set of quantizers analysed together: one layer's (per-layer granularity), or one quantizer. */
export interface QuantizerGroup {
  key: string;
  node: string;
  quantizers: string[];
}

export type Granularity = "layer" | "quantizer";

/** Groups the enabled quantizers of `sim` in execution order. */
export function groupQuantizers(sim: QuantSim, granularity: Granularity): QuantizerGroup[] {
  const enabled = sim.sites.filter((s) => sim.settingsOf(s.name).enabled);
  if (enabled.length === 0) throw new Error(`the simulation of "${sim.graph.name}" has nothing to quantize: no quantizer is enabled`);
  if (granularity === "quantizer") return enabled.map((s) => ({ key: s.name, node: s.node, quantizers: [s.name] }));
  const groups: QuantizerGroup[] = [];
  for (const s of enabled) {
    const last = groups[groups.length - 1];
    if (last && last.node === s.node) last.quantizers.push(s.name);
    else groups.push({ key: s.node, node: s.node, quantizers: [s.name] });
  }
  return groups;
}

const patch = (names: readonly string[], p: SettingsPatch) => Object.fromEntries(names.map((n) => [n, p]));

/** Only these quantizers on (the rest bypassed). */
export function onlyEnabled(sim: QuantSim, quantizers: readonly string[]): QuantSim {
  return sim.with({ "**": { enabled: false }, ...patch(quantizers, { enabled: true }) });
}

/** Everything as in `sim` but these quantizers bypassed. */
export function without(sim: QuantSim, quantizers: readonly string[]): QuantSim {
  return sim.with(patch(quantizers, { enabled: false }));
}

/** Every quantizer bypassed: the FP32 model through the same code path. */
export function allBypassed(sim: QuantSim): QuantSim {
  return sim.with({ "**": { enabled: false } });
}
