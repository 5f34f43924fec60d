import { EvaluationOptions, metricInfo, MetricInfo } from "../analysis/evaluation";
import { MetricName } from "../eval/metric";
import { Granularity } from "../analysis/variants";
import { validateBitwidth } from "../quant/encoding";
// Type only (erased): the table row type lives with the result.
import type { MixedPrecisionStep } from "./mixed-precision";

/** Mixed precision's options: the candidate bit-widths in canonical form and the sensitivity setting, checked once. */
/** A bit-width choice: weights, and activations too when given (otherwise activations keep the simulation's settings). */
export interface Candidate {
  weights: number;
  activations?: number;
}

/** `data` is read once per pass (several passes): give a Dataset that can be iterated again, not a generator. */
export interface MixedPrecisionOptions extends EvaluationOptions {
  /**
   * Bit-widths to choose from: numbers are weight bit-widths (`[4, 8]`), pairs
   * set weights and activations (`[{ weights: 8, activations: 8 }, { weights: 4, activations: 8 }]`).
   * They must be ordered: each at least as wide as the others in both parts, or
   * narrower in both (W4A8 and W8A4 cannot be ranked, so they cannot be mixed).
   */
  candidates: readonly (number | { weights: number; activations: number })[];
  /** How much the score may fall below FP32's, in metric units (0.005 = half a point of accuracy). */
  allowedDrop: number;
  /** What a configuration costs: bit operations (default) or model size in bytes. */
  cost?: "bops" | "size";
  /** Search per layer (a layer's weights and the activations its MACs read, default) or per quantizer. */
  granularity?: Granularity;
  /**
   * How layers are ranked (steps 1–2 below). `from: "lowest"` (default):
   * everything at the lowest candidate and one layer raised — what raising it
   * is worth where the search starts, which walks up from the lowest.
   * `"highest"` (AIMET's phase 1, made for its search that walks down from the
   * highest): everything at the highest and one layer lowered. On the example
   * model, where the drop comes from errors adding up across layers, lowering
   * one layer alone moves accuracy by less than the noise of 1000 images, and
   * that ranking kept 11–12 of 18 layers at 8 bits where "lowest" kept 5–7.
   * `metric`: a built-in metric over `data` for this ranking only (default: the
   * search's own), e.g. "mse", which changes smoothly where accuracy moves by
   * whole examples (like AIMET's SQNR phase-1 callback).
   */
  sensitivity?: { from?: "highest" | "lowest"; metric?: MetricName };
  /** Called with each row of the table as its configuration is scored. */
  onStep?: (row: MixedPrecisionStep) => void;
}


export function normalizeSensitivity(raw: MixedPrecisionOptions["sensitivity"], metric: MetricInfo, hasData: boolean): { from: "highest" | "lowest"; metric?: MetricInfo } {
  const from = raw?.from ?? "lowest";
  if (from !== "highest" && from !== "lowest") throw new Error(`mixedPrecision: invalid sensitivity.from: ${JSON.stringify(from)} (expected "highest" or "lowest")`);
  if (raw?.metric === undefined) return { from };
  const own = metricInfo({ metric: raw.metric });
  if (own.metric === metric.metric) return { from };
  if (!hasData) throw new Error(`mixedPrecision: sensitivity.metric "${own.metric}" is computed over data: give data too`);
  return { from, metric: own };
}

/** Candidates in canonical form, lowest first; an error for anything that cannot be ranked. */
export function normalizeCandidates(raw: MixedPrecisionOptions["candidates"]): Candidate[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new Error("mixedPrecision: candidates must be a non-empty list of bit-widths, e.g. [4, 8] or [{ weights: 4, activations: 8 }, { weights: 8, activations: 8 }]");
  const numbers = raw.filter((c) => typeof c === "number").length;
  if (numbers !== 0 && numbers !== raw.length) throw new Error("mixedPrecision: give candidates either as numbers (weight bit-widths) or as { weights, activations } pairs, not both");
  const list = raw.map((c, i): Candidate => {
    try {
      if (typeof c === "number") return { weights: validateBitwidth(c) };
      if (c === null || typeof c !== "object") throw new Error(`expected a number or { weights, activations }, got ${JSON.stringify(c)}`);
      return { weights: validateBitwidth(c.weights), activations: validateBitwidth(c.activations) };
    } catch (err) {
      throw new Error(`mixedPrecision: candidate ${i + 1}: ${(err as Error).message}`);
    }
  });
  list.sort((a, b) => a.weights - b.weights || (a.activations ?? 0) - (b.activations ?? 0));
  for (let i = 1; i < list.length; i++) {
    const [a, b] = [list[i - 1], list[i]];
    if (a.weights === b.weights && a.activations === b.activations) throw new Error(`mixedPrecision: candidate ${candidateLabel(a)} is given twice`);
    if ((a.activations ?? 0) > (b.activations ?? 0)) {
      throw new Error(`mixedPrecision: candidates ${candidateLabel(a)} and ${candidateLabel(b)} cannot be ranked (more weight bits but fewer activation bits): give candidates where each is at least as wide as the previous in both weights and activations`);
    }
  }
  if (list.length < 2) throw new Error(`mixedPrecision: only one candidate (${candidateLabel(list[0])}): give at least two to choose between`);
  return list;
}

export function candidateLabel(c: Candidate): string {
  return `W${c.weights}${c.activations !== undefined ? `A${c.activations}` : ""}`;
}
