import * as tf from "@tensorflow/tfjs";
import { Dataset, requireData } from "../data/types";
import { Graph } from "../graph/graph";
import { GraphNode } from "../graph/types";
import { ProgressFn } from "../progress";
import { QuantSim } from "../quant/quantsim";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../graph/forward";

/** Where a [batch, tokens, dim] activation sits in a transformer, read from the graph. */
export type SequenceRole = "layerNormInput" | "residual" | "attention" | "other";

export interface OutlierDimensionsOptions {
  data: Dataset;
  /** Nodes to look at (default: every node with a float [batch, tokens, dim] output). */
  nodes?: string[];
  /** A dimension is an outlier when its largest |value| is at least this many times the median dimension's. Default 6. */
  threshold?: number;
  /** Nodes whose token × dimension map the result carries (default: the LayerNorm inputs, where BERT's outliers show). */
  heatmapNodes?: string[];
  onProgress?: ProgressFn;
}

/** One embedding dimension of one node, over the data. */
export interface EmbeddingRange {
  node: string;
  role: SequenceRole;
  dim: number;
  min: number;
  max: number;
  absMax: number;
  /** absMax over the median dimension's absMax. */
  ratio: number;
  outlier: boolean;
}

/** One token position × embedding dimension of a heat-map node: the largest and the mean |value| over the examples. */
export interface TokenDimensionCell {
  node: string;
  token: number;
  dim: number;
  absMax: number;
  meanAbs: number;
}

export interface SequenceNodeSummary {
  node: string;
  role: SequenceRole;
  tokens: number;
  dims: number;
  /** Median and largest per-dimension absMax, and their ratio. */
  medianAbsMax: number;
  maxAbsMax: number;
  ratio: number;
  /** The same across token positions: the widest token over the median token. */
  tokenRatio: number;
  /** Dimensions at or above the threshold, widest first. */
  outliers: number[];
}

export interface OutlierDimensionsResult {
  step: "outlier-dimensions";
  threshold: number;
  examples: number;
  nodes: SequenceNodeSummary[];
  ranges: EmbeddingRange[];
  heatmap: TokenDimensionCell[];
  /** Every outlier dimension, widest ratio first. */
  outliers: { node: string; role: SequenceRole; dim: number; absMax: number; ratio: number }[];
  /** The quantizers the fixes would change: the outputs of the residual stream and of the LayerNorm inputs, as found. */
  residualNodes: string[];
  layerNormInputs: string[];
  diagnosis: string;
}

/** The role of a node's output, from the ops around it. */
export function sequenceRole(graph: Graph, node: GraphNode): SequenceRole {
  if (graph.consumers(node.name).some((c) => c.op === "layerNorm")) return "layerNormInput";
  if (node.op === "layerNorm" || node.op === "add") return "residual";
  if (node.op === "matMul" || (node.op === "activation" && node.attrs.fn === "softmax")) return "attention";
  return "other";
}

/** Nodes whose output is a float [batch, tokens, dim] sequence. */
function sequenceNodes(graph: Graph): GraphNode[] {
  return graph.nodes.filter((n) => n.outputShape.length === 3 && !(n.op === "input" && n.attrs.dtype === "int32"));
}

const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[(s.length - 1) >> 1] : 0;
};

/**
 * Per-embedding and per-token views of a transformer's activations, and the
 * dimensions that stretch a per-tensor range (Bondarenko et al., 2021: BERT's
 * residual sums carry a few dimensions a hundred times wider than the rest,
 * so one 8-bit grid over the whole tensor has few steps left for the others).
 *
 * Steps: 1. the nodes and their roles (LayerNorm input, residual stream,
 * attention, other); 2. one FP32 pass over `data` collecting, per node, the
 * min / max per embedding dimension, the largest |value| per token, and for
 * the heat-map nodes the largest and mean |value| per token × dimension;
 * 3. outliers: dimensions at least `threshold` × the median dimension;
 * 4. the diagnosis and the quantizers the fixes would change.
 * With a simulation as subject, its graph is read (FP32, quantizers off).
 */
export async function outlierDimensions(subject: Graph | QuantSim, options: OutlierDimensionsOptions): Promise<OutlierDimensionsResult> {
  const data = requireData("outlierDimensions", options);
  const graph = subject instanceof QuantSim ? subject.graph : subject;
  if (!(graph instanceof Graph)) throw new Error("outlierDimensions: the subject must be a Graph (qd.loadGraph) or a QuantSim");
  const threshold = options.threshold ?? 6;
  if (typeof threshold !== "number" || !(threshold > 1)) throw new Error(`outlierDimensions: threshold must be a number above 1, got ${JSON.stringify(options.threshold)}`);

  // 1. Nodes and roles.
  const candidates = sequenceNodes(graph);
  if (candidates.length === 0) throw new Error(`outlierDimensions: "${graph.name}" has no [batch, tokens, dim] activation (per-token and per-embedding views need a sequence model)`);
  const wanted = options.nodes ?? candidates.map((n) => n.name);
  for (const name of wanted) {
    const n = graph.node(name);
    if (n.outputShape.length !== 3) throw new Error(`outlierDimensions: "${name}" has output shape [${n.outputShape.join(", ")}], not [batch, tokens, dim]`);
  }
  const role = new Map(wanted.map((name) => [name, sequenceRole(graph, graph.node(name))]));
  const heat = new Set(options.heatmapNodes ?? wanted.filter((n) => role.get(n) === "layerNormInput"));
  for (const name of heat) if (!role.has(name)) throw new Error(`outlierDimensions: heat-map node "${name}" is not among the nodes looked at`);

  // 2. One pass.
  interface Acc { tokens: number; dims: number; min: Float64Array; max: Float64Array; tokenAbs: Float64Array; cellMax?: Float64Array; cellSum?: Float64Array }
  const accs = new Map<string, Acc>();
  let examples = 0;
  await forEachBatch(graph, data, { task: "outlier dimensions", onProgress: options.onProgress }, (batch) => {
    const outputs = forward(graph, batch.inputs, {
      hook: (node, out) => {
        if (!role.has(node.name)) return;
        const [b, tokens, dims] = out.shape as number[];
        let a = accs.get(node.name);
        if (!a) {
          a = { tokens, dims, min: new Float64Array(dims).fill(Infinity), max: new Float64Array(dims).fill(-Infinity), tokenAbs: new Float64Array(tokens) };
          if (heat.has(node.name)) {
            a.cellMax = new Float64Array(tokens * dims);
            a.cellSum = new Float64Array(tokens * dims);
          }
          accs.set(node.name, a);
        }
        const v = out.dataSync();
        for (let e = 0; e < b; e++) {
          for (let t = 0; t < tokens; t++) {
            const base = (e * tokens + t) * dims;
            for (let d = 0; d < dims; d++) {
              const x = v[base + d];
              if (x < a.min[d]) a.min[d] = x;
              if (x > a.max[d]) a.max[d] = x;
              const ax = Math.abs(x);
              if (ax > a.tokenAbs[t]) a.tokenAbs[t] = ax;
              if (a.cellMax) {
                const c = t * dims + d;
                if (ax > a.cellMax[c]) a.cellMax[c] = ax;
                a.cellSum![c] += ax;
              }
            }
          }
        }
      },
    });
    examples += batch.inputs[0].shape[0];
    tf.dispose(outputs);
  });

  // 3. Ranges, outliers, heat maps.
  const nodes: SequenceNodeSummary[] = [];
  const ranges: EmbeddingRange[] = [];
  const heatmap: TokenDimensionCell[] = [];
  for (const name of wanted) {
    const a = accs.get(name)!;
    const absMax = Array.from(a.min, (m, d) => Math.max(Math.abs(m), Math.abs(a.max[d])));
    const med = median(absMax);
    const ratios = absMax.map((v) => (med > 0 ? v / med : 1));
    const outliers = ratios.map((r, d) => [r, d]).filter(([r]) => r >= threshold).sort((x, y) => y[0] - x[0]).map(([, d]) => d);
    absMax.forEach((v, d) => ranges.push({ node: name, role: role.get(name)!, dim: d, min: a.min[d], max: a.max[d], absMax: v, ratio: ratios[d], outlier: ratios[d] >= threshold }));
    const tokenMed = median(Array.from(a.tokenAbs));
    nodes.push({
      node: name,
      role: role.get(name)!,
      tokens: a.tokens,
      dims: a.dims,
      medianAbsMax: med,
      maxAbsMax: Math.max(...absMax),
      ratio: Math.max(...ratios),
      tokenRatio: tokenMed > 0 ? Math.max(...a.tokenAbs) / tokenMed : 1,
      outliers,
    });
    if (a.cellMax) {
      for (let t = 0; t < a.tokens; t++) {
        for (let d = 0; d < a.dims; d++) heatmap.push({ node: name, token: t, dim: d, absMax: a.cellMax[t * a.dims + d], meanAbs: a.cellSum![t * a.dims + d] / examples });
      }
    }
  }
  const outliers = ranges.filter((r) => r.outlier).map((r) => ({ node: r.node, role: r.role, dim: r.dim, absMax: r.absMax, ratio: r.ratio })).sort((x, y) => y.ratio - x.ratio);
  const residualNodes = wanted.filter((n) => role.get(n) === "residual" || role.get(n) === "layerNormInput");
  const layerNormInputs = wanted.filter((n) => role.get(n) === "layerNormInput");

  // 4. Diagnosis.
  return { step: "outlier-dimensions", threshold, examples, nodes, ranges, heatmap, outliers, residualNodes, layerNormInputs, diagnosis: diagnose(nodes, outliers, threshold) };
}

function diagnose(nodes: SequenceNodeSummary[], outliers: OutlierDimensionsResult["outliers"], threshold: number): string {
  const widest = nodes.reduce((w, n) => (n.ratio > w.ratio ? n : w));
  const widestToken = nodes.reduce((w, n) => (n.tokenRatio > w.tokenRatio ? n : w));
  const tokens = `Across token positions the widest is ${widestToken.tokenRatio.toFixed(1)}× the median position (${widestToken.node}).`;
  if (outliers.length === 0) {
    return `No outlier dimension: in every one of the ${nodes.length} sequence activations the widest embedding dimension stays below ${threshold}× the median one (at most ${widest.ratio.toFixed(1)}×, in ${widest.node}). A per-tensor grid fits these ranges; per-embedding-group quantization has little to win, and a drop comes from the number of steps (bit-width), not from one dimension. ${tokens}`;
  }
  const byNode = new Map<string, number[]>();
  for (const o of outliers) byNode.set(o.node, [...(byNode.get(o.node) ?? []), o.dim]);
  const top = outliers[0];
  const onStream = outliers.filter((o) => o.role === "layerNormInput" || o.role === "residual").length;
  const where = [...byNode].slice(0, 4).map(([n, dims]) => `${n} (dim ${dims.slice(0, 4).join(", ")}${dims.length > 4 ? ", …" : ""})`).join("; ");
  return `${outliers.length} outlier dimension${outliers.length > 1 ? "s" : ""} in ${byNode.size} activation${byNode.size > 1 ? "s" : ""}, ${onStream} of them on the residual stream: ${where}. The widest, dim ${top.dim} of ${top.node}, reaches ${top.ratio.toFixed(1)}× the median dimension, so a per-tensor 8-bit grid leaves the typical dimension about ${Math.max(1, Math.round(255 / top.ratio))} steps. The fixes they call for: per-embedding-group activation quantization of these quantizers, a higher bit-width for the residual stream, or 16-bit LayerNorm inputs (measure them with qd.outlierFixes). ${tokens}`;
}
