import * as tf from "@tensorflow/tfjs";
import { Dataset, requireData } from "../data/types";
import { MetricAccumulator, MetricName } from "../eval/metric";
import { infoOf, MetricInfo, resolveMetric } from "./evaluation";
import { ProgressFn } from "../progress";
import { computeEncoding, Encoding } from "../quant/encoding";
import { fakeQuant } from "../quant/fake-quant";
import { QuantSim } from "../quant/quantsim";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../graph/forward";
import { sequenceRole } from "./outlier-dimensions";

export interface OutlierFixesOptions {
  data: Dataset;
  /** Default "agreement" (top-1 agreement with FP32); "accuracy" needs labels. */
  metric?: MetricName;
  /** Embedding groups per quantizer for per-embedding-group quantization. Default 4. */
  groups?: number;
  /** Bit-width of the residual-stream and LayerNorm-input quantizers in those fixes. Default 16. */
  highBitwidth?: number;
  /** The quantizers' nodes (default: from the graph: outputs read by a LayerNorm, and LayerNorm / add outputs). */
  residualNodes?: string[];
  layerNormInputs?: string[];
  onProgress?: ProgressFn;
}

export interface OutlierFixRow {
  fix: "as is" | "per-embedding-group" | "residual stream high bits" | "LayerNorm inputs high bits";
  /** What was done, in words. */
  detail: string;
  quantizers: string[];
  score: number;
  /** FP32 score minus this one. */
  drop: number;
  /** Fraction of the as-is drop this fix recovers (1 = back to FP32; 0 when there was no drop); null for metrics where FP32 is only a ceiling (sqnr, psnr). */
  recovered: number | null;
}

export interface OutlierFixesResult {
  step: "outlier-fixes";
  metric: MetricInfo;
  examples: number;
  groups: number;
  highBitwidth: number;
  fp32: number;
  rows: OutlierFixRow[];
  /** Per quantizer, the group of each embedding dimension (sorted by range, then split in equal parts) and the group ranges. */
  embeddingGroups: { quantizer: string; groupOf: number[]; ranges: { min: number; max: number }[] }[];
  diagnosis: string;
}

/**
 * Measures the fixes that outlier dimensions call for (Bondarenko et al., 2021),
 * each against the simulation as it is, in one pass over `data` on tfjs:
 * - per-embedding-group activation quantization of the residual-stream
 *   quantizers: the dimensions sorted by range and split into `groups` equal
 *   groups, one encoding per group (the sim's bit-width and scheme), so an
 *   outlier dimension no longer sets every dimension's step;
 * - the residual-stream quantizers (LayerNorm inputs and outputs, residual adds)
 *   at `highBitwidth`;
 * - only the LayerNorm inputs at `highBitwidth` (what runtimes that keep
 *   LayerNorm in 16 bits do).
 * The subject must be calibrated; it is left as it was.
 */
export async function outlierFixes(sim: QuantSim, options: OutlierFixesOptions): Promise<OutlierFixesResult> {
  // 1. Options, once.
  const data = requireData("outlierFixes", options);
  if (!(sim instanceof QuantSim)) throw new Error("outlierFixes: the subject must be a calibrated QuantSim");
  if (!sim.calibrated) throw new Error("outlierFixes: calibrate the simulation first (sim = await sim.calibrate(data))");
  const spec = resolveMetric({ metric: options.metric ?? "agreement" }, sim.graph);
  const metric = spec.metric;
  const groups = options.groups ?? 4;
  if (!Number.isInteger(groups) || groups < 2) throw new Error(`outlierFixes: groups must be an integer of at least 2, got ${JSON.stringify(options.groups)}`);
  const highBitwidth = options.highBitwidth ?? 16;
  const graph = sim.graph;
  const site = (node: string) => sim.sites.find((s) => s.kind === "activation" && s.node === node)?.name;
  const sequence = graph.nodes.filter((n) => n.outputShape.length === 3);
  const residualNodes = options.residualNodes ?? sequence.filter((n) => ["residual", "layerNormInput"].includes(sequenceRole(graph, n))).map((n) => n.name);
  const layerNormInputs = options.layerNormInputs ?? sequence.filter((n) => sequenceRole(graph, n) === "layerNormInput").map((n) => n.name);
  const residualSites = residualNodes.map(site).filter((s): s is string => s !== undefined && sim.encodingOf(s) !== null);
  const lnSites = layerNormInputs.map(site).filter((s): s is string => s !== undefined && sim.encodingOf(s) !== null);
  if (residualSites.length === 0) throw new Error(`outlierFixes: no enabled activation quantizer on the residual stream of "${graph.name}" (nodes: ${residualNodes.join(", ") || "none found"})`);
  for (const s of residualSites) {
    const d = graph.node(sim.sites.find((x) => x.name === s)!.node).outputShape[2] as number;
    if (d < groups) throw new Error(`outlierFixes: ${s} has ${d} embedding dimensions, fewer than ${groups} groups`);
  }

  // 2. Per-dimension ranges of the residual-stream activations, with those quantizers off (what they would see).
  const open = sim.with(Object.fromEntries(residualSites.map((s) => [s, { enabled: false }])));
  const nodeOf = new Map(residualSites.map((s) => [sim.sites.find((x) => x.name === s)!.node, s]));
  const dimRanges = new Map<string, { min: number[]; max: number[] }>();
  try {
    await forEachBatch(graph, data, { task: "outlier fixes: embedding ranges", onProgress: options.onProgress }, (batch) => {
      const outputs = open.forward(batch.inputs, {
        hook: (node, out) => {
          const s = nodeOf.get(node.name);
          if (!s) return;
          const [min, max] = tf.tidy(() => [Array.from(tf.min(out, [0, 1]).dataSync()), Array.from(tf.max(out, [0, 1]).dataSync())]);
          const seen = dimRanges.get(s);
          dimRanges.set(s, seen ? { min: seen.min.map((v, i) => Math.min(v, min[i])), max: seen.max.map((v, i) => Math.max(v, max[i])) } : { min, max });
        },
      });
      tf.dispose(outputs);
    });
  } catch (err) {
    open.dispose();
    throw err;
  }
  const embeddingGroups = residualSites.map((s) => ({ quantizer: s, ...groupRanges(dimRanges.get(s)!, groups) }));
  const perDim = new Map(embeddingGroups.map((g) => {
    const set = sim.settingsOf(g.quantizer);
    const encs = g.ranges.map((r) => computeEncoding(r.min, r.max, set.bitwidth, set.scheme));
    return [sim.sites.find((x) => x.name === g.quantizer)!.node, g.groupOf.map((k) => encs[k])] as [string, Encoding[]];
  }));

  // 3. The variants, scored in one pass (the grouped one is `open` with a hook).
  const high = (sites: string[]) => Object.fromEntries(sites.map((s) => [s, { bitwidth: highBitwidth }]));
  const fixes: { fix: OutlierFixRow["fix"]; detail: string; quantizers: string[]; sim: QuantSim; hook?: (node: { name: string }, out: tf.Tensor) => tf.Tensor | undefined }[] = [];
  const made: QuantSim[] = [];
  try {
    const asIs = sim.with({});
    made.push(asIs);
    fixes.push({ fix: "as is", detail: "every activation quantizer per tensor, as configured", quantizers: [], sim: asIs });
    fixes.push({
      fix: "per-embedding-group",
      detail: `${residualSites.length} residual-stream quantizers with ${groups} embedding groups each (dimensions sorted by range)`,
      quantizers: residualSites,
      sim: open,
      hook: (node, out) => {
        const encs = perDim.get(node.name);
        return encs ? fakeQuant(out, encs, { axis: -1 }) : undefined;
      },
    });
    const residualHigh = sim.with(high(residualSites));
    made.push(residualHigh);
    fixes.push({ fix: "residual stream high bits", detail: `${residualSites.length} residual-stream quantizers at ${highBitwidth} bits`, quantizers: residualSites, sim: residualHigh });
    if (lnSites.length) {
      const lnHigh = sim.with(high(lnSites));
      made.push(lnHigh);
      fixes.push({ fix: "LayerNorm inputs high bits", detail: `${lnSites.length} LayerNorm inputs at ${highBitwidth} bits`, quantizers: lnSites, sim: lnHigh });
    }
    const accs = fixes.map(() => new MetricAccumulator(spec));
    const fp32Acc = new MetricAccumulator(spec);
    const summary = await forEachBatch(graph, data, { task: "outlier fixes: scores", onProgress: options.onProgress }, (batch) => {
      const reference = forward(graph, batch.inputs);
      try {
        fp32Acc.add(reference, reference, batch.labels);
        fixes.forEach((f, i) => {
          const outputs = f.sim.forward(batch.inputs, f.hook ? { hook: f.hook } : {});
          try {
            accs[i].add(outputs, reference, batch.labels);
          } finally {
            tf.dispose(outputs);
          }
        });
      } finally {
        tf.dispose(reference);
      }
    });
    const fp32 = fp32Acc.score();
    const scores = accs.map((a) => a.score());
    const baseDrop = fp32 - scores[0];
    const bounded = metric === "accuracy" || metric === "agreement" || metric === "mse";
    const rows: OutlierFixRow[] = fixes.map((f, i) => ({
      fix: f.fix,
      detail: f.detail,
      quantizers: f.quantizers,
      score: scores[i],
      drop: fp32 - scores[i],
      recovered: !bounded ? null : baseDrop > 0 ? (scores[i] - scores[0]) / baseDrop : 0,
    }));
    const info = infoOf(spec);
    return { step: "outlier-fixes", metric: info, examples: summary.examples, groups, highBitwidth, fp32, rows, embeddingGroups, diagnosis: diagnose(rows, fp32, info.label, bounded) };
  } finally {
    made.forEach((s) => s.dispose());
    open.dispose();
  }
}

/** Dimensions sorted by the width of their range, split into `groups` near-equal groups; each group's range covers its dimensions. */
export function groupRanges(r: { min: number[]; max: number[] }, groups: number): { groupOf: number[]; ranges: { min: number; max: number }[] } {
  const dims = r.min.length;
  const order = r.min.map((_, d) => d).sort((a, b) => r.max[a] - r.min[a] - (r.max[b] - r.min[b]) || a - b);
  const groupOf = new Array<number>(dims).fill(0);
  const ranges = Array.from({ length: groups }, () => ({ min: Infinity, max: -Infinity }));
  order.forEach((d, rank) => {
    const k = Math.min(groups - 1, Math.floor((rank * groups) / dims));
    groupOf[d] = k;
    ranges[k].min = Math.min(ranges[k].min, r.min[d]);
    ranges[k].max = Math.max(ranges[k].max, r.max[d]);
  });
  return { groupOf, ranges };
}

function diagnose(rows: OutlierFixRow[], fp32: number, label: string, bounded: boolean): string {
  const base = rows[0];
  const fmt = (v: number) => (bounded && Math.abs(v) <= 1 ? `${(v * 100).toFixed(2)} %` : v.toFixed(2));
  if (bounded && base.drop <= 0) return `The simulation already matches FP32 (${fmt(base.score)}, ${label}): no fix is needed.`;
  const best = rows.slice(1).reduce((b, r) => (r.score > b.score ? r : b));
  const others = rows.slice(1).filter((r) => r !== best).map((r) => `${r.fix}: ${fmt(r.score)}`).join(", ");
  const asIs = bounded ? `As is the simulation scores ${fmt(base.score)} against FP32's ${fmt(fp32)} (${label}).` : `As is the simulation scores ${fmt(base.score)} (${label}).`;
  return best.score > base.score
    ? `${asIs} The best fix is ${best.fix} (${best.detail})${best.recovered !== null ? `, which recovers ${(best.recovered * 100).toFixed(0)} % of the drop` : ""}: ${fmt(best.score)}. The others: ${others}.`
    : `${asIs} None of the fixes for outlier dimensions raises it (${rows.slice(1).map((r) => `${r.fix}: ${fmt(r.score)}`).join(", ")}): the error is not on the residual stream; look at the per-layer sweeps.`;
}
