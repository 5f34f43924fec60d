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
 */
export function planSegments(graph: Graph, count: number): Segment[] {
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
  const cuts: number[] = [];
  let acc = 0;
  for (let i = 0; i < nodes.length - 1; i++) {
    acc += costs[i];
    if (acc < target) continue;
    const crossing = liveAfter(i).length;
    // Cut where one value crosses; accept two once the segment is well over target.
    if (crossing === 1 || (crossing === 2 && acc > 1.5 * target)) {
      cuts.push(i);
      acc = 0;
    }
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
