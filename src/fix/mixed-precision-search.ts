import { Granularity } from "../analysis/variants";
import { QuantSim } from "../quant/quantsim";
import { SettingsPatch } from "../quant/settings";
import { CostModel } from "./cost";
import { Candidate, candidateLabel } from "./mixed-precision-options";

/** Mixed precision's search space: the groups of quantizers searched together, their levels, and how configurations compare. */
/** A group's candidate at one level: its label and the overrides that set it. */
interface Level {
  label: string;
  weights?: number;
  activations?: number;
  patch: Record<string, SettingsPatch>;
}

interface SearchGroup {
  key: string;
  nodes: string[];
  quantizers: string[];
  levels: Level[];
}


/**
 * The groups searched. Per layer: the enabled weight quantizers of each weighted
 * layer, plus (when the candidates set activations) the activation quantizers
 * its MACs read; layers sharing such an input quantizer are searched together,
 * so that one quantizer has one bit-width. Activation quantizers that feed no
 * weighted layer cost no MACs and keep the simulation's settings. Per
 * quantizer: each of those quantizers alone.
 */
export function searchGroups(sim: QuantSim, model: CostModel, candidates: readonly Candidate[], granularity: Granularity): SearchGroup[] {
  const withActivations = candidates[0].activations !== undefined;
  const enabled = (q: string | undefined): q is string => q !== undefined && sim.settingsOf(q).enabled;
  const members = model.layers.map((l) => ({
    nodes: [l.layer],
    weights: l.kernels.map((k) => k.quantizer).filter(enabled),
    activations: withActivations ? l.inputQuantizers.filter(enabled) : [],
  }));
  let raw: { key: string; nodes: string[]; weights: string[]; activations: string[] }[];
  if (granularity === "quantizer") {
    const order = new Map(sim.sites.map((s, i) => [s.name, i]));
    const weights = members.flatMap((m) => m.weights.map((q) => ({ key: q, nodes: m.nodes, weights: [q], activations: [] as string[] })));
    const acts = [...new Set(members.flatMap((m) => m.activations))].map((q) => ({ key: q, nodes: members.filter((m) => m.activations.includes(q)).flatMap((m) => m.nodes), weights: [] as string[], activations: [q] }));
    raw = [...weights, ...acts].sort((a, b) => order.get(a.key)! - order.get(b.key)!);
  } else {
    const merged: { nodes: string[]; weights: string[]; activations: string[] }[] = [];
    for (const m of members) {
      if (m.weights.length + m.activations.length === 0) continue;
      const sharing = merged.filter((g) => g.activations.some((q) => m.activations.includes(q)));
      const into = { nodes: [...sharing.flatMap((g) => g.nodes), ...m.nodes], weights: [...sharing.flatMap((g) => g.weights), ...m.weights], activations: [...new Set([...sharing.flatMap((g) => g.activations), ...m.activations])] };
      const at = sharing.length ? merged.indexOf(sharing[0]) : merged.length;
      for (const g of sharing) merged.splice(merged.indexOf(g), 1);
      merged.splice(at, 0, into);
    }
    raw = merged.map((g) => ({ key: g.nodes.join("+"), ...g }));
  }
  const groups = raw
    .map((g): SearchGroup => {
      const levels: Level[] = [];
      for (const c of candidates) {
        const level: Level = {
          label: `${g.weights.length ? `W${c.weights}` : ""}${g.activations.length && c.activations !== undefined ? `A${c.activations}` : ""}`,
          weights: g.weights.length ? c.weights : undefined,
          activations: g.activations.length ? c.activations : undefined,
          patch: Object.fromEntries([...g.weights.map((q) => [q, { bitwidth: c.weights }]), ...g.activations.map((q) => [q, { bitwidth: c.activations! }])]),
        };
        if (levels.length === 0 || levels[levels.length - 1].label !== level.label) levels.push(level);
      }
      return { key: g.key, nodes: g.nodes, quantizers: [...g.weights, ...g.activations], levels };
    })
    .filter((g) => g.levels.length > 1);
  if (groups.length === 0) {
    throw new Error(`mixedPrecision: nothing to search in "${sim.graph.name}": no enabled weight quantizer of a conv, depthwise, separable, dense or embedding layer${withActivations ? " nor activation quantizer feeding one" : ""} changes across candidates ${candidates.map(candidateLabel).join(", ")}`);
  }
  return groups;
}

export function patchOf(groups: readonly SearchGroup[], levels: readonly number[]): Record<string, SettingsPatch> {
  return Object.assign({}, ...groups.map((g, i) => g.levels[levels[i]].patch));
}

/** The highest score; among equal scores the lowest cost, then the first scored. */
export function bestConfig(scores: ReadonlyMap<string, number>, costOfKey: (key: string) => number): string {
  let best: string | undefined;
  for (const [key, s] of scores) {
    if (best === undefined || s > scores.get(best)! || (s === scores.get(best)! && costOfKey(key) < costOfKey(best))) best = key;
  }
  return best!;
}

export function dominates(q: { score: number; cost: number }, p: { score: number; cost: number }): boolean {
  return q.score >= p.score && q.cost <= p.cost && (q.score > p.score || q.cost < p.cost);
}

/** "W4A8 except Conv1 (W8A8), block_1_depthwise (W8A8)". */
export function describeConfig(groups: readonly SearchGroup[], levels: readonly number[]): string {
  const labels = groups.map((g, i) => g.levels[levels[i]].label);
  const counts = new Map<string, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const common = [...counts].sort((a, b) => b[1] - a[1])[0][0];
  const others = groups.map((g, i) => (labels[i] === common ? "" : `${g.key} (${labels[i]})`)).filter(Boolean);
  if (others.length === 0) return `all ${common}`;
  const shown = others.slice(0, 6).join(", ");
  return `${common} except ${shown}${others.length > 6 ? ` and ${others.length - 6} more` : ""}`;
}
