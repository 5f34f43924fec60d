import { Graph } from "../graph/graph";
import { GraphNode } from "../graph/types";

/**
 * Rewrites a Keras topology (the `modelTopology` of a TF.js `model.json`, or
 * `model.toJSON(null, false)`: snake_case keys) so that it describes an edited
 * graph, e.g. one with BatchNorm folded and ReLU6 turned into ReLU by CLE:
 *   1. read the edited graph's edit record (`Graph.edits`) and check it against
 *      the graph imported from the source topology, node by node;
 *   2. refuse any other difference, naming the layer and what differs;
 *   3. apply the differences to a copy of the topology JSON.
 * Node names are Keras layer names (call k > 0 of a shared layer is "<layer>_call<k>").
 */

type Json = Record<string, unknown>;

/** [layer name, node index, tensor index, kwargs]: Keras's reference to one layer call's output. */
type InboundRef = [string, number, number, Json?];

/** What a layers model can express of the difference between the source graph and the edited one. */
export interface TopologyEdits {
  /** Source layers not in the edited graph (folded BatchNorms) → the node their consumers read instead. */
  dropped: Map<string, string>;
  /** Layers that gained a bias (a BatchNorm was folded into them). */
  biasAdded: string[];
  /** ReLU layers whose clip changed (CLE turns ReLU6 into ReLU: null). */
  reluMaxValue: Map<string, number | null>;
}

export interface TopologyRewrite {
  /** The topology to write, in the same wrapping as the source (`model_config` kept if there was one). */
  topology: Json;
  /** Graph node (not input nodes) → the Keras layer holding its weights. */
  layerOfNode: Map<string, string>;
  /** The changes made, in words, in layer order. */
  changes: string[];
}

const WEIGHTED_OPS = new Set(["conv1d", "conv2d", "dense", "depthwiseConv2d", "separableConv2d"]);
/** Node attrs a fix may change without changing what the layers model must compute. */
const IGNORED_ATTRS = new Set(["batchNormStats"]);

/**
 * What changed between `source` (imported from the source topology) and
 * `graph` (the graph to export), read from `graph.edits`: the fixes record each
 * removal, new parameter and attribute through `Graph.edit`. Every other node
 * must still match its source layer; a difference the record does not explain
 * (a graph built by hand, or loaded from another model) is an error naming the
 * layer, as is a recorded change a layers model cannot express.
 */
export function diffGraphs(source: Graph, graph: Graph): TopologyEdits {
  for (const n of graph.nodes) {
    if (!source.has(n.name)) {
      throw new Error(`graph node "${n.name}" is not a layer of the source model (source layers: ${source.nodes.slice(0, 5).map((s) => s.name).join(", ")}, ...): was the graph loaded from another model?`);
    }
  }
  const dropped = new Map<string, string>();
  const addedParams = new Map<string, { by: string; keys: Set<string> }>();
  const changedAttrs = new Map<string, { by: string; keys: Set<string> }>();
  for (const edit of graph.edits) {
    if (!source.has(edit.node)) throw new Error(`the graph's edit record names "${edit.node}" (${edit.by}), which is not a layer of the source model`);
    const s = source.node(edit.node);
    if (edit.kind === "remove") {
      if (s.op !== "batchNorm") {
        throw new Error(`layer "${s.name}" (${s.layerClass}) was removed by ${edit.by}; only a BatchNormalization folded into the layer before or after it can be left out of an exported model`);
      }
      dropped.set(s.name, edit.rewiredTo);
    } else {
      const into = edit.kind === "params" ? addedParams : changedAttrs;
      const entry = into.get(edit.node) ?? { by: edit.by, keys: new Set<string>() };
      for (const key of edit.kind === "params" ? edit.params : edit.attrs) entry.keys.add(key);
      into.set(edit.node, entry);
    }
  }
  // A folded BatchNorm's readers read what it was rewired to, through any chain of removals.
  const rename = (name: string) => {
    let r = name;
    for (let guard = 0; dropped.has(r) && guard <= dropped.size; guard++) r = dropped.get(r)!;
    return r;
  };
  for (const [name, to] of dropped) dropped.set(name, rename(to));
  for (const s of source.nodes) {
    if (!graph.has(s.name) && !dropped.has(s.name)) {
      throw new Error(`layer "${s.name}" (${s.layerClass}) of the source model is not in the graph, and the graph's edit record does not say what removed it (was the graph built without Graph.edit?)`);
    }
  }

  const biasAdded: string[] = [];
  const reluMaxValue = new Map<string, number | null>();
  for (const n of graph.nodes) {
    const s = source.node(n.name);
    const where = `layer "${n.name}" (${s.layerClass})`;
    if (n.op !== s.op || n.layerClass !== s.layerClass) throw new Error(`${where} is op ${n.op} (${n.layerClass}) in the graph but ${s.op} in the source model`);
    const expected = s.inputs.map(rename);
    if (n.inputs.join("\u0000") !== expected.join("\u0000")) {
      throw new Error(`${where} reads [${n.inputs.join(", ")}] in the graph but [${expected.join(", ")}] in the source model (after folding): a layers model cannot express the rewiring`);
    }
    const recorded = addedParams.get(n.name);
    for (const [key, t] of Object.entries(n.params)) {
      const original = s.params[key];
      if (!original) {
        if (!recorded?.keys.has(key)) throw new Error(`${where} has a parameter "${key}" the source layer does not have, and the graph's edit record does not say what added it`);
        if (key === "bias" && WEIGHTED_OPS.has(n.op)) {
          biasAdded.push(n.name);
          continue;
        }
        throw new Error(`${where}: ${recorded.by} added a parameter "${key}", which a Keras ${s.layerClass} layer cannot hold`);
      }
      if (t.shape.join(",") !== original.shape.join(",")) {
        throw new Error(`${where}: parameter "${key}" has shape [${t.shape.join(", ")}] in the graph but [${original.shape.join(", ")}] in the source model`);
      }
    }
    for (const key of Object.keys(s.params)) {
      if (!n.params[key]) throw new Error(`${where} lacks the parameter "${key}" the source layer has`);
    }
    diffAttrs(n, s, where, changedAttrs.get(n.name), reluMaxValue);
  }

  const outputs = source.outputs.map(rename);
  if (graph.outputs.join("\u0000") !== outputs.join("\u0000") || graph.inputs.join("\u0000") !== source.inputs.join("\u0000")) {
    throw new Error(`the graph's inputs/outputs [${graph.inputs.join(", ")}] → [${graph.outputs.join(", ")}] differ from the source model's [${source.inputs.join(", ")}] → [${outputs.join(", ")}]`);
  }
  return { dropped, biasAdded, reluMaxValue };
}

function diffAttrs(n: GraphNode, s: GraphNode, where: string, recorded: { by: string; keys: Set<string> } | undefined, reluMaxValue: Map<string, number | null>): void {
  const keys = new Set([...Object.keys(n.attrs), ...Object.keys(s.attrs)]);
  for (const key of keys) {
    if (IGNORED_ATTRS.has(key)) continue;
    const now = n.attrs[key];
    const was = s.attrs[key];
    if (JSON.stringify(now) === JSON.stringify(was)) continue;
    if (!recorded?.keys.has(key)) {
      throw new Error(`${where}: attribute ${key} is ${JSON.stringify(now)} in the graph but ${JSON.stringify(was)} in the source model, and the graph's edit record does not say what changed it`);
    }
    if (key === "maxValue" && n.layerClass === "ReLU") {
      if (now === null || now === undefined || (typeof now === "number" && Number.isFinite(now))) {
        reluMaxValue.set(n.name, (now as number | null | undefined) ?? null);
        continue;
      }
      throw new Error(`${where} clips each channel at its own value (CLE with relu6: "per-channel"): a Keras ReLU layer has one max_value, so this graph cannot be exported as a layers model; run crossLayerEqualization with relu6: "relu"`);
    }
    throw new Error(`${where}: ${recorded.by} set attribute ${key} to ${JSON.stringify(now)} (source model: ${JSON.stringify(was)}), which the export cannot express`);
  }
}

/** The functional config (or Sequential layer list) inside a topology, and its kind. */
function modelConfigOf(topology: Json): { inner: Json; kind: "functional" | "sequential"; layers: Json[] } {
  const inner = (topology.model_config ?? topology) as Json;
  const className = inner.class_name;
  const config = inner.config as Json | Json[] | undefined;
  if ((className === "Model" || className === "Functional") && config && !Array.isArray(config) && Array.isArray(config.layers)) {
    return { inner, kind: "functional", layers: config.layers as Json[] };
  }
  if (className === "Sequential" && config) {
    const layers = Array.isArray(config) ? config : (config.layers as Json[] | undefined);
    if (Array.isArray(layers)) return { inner, kind: "sequential", layers };
  }
  throw new Error(`the source topology is a ${JSON.stringify(className)} without a layer list; the export understands Keras functional models ("Model"/"Functional") and "Sequential"`);
}

const NESTED = new Set(["Model", "Functional", "Sequential"]);

/** Checks the topology is one the export can rewrite: flat, with inbound nodes in the classic list form. */
export function checkTopology(topology: unknown): void {
  if (topology === null || typeof topology !== "object" || Array.isArray(topology)) throw new Error("the source modelTopology is not a JSON object");
  const { kind, layers } = modelConfigOf(topology as Json);
  for (const layer of layers) {
    if (NESTED.has(layer.class_name as string)) {
      throw new Error(`layer "${String(layer.name ?? (layer.config as Json | undefined)?.name)}" is a nested ${String(layer.class_name)} model: the export writes flat models only (rebuild the model without nesting)`);
    }
    if (kind === "functional") {
      const inbound = layer.inbound_nodes;
      const ok = Array.isArray(inbound) && inbound.every((call) => Array.isArray(call) && call.every((ref) => Array.isArray(ref) && typeof ref[0] === "string"));
      if (!ok) throw new Error(`layer "${String(layer.name)}": its inbound_nodes are not in the [[layer, node, tensor, kwargs], ...] form the export can rewrite`);
    }
  }
}

const layerName = (layer: Json) => String(layer.name ?? (layer.config as Json | undefined)?.name);

/**
 * A copy of `topology` rewritten by `edits`, and which layer holds each graph
 * node's weights. `graph` is the graph to export (its node names must be the
 * layer names).
 */
export function rewriteTopology(topology: unknown, graph: Graph, edits: TopologyEdits): TopologyRewrite {
  checkTopology(topology);
  const copy = JSON.parse(JSON.stringify(topology)) as Json;
  const { inner, kind, layers } = modelConfigOf(copy);
  const changes: string[] = [];

  const layerOfNode = new Map<string, string>();
  for (const layer of layers) {
    const name = layerName(layer);
    const calls = kind === "functional" ? (layer.inbound_nodes as unknown[]).length : 1;
    for (let k = 0; k < Math.max(calls, 1); k++) layerOfNode.set(k === 0 ? name : `${name}_call${k}`, name);
  }
  for (const n of graph.nodes) {
    if (n.op === "input") continue;
    if (!layerOfNode.has(n.name)) throw new Error(`graph node "${n.name}" is not a layer of the source topology`);
  }
  for (const name of [...layerOfNode.keys()]) if (!graph.has(name)) layerOfNode.delete(name);

  const byName = new Map(layers.map((l) => [layerName(l), l]));
  for (const name of edits.biasAdded) {
    const config = byName.get(layerOfNode.get(name)!)!.config as Json;
    config.use_bias = true;
    changes.push(`${name}: use_bias true (BatchNorm folded into it)`);
  }
  for (const [name, maxValue] of edits.reluMaxValue) {
    const config = byName.get(layerOfNode.get(name)!)!.config as Json;
    changes.push(`${name}: max_value ${JSON.stringify(config.max_value ?? null)} → ${JSON.stringify(maxValue)}`);
    config.max_value = maxValue;
  }

  const kept = layers.filter((l) => !edits.dropped.has(layerName(l)));
  for (const [name, into] of edits.dropped) changes.push(`${name}: dropped (folded into ${into})`);
  if (kind === "functional") {
    // A consumer of a dropped layer's call k reads what that call read instead.
    const resolve = (ref: InboundRef): InboundRef => {
      let r = ref;
      for (let guard = 0; edits.dropped.has(r[0]); guard++) {
        const source = byName.get(r[0])!;
        const call = (source.inbound_nodes as InboundRef[][])[r[1]];
        if (!call || call.length !== 1 || guard > layers.length) throw new Error(`cannot rewire the consumers of dropped layer "${r[0]}": its call ${r[1]} does not read exactly one tensor`);
        r = [call[0][0], call[0][1], call[0][2], ...(ref.length > 3 ? [ref[3]] : [])] as InboundRef;
      }
      return r;
    };
    for (const layer of kept) layer.inbound_nodes = (layer.inbound_nodes as InboundRef[][]).map((call) => call.map(resolve));
    const config = inner.config as Json;
    config.output_layers = (config.output_layers as InboundRef[]).map((ref) => resolve(ref).slice(0, 3));
    config.layers = kept;
  } else if (Array.isArray(inner.config)) {
    inner.config = kept;
  } else {
    (inner.config as Json).layers = kept;
  }
  return { topology: copy, layerOfNode, changes };
}
