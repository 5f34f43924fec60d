import { Graph } from "../../graph/graph";
import { GraphNode } from "../../graph/types";

/** A run of consecutive nodes (in execution order) lowered as one ONNX session. */
export interface Segment {
  index: number;
  /** Nodes of the segment, in execution order. */
  nodes: string[];
  /** Values computed before the segment and read in it or after it: what it is fed. */
  liveIn: string[];
  /** Values computed in or before it and read after it: what it hands on. */
  liveOut: string[];
  /** Graph outputs computed in the segment. */
  outputs: string[];
}

/** Rough cost of a node: multiply-adds for weighted ops, values written otherwise. */
function nodeCost(node: GraphNode): number {
  const values = node.outputShape.slice(1).reduce<number>((a, d) => a * (d ?? 32), 1);
  const weights = Object.values(node.params).reduce((a, t) => a + t.size, 0);
  const channels = (node.outputShape[node.outputShape.length - 1] ?? 1) as number;
  return values * Math.max(1, weights / Math.max(1, channels));
}

/**
 * Splits a graph into about `count` segments of similar cost, cutting only
 * where few values cross (one, on chains like MobileNetV2's blocks), so each
 * cut hands little data from one session to the next. Variants of a
 * simulation that differ only after a cut share everything before it.
 * Only values in `cuttable` may cross a cut (default: any): pass the
 * activation quantizers' nodes, which are exactly the tensors a runtime keeps
 * after fusing ops, so a cut never splits a conv from its BatchNorm or ReLU.
 */
export function planSegments(graph: Graph, count: number, cuttable?: ReadonlySet<string>): Segment[] {
  const nodes = graph.nodes;
  // Graph outputs are handed out by the segment that computes them, so only reads by later nodes keep a value alive.
  const lastRead = new Map<string, number>();
  nodes.forEach((n, i) => n.inputs.forEach((src) => lastRead.set(src, i)));
  // Values alive across the gap after node i, kept as one running set.
  const liveSets: string[][] = [];
  const live = new Set<string>();
  nodes.forEach((n, i) => {
    if ((lastRead.get(n.name) ?? -1) > i) live.add(n.name);
    for (const src of n.inputs) if (lastRead.get(src) === i) live.delete(src);
    liveSets.push([...live]);
  });
  const liveAfter = (i: number) => liveSets[i];
  const costs = nodes.map(nodeCost);
  const total = costs.reduce((a, b) => a + b, 0);
  const target = total / Math.max(1, count);
  const size = new Map(nodes.map((n) => [n.name, n.outputShape.slice(1).reduce<number>((a, d) => a * (d ?? 32), 1)]));
  // Where a cut may go, and how many values per example would cross it: handing data between sessions costs copies.
  const crossingSize = (i: number): number | undefined => {
    const crossing = liveAfter(i);
    if (crossing.length === 0 || crossing.length > 2) return undefined;
    if (cuttable && !crossing.every((name) => cuttable.has(name))) return undefined;
    return crossing.reduce((a, name) => a + size.get(name)!, 0);
  };
  const cuts: number[] = [];
  let start = 0;
  while (start < nodes.length - 1) {
    // The cheapest crossing among the cuts that leave this segment between 0.6 and 1.6 times the target cost.
    let acc = 0;
    let best: { i: number; size: number } | undefined;
    for (let i = start; i < nodes.length - 1; i++) {
      acc += costs[i];
      if (acc > 1.6 * target && best) break;
      if (acc < 0.6 * target) continue;
      const crossing = crossingSize(i);
      if (crossing !== undefined && (!best || crossing < best.size)) best = { i, size: crossing };
    }
    if (!best || total - costs.slice(0, best.i + 1).reduce((a, b) => a + b, 0) < 0.4 * target) break;
    cuts.push(best.i);
    start = best.i + 1;
  }
  const bounds = [-1, ...cuts, nodes.length - 1];
  const segments: Segment[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const from = bounds[k] + 1;
    const to = bounds[k + 1];
    const names = nodes.slice(from, to + 1).map((n) => n.name);
    segments.push({
      index: k,
      nodes: names,
      liveIn: from === 0 ? [] : liveAfter(from - 1),
      liveOut: to === nodes.length - 1 ? [] : liveAfter(to),
      outputs: names.filter((n) => graph.outputs.includes(n)),
    });
  }
  return segments;
}
