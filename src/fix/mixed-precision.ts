import { metricInfo, MetricInfo, scoreAll } from "../analysis/evaluation";
import { disposable, FixResult } from "./fix-result";
import { MetricName } from "../eval/metric";
import { ScoredVariant } from "../analysis/score-variants";
import { allBypassed, Granularity } from "../analysis/variants";
import { QuantSim } from "../quant/quantsim";
import { SettingsPatch } from "../quant/settings";
import { costModel, costOf, simBits } from "./cost";
import { Candidate, MixedPrecisionOptions, candidateLabel, normalizeCandidates, normalizeSensitivity } from "./mixed-precision-options";
import { bestConfig, describeConfig, dominates, patchOf, searchGroups } from "./mixed-precision-search";
import { changeText, scoreText } from "../eval/score-text";

export type { Candidate, MixedPrecisionOptions } from "./mixed-precision-options";
export { normalizeCandidates, candidateLabel } from "./mixed-precision-options";

/** One configuration on the search path: the layer raised and where that left score and cost. */
export interface MixedPrecisionStep {
  /** 0: everything at the lowest candidate; then one layer raised one level per step. */
  step: number;
  /** The layer (or quantizer) raised at this step; "" at step 0. */
  changed: string;
  /** Its new bit-width (weights; activations for a group of activation quantizers only). */
  bitwidth: number;
  /** Its new candidate, e.g. "W8A8". */
  candidate: string;
  score: number;
  cost: number;
  /** cost / cost with everything at the highest candidate. */
  relativeCost: number;
}

/** One scored configuration, for the score-vs-cost (Pareto) view. */
export interface ParetoPoint {
  /** How it came to be scored. */
  kind: "lowest" | "highest" | "one lowered" | "one raised" | "step";
  /** The step number, for points on the search path. */
  step?: number;
  /** The layer raised (a step) or lowered (a sensitivity point). */
  changed: string;
  /** Every layer's candidate, in words. */
  config: string;
  score: number;
  cost: number;
  relativeCost: number;
  /** No other configuration scores at least as well for at most the cost (and better in one). */
  onFront: boolean;
  chosen: boolean;
}

/** A searched layer (or quantizer group), its sensitivity and what was chosen for it. */
export interface MixedPrecisionLayer {
  /** Execution-order position. */
  index: number;
  key: string;
  nodes: string[];
  quantizers: string[];
  /** Its distinct candidates, lowest first (e.g. ["W4A8", "W8A8"]). */
  levels: string[];
  chosen: { level: number; label: string; weights?: number; activations?: number };
  /**
   * Everything at the sensitivity base (lowest or highest candidate) but this
   * layer, at each of its levels: the score (in the sensitivity metric) and the cost.
   */
  sensitivity: { label: string; score: number; cost: number }[];
  /** Sensitivity score at its highest level minus at its lowest: what raising it alone is worth. */
  gain: number;
  /** Score recovered per unit of cost when raising it from its lowest level: the search order, highest first. */
  priority: number;
  /** Steps that raised this layer. */
  raisedAt: number[];
}

export interface MixedPrecisionResult extends FixResult {
  step: "mixed-precision";
  candidates: Candidate[];
  granularity: Granularity;
  /** Overrides by quantizer name: `sim.with(chosen)` is the chosen configuration. */
  chosen: Record<string, SettingsPatch>;
  /** `sim.with(chosen)`; the caller disposes it. */
  sim: QuantSim;
  /** The search path, in order. */
  table: MixedPrecisionStep[];
  /** Every configuration scored (FP32 aside). */
  pareto: ParetoPoint[];
  layers: MixedPrecisionLayer[];
  reference: { fp32: number; lowest: number; highest: number };
  /** fp32 − allowedDrop. */
  target: number;
  allowedDrop: number;
  met: boolean;
  score: number;
  metric: MetricInfo;
  /** How layers were ranked. */
  sensitivity: { from: "highest" | "lowest"; metric: MetricInfo };
  costUnit: "BOPs" | "bytes";
  costs: { fp32: number; lowest: number; highest: number; chosen: number };
  /** Configurations scored, the FP32 reference included; each was scored once. */
  evaluations: number;
  /** Passes over the data (or rounds of evaluate calls). */
  passes: number;
  diagnosis: string;
}


const SCORE_TOLERANCE = 1e-12;

/**
 * Mixed precision, a greedy search like AIMET's AMP: which layers to keep at a
 * higher bit-width so the score stays within `allowedDrop` of FP32, at a
 * low cost (greedy: not guaranteed the lowest).
 *
 * 1. Score FP32, everything at the lowest candidate and everything at the
 *    highest, and — for sensitivity — everything at the lowest with one layer
 *    at each higher candidate (or, with `sensitivity.from: "highest"`,
 *    AIMET's way, everything at the highest with one layer at each lower one):
 *    all in one pass over the data (two when `sensitivity.metric` differs
 *    from the search's).
 * 2. Order the raises: a layer at level ℓ is worth raising by the score it
 *    recovers per unit of cost, max over higher levels m of
 *    (score(layer at m) − score(layer at ℓ)) / (cost(m) − cost(ℓ)), both from
 *    step 1 (with two candidates: its gain when raised alone ÷ the cost of
 *    raising it). Cheap, sensitive layers go first; ties go to the earlier layer;
 *    layers with no measured gain go last, by gain, then cheapest first.
 *    Looking past the next level lets a layer whose first raise gains little
 *    but whose second gains much still go early.
 * 3. From everything at the lowest candidate, raise the best layer one level at
 *    a time, scoring each configuration, until the score reaches
 *    target = FP32 − allowedDrop. Configurations already scored are not scored again.
 * 4. The Pareto front: the scored configurations no other one beats on both score and cost.
 *
 * When even the highest candidate everywhere misses the target, nothing is
 * searched: `met` is false and the best configuration scored is returned.
 * Deterministic; every simulation made here is disposed but the returned one.
 */
export async function mixedPrecision(sim: QuantSim, options: MixedPrecisionOptions): Promise<MixedPrecisionResult> {
  // Options, checked once; the groups searched and their levels.
  const candidates = normalizeCandidates(options.candidates);
  const allowedDrop = options.allowedDrop;
  if (typeof allowedDrop !== "number" || !Number.isFinite(allowedDrop) || allowedDrop < 0) {
    throw new Error(`mixedPrecision: allowedDrop must be a finite number ≥ 0 in metric units (e.g. 0.005 = half a point of accuracy), got ${String(allowedDrop)}`);
  }
  const costKind = options.cost ?? "bops";
  if (costKind !== "bops" && costKind !== "size") throw new Error(`mixedPrecision: invalid cost: ${JSON.stringify(costKind)} (expected "bops" or "size")`);
  const granularity = options.granularity ?? "layer";
  if (granularity !== "layer" && granularity !== "quantizer") throw new Error(`mixedPrecision: invalid granularity: ${JSON.stringify(granularity)} (expected "layer" or "quantizer")`);
  // With the graph, the default metric fits the outputs (SQNR for a non-classifier) and a class metric on other outputs is refused.
  const metric = metricInfo(options, options.evaluate ? undefined : sim.graph);
  if (metric.metric === "sqnr" || metric.metric === "psnr") {
    throw new Error(`mixedPrecision: allowedDrop is counted from the FP32 score, which is not finite for metric "${metric.metric}" (FP32 has no noise); use "accuracy", "agreement", "mse", or an evaluate function`);
  }
  if (!options.evaluate && !options.data) throw new Error("mixedPrecision: give data (with a metric) or an evaluate function");
  const sensitivity = normalizeSensitivity(options.sensitivity, metric, options.data !== undefined);
  if (!sim.calibrated && sim.sites.some((s) => s.kind === "activation" && sim.settingsOf(s.name).enabled)) {
    throw new Error("mixedPrecision: the simulation is not calibrated: calibrate it first (sim = await sim.calibrate(data))");
  }
  const model = costModel(sim);
  const groups = searchGroups(sim, model, candidates, granularity);
  const baseBits = simBits(sim);
  const unit = costKind === "bops" ? "BOPs" : "bytes";
  const costOfLevels = (levels: readonly number[]): number => {
    const patch = patchOf(groups, levels);
    const c = costOf(model, (q) => (q !== undefined && patch[q]?.bitwidth !== undefined ? patch[q].bitwidth! : baseBits(q)));
    if (costKind === "size") return c.bytes;
    if (c.bops === null) {
      const layer = c.layers.find((l) => l.bops === null)!;
      throw new Error(`mixedPrecision: cannot count BOPs: layer "${layer.layer}" has no fixed output size; use cost: "size"`);
    }
    return c.bops;
  };
  costOfLevels(groups.map(() => 0)); // fails now, not after a pass over the data, when BOPs cannot be counted

  // Scores by configuration (one level per group), each scored once per metric.
  const keyOf = (levels: readonly number[]) => levels.join(",");
  const scores = new Map<string, number>();
  const configs = new Map<string, number[]>();
  const sensitivityScores = sensitivity.metric ? new Map<string, number>() : scores;
  const changedFrom = [...new Set(sim.sites.filter((s) => sim.settingsOf(s.name).enabled).map((s) => s.node))];
  let passes = 0;
  let evaluations = 0;
  const score = async (task: string, wanted: number[][], how: { fp32?: boolean; sensitivity?: boolean } = {}): Promise<number | undefined> => {
    const into = how.sensitivity ? sensitivityScores : scores;
    const todo = wanted.filter((lv, i) => !into.has(keyOf(lv)) && wanted.findIndex((x) => keyOf(x) === keyOf(lv)) === i);
    const variants: ScoredVariant[] = todo.map((lv) => ({ key: keyOf(lv), sim: sim.with(patchOf(groups, lv)), changedFrom }));
    if (how.fp32) variants.unshift({ key: "\u0000fp32", sim: allBypassed(sim), changedFrom: [] });
    if (variants.length === 0) return undefined;
    try {
      const scoring = how.sensitivity && sensitivity.metric ? { ...options, evaluate: undefined, metric: sensitivity.metric.metric as MetricName } : options;
      // Only the FP32 variant gains from cached FP32 intermediates: every other one quantizes the model from its input.
      const got = await scoreAll(task, variants, { ...scoring, cacheFp32: how.fp32 && !scoring.evaluate });
      passes += 1;
      evaluations += variants.length;
      for (const lv of todo) {
        into.set(keyOf(lv), got.get(keyOf(lv))!);
        configs.set(keyOf(lv), lv);
      }
      return got.get("\u0000fp32");
    } finally {
      for (const v of variants) v.sim.dispose();
    }
  };

  // 1. FP32, lowest, highest, and everything at the base candidate but one
  // layer, each layer and level, in one pass (two with a sensitivity metric of its own).
  const lowest = groups.map(() => 0);
  const highest = groups.map((g) => g.levels.length - 1);
  const base = sensitivity.from === "highest" ? highest : lowest;
  const alone = (gi: number, level: number) => base.map((l, i) => (i === gi ? level : l));
  const sensitivityConfigs = [base, ...groups.flatMap((g, gi) => g.levels.map((_, level) => alone(gi, level)))];
  const sensitivityTask = `mixed precision: each layer ${sensitivity.from === "highest" ? "lowered" : "raised"} alone`;
  let fp32Score: number;
  if (sensitivity.metric) {
    fp32Score = (await score("mixed precision: FP32, lowest and highest", [lowest, highest], { fp32: true }))!;
    await score(`${sensitivityTask} (${sensitivity.metric.label})`, sensitivityConfigs, { sensitivity: true });
  } else {
    fp32Score = (await score(sensitivityTask, [lowest, highest, ...sensitivityConfigs], { fp32: true }))!;
  }
  const target = fp32Score - allowedDrop;
  const highestScore = scores.get(keyOf(highest))!;
  const highestCost = costOfLevels(highest);
  const relative = (c: number) => (highestCost > 0 ? c / highestCost : 1);
  const epsilon = Math.max(highestCost, 1) * 1e-12;
  // 2. The order of raises. s(g, m), c(g, m): everything at the base, group g at level m.
  const sensScore = (gi: number, level: number) => sensitivityScores.get(keyOf(alone(gi, level)))!;
  const sensCost = (gi: number, level: number) => costOfLevels(alone(gi, level));
  // A raise with a positive gain ranks by gain per cost; one with none measured
  // (gain ≤ 0: noise, or lowering even helped) comes after all of those, by
  // gain and then cheapest first, rather than by the ratio, which would put the
  // most expensive of them first.
  const ranks = new Map<string, { priority: number; key: [number, number, number] }>();
  const rank = (gi: number, level: number) => {
    const id = `${gi}:${level}`;
    if (!ranks.has(id)) {
      let priority = -Infinity;
      let bestGain = -Infinity;
      for (let m = level + 1; m < groups[gi].levels.length; m++) {
        const gain = sensScore(gi, m) - sensScore(gi, level);
        priority = Math.max(priority, gain / Math.max(sensCost(gi, m) - sensCost(gi, level), epsilon));
        bestGain = Math.max(bestGain, gain);
      }
      const nextCost = sensCost(gi, level + 1) - sensCost(gi, level);
      ranks.set(id, { priority, key: bestGain > 0 ? [1, priority, -nextCost] : [0, bestGain, -nextCost] });
    }
    return ranks.get(id)!;
  };
  const before = (a: readonly number[], b: readonly number[]) => a[0] !== b[0] ? a[0] > b[0] : a[1] !== b[1] ? a[1] > b[1] : a[2] > b[2];

  // 3. Raise one layer one level at a time, from everything lowest, until the target is met.
  const levels = [...lowest];
  const table: MixedPrecisionStep[] = [];
  const pathKeys: string[] = [];
  const raisedAt = groups.map((): number[] => []);
  const record = (row: MixedPrecisionStep) => {
    table.push(row);
    pathKeys.push(keyOf(levels));
    options.onStep?.(row);
  };
  const meets = (s: number) => s >= target - SCORE_TOLERANCE;
  const lowestCost = costOfLevels(lowest);
  record({ step: 0, changed: "", bitwidth: candidates[0].weights, candidate: candidateLabel(candidates[0]), score: scores.get(keyOf(lowest))!, cost: lowestCost, relativeCost: relative(lowestCost) });
  const totalMoves = highest.reduce((a, b) => a + b, 0);
  const start = Date.now();
  if (meets(highestScore)) {
    while (!meets(scores.get(keyOf(levels))!)) {
      let pick = -1;
      groups.forEach((g, gi) => {
        if (levels[gi] < g.levels.length - 1 && (pick < 0 || before(rank(gi, levels[gi]).key, rank(pick, levels[pick]).key))) pick = gi;
      });
      if (pick < 0) break;
      levels[pick] += 1;
      const group = groups[pick];
      const level = group.levels[levels[pick]];
      const stepNumber = table.length;
      await score(`mixed precision: step ${stepNumber} (${group.key} to ${level.label})`, [[...levels]]);
      raisedAt[pick].push(stepNumber);
      const cost = costOfLevels(levels);
      const s = scores.get(keyOf(levels))!;
      record({ step: stepNumber, changed: group.key, bitwidth: level.weights ?? level.activations!, candidate: level.label, score: s, cost, relativeCost: relative(cost) });
      options.onProgress?.({ task: "mixed precision: raising layers", done: stepNumber, total: totalMoves, unit: "steps", elapsedMs: Date.now() - start, detail: `${group.key} → ${level.label}: ${s.toFixed(4)}` });
    }
  }

  // 4. The chosen configuration, the Pareto front, and the result.
  const met = meets(scores.get(keyOf(levels))!);
  const chosenKey = met ? keyOf(levels) : bestConfig(scores, (k) => costOfLevels(configs.get(k)!));
  const chosenLevels = configs.get(chosenKey)!;
  const chosen = patchOf(groups, chosenLevels);
  const stepOf = new Map(table.map((r, i) => [pathKeys[i], r]));
  const points = [...scores].map(([key, s]): Omit<ParetoPoint, "onFront"> => {
    const lv = configs.get(key)!;
    const cost = costOfLevels(lv);
    const row = stepOf.get(key);
    const kind: ParetoPoint["kind"] = key === keyOf(lowest) ? "lowest" : key === keyOf(highest) ? "highest" : row ? "step" : sensitivity.from === "highest" ? "one lowered" : "one raised";
    const odd = lv.findIndex((l, i) => l !== base[i]);
    const changed = row ? row.changed : kind.startsWith("one") ? `${groups[odd].key} at ${groups[odd].levels[lv[odd]].label}` : "";
    return { kind, step: row?.step, changed, config: describeConfig(groups, lv), score: s, cost, relativeCost: relative(cost), chosen: key === chosenKey };
  });
  const pareto = points.map((p) => ({ ...p, onFront: !points.some((q) => dominates(q, p)) }));
  const layers = groups.map((g, gi): MixedPrecisionLayer => {
    const level = g.levels[chosenLevels[gi]];
    const top = g.levels.length - 1;
    return {
      index: gi,
      key: g.key,
      nodes: g.nodes,
      quantizers: g.quantizers,
      levels: g.levels.map((l) => l.label),
      chosen: { level: chosenLevels[gi], label: level.label, weights: level.weights, activations: level.activations },
      sensitivity: g.levels.map((l, m) => ({ label: l.label, score: sensScore(gi, m), cost: sensCost(gi, m) })),
      gain: sensScore(gi, top) - sensScore(gi, 0),
      priority: rank(gi, 0).priority,
      raisedAt: raisedAt[gi],
    };
  });
  const fp32Cost = costOf(model, () => 32);
  const costs = { fp32: costKind === "bops" ? fp32Cost.bops! : fp32Cost.bytes, lowest: lowestCost, highest: highestCost, chosen: costOfLevels(chosenLevels) };
  const result: Omit<MixedPrecisionResult, "diagnosis" | "dispose"> = {
    step: "mixed-precision",
    candidates,
    granularity,
    chosen,
    sim: sim.with(chosen),
    table,
    pareto,
    layers,
    reference: { fp32: fp32Score, lowest: scores.get(keyOf(lowest))!, highest: highestScore },
    target,
    allowedDrop,
    met,
    score: scores.get(chosenKey)!,
    metric,
    sensitivity: { from: sensitivity.from, metric: sensitivity.metric ?? metric },
    costUnit: unit,
    costs,
    evaluations,
    passes,
  };
  return disposable({ ...result, diagnosis: diagnose(result) }, result.sim);
}


const pct = (v: number) => `${(100 * v).toFixed(0)} %`;

function diagnose(r: Omit<MixedPrecisionResult, "diagnosis" | "dispose">): string {
  // Scores in the metric's own terms (98.20 %, 41.3 dB); the allowed drop as a change of it.
  const fmt = (v: number) => scoreText(r.metric, v);
  const dropText = changeText(r.metric, -r.allowedDrop).replace(/^−/, "");
  const low = candidateLabel(r.candidates[0]);
  const high = candidateLabel(r.candidates[r.candidates.length - 1]);
  const targetText = `the target ${fmt(r.target)} (FP32 ${fmt(r.reference.fp32)} − ${dropText})`;
  const relative = r.costs.highest > 0 ? r.costs.chosen / r.costs.highest : 1;
  const scored = `${r.evaluations} configurations scored in ${r.passes} ${r.passes === 1 ? "pass" : "passes"}, on the search data: confirm the choice on held-out data.`;
  if (!r.met) {
    return `Even with every layer at ${high} the score is ${fmt(r.reference.highest)}, below ${targetText}: no mix of these candidates meets it. The best configuration scored (${fmt(r.score)}, ${pct(relative)} of the all-${high} ${r.costUnit}) is returned. Allow a larger drop, add a wider candidate, or fix the model first (CLE, per-channel weights, AdaRound). ${scored}`;
  }
  const raised = r.layers.filter((l) => l.chosen.level > 0);
  if (raised.length === 0) return `Every layer at ${low} already scores ${fmt(r.score)}, within ${targetText}: nothing needs more bits (${pct(relative)} of the all-${high} ${r.costUnit}). ${scored}`;
  const names = raised.slice(0, 8).map((l) => `${l.key} (${l.chosen.label})`).join(", ") + (raised.length > 8 ? ` and ${raised.length - 8} more` : "");
  const rest = raised.length < r.layers.length ? ` and the other ${r.layers.length - raised.length} at ${low}` : "";
  return `Keeping ${raised.length} of ${r.layers.length} layers wider than ${low} — ${names} —${rest} scores ${fmt(r.score)}, meeting ${targetText}, at ${pct(relative)} of the all-${high} ${r.costUnit} (all ${low}: ${fmt(r.reference.lowest)} at ${pct(r.costs.highest > 0 ? r.costs.lowest / r.costs.highest : 1)}). ${scored}`;
}
