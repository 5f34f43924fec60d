import * as tf from "@tensorflow/tfjs";
import { InputSpec } from "../data/types";
import { Attrs, GraphNode, Params } from "./types";

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

/** One change a graph edit made, in the order made: what export and reports read instead of diffing graphs. */
export type GraphEdit =
  /** `params` of `node` were replaced (new values; a parameter the node lacked was added). */
  | { by: string; kind: "params"; node: string; params: string[] }
  /** `attrs` of `node` were set. */
  | { by: string; kind: "attrs"; node: string; attrs: string[] }
  /** `node` was removed; the nodes that read it read `rewiredTo` instead. */
  | { by: string; kind: "remove"; node: string; rewiredTo: string };

/** What `Graph.edit` changes; every name must be a node of the graph. */
export interface GraphChanges {
  /** Who edits, for the record (the fix's step, e.g. "fold-batch-norm"). */
  by: string;
  /** New parameter tensors by node, merged over the node's own: the new graph owns them. */
  params?: ReadonlyMap<string, Params>;
  /** Attributes by node, merged over the node's own. */
  attrs?: ReadonlyMap<string, Attrs>;
  /** Nodes to remove, each with the node whose output its readers (and the graph's outputs) take instead. */
  remove?: ReadonlyMap<string, string>;
}

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
  /** The edits that made this graph from the imported one, oldest first (empty for an imported graph). */
  readonly edits: readonly GraphEdit[];
  private readonly byName: Map<string, GraphNode>;
  private readonly consumerMap: Map<string, GraphNode[]>;

  constructor(init: { name: string; nodes: GraphNode[]; inputs: string[]; outputs: string[]; edits?: readonly GraphEdit[] }) {
    this.name = init.name;
    this.edits = init.edits ?? [];
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

  /**
   * A new graph with `changes` applied (this one is left as it was): parameters
   * replaced, attributes set, nodes removed with their readers rewired. The new
   * graph owns the given tensors and clones of every other parameter, so either
   * graph can be disposed alone. Each change is appended to `edits`.
   */
  edit(changes: GraphChanges): Graph {
    const { by } = changes;
    const params = changes.params ?? new Map<string, Params>();
    const attrs = changes.attrs ?? new Map<string, Attrs>();
    const remove = changes.remove ?? new Map<string, string>();
    for (const name of [...params.keys(), ...attrs.keys(), ...remove.keys(), ...remove.values()]) this.node(name);
    for (const [name, to] of remove) {
      if (this.inputs.includes(name)) throw new Error(`edit (${by}): "${name}" is a model input and cannot be removed`);
      if (params.has(name) || attrs.has(name)) throw new Error(`edit (${by}): "${name}" is both removed and changed`);
      if (to === name) throw new Error(`edit (${by}): "${name}" cannot be rewired to itself`);
    }
    // A reader of a removed node reads what that node was rewired to, through chains of removals.
    const target = (name: string): string => {
      const seen = new Set<string>();
      while (remove.has(name)) {
        if (seen.has(name)) throw new Error(`edit (${by}): removals rewire in a circle through "${name}"`);
        seen.add(name);
        name = remove.get(name)!;
      }
      return name;
    };
    const edits: GraphEdit[] = [];
    const made: tf.Tensor[] = [];
    try {
      const nodes = this.nodes
        .filter((n) => !remove.has(n.name))
        .map((n) => {
          const given = params.get(n.name) ?? {};
          const kept = Object.fromEntries(Object.entries(n.params).filter(([k]) => !(k in given)).map(([k, t]) => [k, tf.clone(t)]));
          made.push(...Object.values(kept));
          if (Object.keys(given).length) edits.push({ by, kind: "params", node: n.name, params: Object.keys(given) });
          const set = attrs.get(n.name);
          if (set && Object.keys(set).length) edits.push({ by, kind: "attrs", node: n.name, attrs: Object.keys(set) });
          return { ...n, inputs: n.inputs.map(target), params: { ...kept, ...given }, attrs: { ...n.attrs, ...set } };
        });
      for (const [node, to] of remove) edits.push({ by, kind: "remove", node, rewiredTo: target(to) });
      return new Graph({ name: this.name, nodes, inputs: [...this.inputs], outputs: this.outputs.map(target), edits: [...this.edits, ...edits] });
    } catch (err) {
      tf.dispose(made);
      throw err;
    }
  }

  /** Frees every parameter tensor the graph owns. */
  dispose(): void {
    const seen = new Set<tf.Tensor>();
    for (const n of this.nodes) for (const t of Object.values(n.params)) seen.add(t);
    for (const t of seen) if (!t.isDisposed) t.dispose();
  }
}

/**
 * Collects a fix's changes to a graph, then makes the new graph with
 * `Graph.edit`: reads see the changes made so far, a replaced new tensor is
 * freed at once, and `dispose()` frees what was not handed over (error paths).
 */
export class GraphEditor {
  private readonly params = new Map<string, Params>();
  private readonly attrs = new Map<string, Attrs>();
  private readonly removed = new Map<string, string>();
  private built = false;

  constructor(readonly source: Graph, readonly by: string) {}

  /** A parameter as edited so far (the source's own when unchanged). */
  param(node: string, key: string): tf.Tensor | undefined {
    return this.params.get(node)?.[key] ?? this.source.node(node).params[key];
  }

  /** Replaces a parameter with a new tensor, which the editor (then the new graph) owns. */
  setParam(node: string, key: string, value: tf.Tensor): void {
    this.source.node(node);
    const own = this.params.get(node) ?? {};
    const previous = own[key];
    if (previous && previous !== value) previous.dispose();
    own[key] = value;
    this.params.set(node, own);
  }

  /** A node's attributes as edited so far. */
  attrsOf(node: string): Attrs {
    return { ...this.source.node(node).attrs, ...this.attrs.get(node) };
  }

  setAttr(node: string, key: string, value: unknown): void {
    this.source.node(node);
    this.attrs.set(node, { ...this.attrs.get(node), [key]: value });
  }

  /** Removes a node; its readers read `rewiredTo` instead. */
  remove(node: string, rewiredTo: string): void {
    this.removed.set(node, rewiredTo);
  }

  /** The nodes changed so far (parameters or attributes). */
  changed(): string[] {
    return [...new Set([...this.params.keys(), ...this.attrs.keys()])];
  }

  /** The new graph; it owns every tensor the editor was given. */
  build(): Graph {
    if (this.built) throw new Error(`GraphEditor (${this.by}): build() was already called`);
    const graph = this.source.edit({ by: this.by, params: this.params, attrs: this.attrs, remove: this.removed });
    this.built = true;
    return graph;
  }

  /** Frees the new tensors when no graph was built from them. */
  dispose(): void {
    if (!this.built) for (const p of this.params.values()) tf.dispose(Object.values(p));
    this.params.clear();
  }
}
