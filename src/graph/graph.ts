import * as tf from "@tensorflow/tfjs";
import { InputSpec } from "../data/types";
import { GraphNode } from "./types";

/** One row of `Graph.summary()`: what `qdebug info` prints. */
export interface NodeSummary {
  index: number;
  name: string;
  op: string;
  layerClass: string;
  inputs: string[];
  outputShape: (number | null)[];
  params: Record<string, number[]>;
  paramCount: number;
}

/**
 * What a model built with a second copy of tfjs looks like from here: tfjs-layers'
 * `instanceof` checks fail silently (a Sequential walks as empty) and its tensors
 * belong to another engine. One copy is the cure: tfjs is a peer dependency.
 */
const ANOTHER_TFJS =
  `a model built by another copy of @tensorflow/tfjs than qdebug's (${tf.version.tfjs}) gives this. ` +
  "Install tfjs once in your project: `npm ls @tensorflow/tfjs-core` lists the copies; qdebug takes tfjs as a peer dependency, so remove any copy nested under node_modules/qdebug";

/**
 * An explicit dataflow graph imported from a layers model. Nodes are kept in
 * execution order (every node after its inputs). The graph owns its parameter
 * tensors: call `dispose()` when done with it.
 */
export class Graph {
  readonly name: string;
  readonly nodes: readonly GraphNode[];
  /** Names of the input nodes, in the model's input order. */
  readonly inputs: readonly string[];
  /** Names of the nodes whose outputs are the model's outputs, in order. */
  readonly outputs: readonly string[];
  private readonly byName: Map<string, GraphNode>;
  private readonly consumerMap: Map<string, GraphNode[]>;

  constructor(init: { name: string; nodes: GraphNode[]; inputs: string[]; outputs: string[] }) {
    this.name = init.name;
    this.nodes = init.nodes;
    this.inputs = init.inputs;
    this.outputs = init.outputs;
    if (init.nodes.length === 0) throw new Error(`graph "${init.name}" has no nodes: ${ANOTHER_TFJS}`);
    for (const n of init.nodes) {
      for (const [key, t] of Object.entries(n.params)) {
        if (!(t instanceof tf.Tensor)) throw new Error(`node "${n.name}": parameter "${key}" is not a tensor of the @tensorflow/tfjs qdebug uses: ${ANOTHER_TFJS}`);
      }
    }
    this.byName = new Map(init.nodes.map((n) => [n.name, n]));
    if (this.byName.size !== init.nodes.length) throw new Error(`graph "${init.name}" has duplicate node names`);
    this.consumerMap = new Map(init.nodes.map((n) => [n.name, []]));
    init.nodes.forEach((n, i) => {
      for (const src of n.inputs) {
        const producer = this.byName.get(src);
        if (!producer) throw new Error(`node "${n.name}" reads "${src}", which is not in the graph`);
        if (init.nodes.indexOf(producer) >= i) throw new Error(`node "${n.name}" comes before its input "${src}"`);
        this.consumerMap.get(src)!.push(n);
      }
    });
    for (const name of [...init.inputs, ...init.outputs]) this.node(name);
  }

  /** The node called `name`; an error listing close names if there is none. */
  node(name: string): GraphNode {
    const n = this.byName.get(name);
    if (n) return n;
    const close = this.nodes.filter((x) => x.name.includes(name) || name.includes(x.name)).map((x) => x.name);
    throw new Error(`no node named "${name}" in graph "${this.name}"${close.length ? ` (did you mean ${close.slice(0, 5).join(", ")}?)` : ""}`);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Nodes that read `name`'s output. */
  consumers(name: string): readonly GraphNode[] {
    this.node(name);
    return this.consumerMap.get(name)!;
  }

  /** What each model input expects, in input order. */
  get inputSpecs(): InputSpec[] {
    return this.inputs.map((name) => {
      const n = this.node(name);
      return { name, shape: [...n.outputShape], dtype: n.attrs.dtype === "int32" ? "int32" : "float32" };
    });
  }

  /** Parameter count of one node, or of the whole graph. */
  paramCount(nodeName?: string): number {
    const nodes = nodeName === undefined ? this.nodes : [this.node(nodeName)];
    return nodes.reduce((sum, n) => sum + Object.values(n.params).reduce((s, t) => s + t.size, 0), 0);
  }

  summary(): NodeSummary[] {
    return this.nodes.map((n, index) => ({
      index,
      name: n.name,
      op: n.op,
      layerClass: n.layerClass,
      inputs: [...n.inputs],
      outputShape: [...n.outputShape],
      params: Object.fromEntries(Object.entries(n.params).map(([k, t]) => [k, t.shape])),
      paramCount: Object.values(n.params).reduce((s, t) => s + t.size, 0),
    }));
  }

  /** Frees every parameter tensor the graph owns. */
  dispose(): void {
    const seen = new Set<tf.Tensor>();
    for (const n of this.nodes) for (const t of Object.values(n.params)) seen.add(t);
    for (const t of seen) if (!t.isDisposed) t.dispose();
  }
}
