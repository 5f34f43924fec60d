import * as tf from "@tensorflow/tfjs";
import { Graph } from "./graph";
import { getLowering, supportedLayerClasses } from "./registry";
import { GraphNode, LayerCall, Params } from "./types";
import "./ops/all";

/**
 * Imports a tfjs layers model into an explicit `Graph`:
 *   1. walk the model's own topology (its functional config: layers with their
 *      inbound nodes), in the model's execution order;
 *   2. lower each layer call through the registry (one lowering per Keras class);
 *      nested models are walked in place, their nodes prefixed "outer/";
 *   3. copy the weights the lowering keeps, so the graph is independent of the model.
 * A layer class without a lowering is an error naming it: nothing is dropped or
 * approximated silently.
 */
export function importLayersModel(model: tf.LayersModel): Graph {
  const nodes: GraphNode[] = [];
  try {
    const { inputs, outputs } = walk(functionalOf(model), "", undefined, nodes);
    return new Graph({ name: model.name, nodes, inputs, outputs });
  } catch (err) {
    tf.dispose(nodes.flatMap((n) => Object.values(n.params)));
    throw err;
  }
}

/** The parts of tfjs-layers' Container and Node internals the walk reads. */
interface LiveNode {
  inboundLayers: tf.layers.Layer[];
  nodeIndices: number[];
  tensorIndices: number[];
  outputShapes: (number | null)[] | (number | null)[][];
}
type LiveLayer = tf.layers.Layer & { inboundNodes: LiveNode[] };
interface ContainerInternals {
  layers: LiveLayer[];
  containerNodes: Set<string>;
  inputLayers: LiveLayer[];
  inputLayersNodeIndices: number[];
  inputLayersTensorIndices: number[];
  outputLayers: LiveLayer[];
  outputLayersNodeIndices: number[];
  outputLayersTensorIndices: number[];
}

/** Sequential models keep a functional model inside; everything else is one already. */
function functionalOf(model: tf.LayersModel): tf.LayersModel {
  if (model instanceof tf.Sequential) {
    // tfjs builds a Sequential's inner functional model lazily, on first call.
    const seq = model as unknown as { model?: tf.LayersModel; build(): void };
    if (!seq.model && model.layers.length > 0) seq.build();
    if (!seq.model) throw new Error(`Sequential model "${model.name}" has no layers or no input shape yet`);
    return seq.model;
  }
  return model;
}

const tensorKey = (layer: string, node: number, tensor: number) => `${layer}:${node}:${tensor}`;

/**
 * Walks one container. `bound` maps its inputs to outer node names when it is a
 * nested model; otherwise its inputs become "input" nodes. Returns the names of
 * the graph nodes holding its inputs and outputs.
 */
function walk(model: tf.LayersModel, prefix: string, bound: string[] | undefined, nodes: GraphNode[]) {
  // The live topology, not getConfig(): its node numbering is not consistent for
  // nested models called inside another model. Keys use tfjs's own node indices.
  const container = model as unknown as ContainerInternals;
  const produced = new Map<string, string>();
  const shapeOf = (name: string) => nodes.find((n) => n.name === name)!.outputShape as (number | null)[];

  const inputs = container.inputLayers.map((layer, i) => {
    let name: string;
    if (bound) {
      name = bound[i];
    } else {
      const config = layer.getConfig();
      name = prefix + layer.name;
      nodes.push({
        name,
        op: "input",
        layerClass: "InputLayer",
        inputs: [],
        params: {},
        attrs: { dtype: config.dtype === "int32" ? "int32" : "float32" },
        outputShape: (config.batchInputShape as (number | null)[] | undefined) ?? [null],
      });
    }
    produced.set(tensorKey(layer.name, container.inputLayersNodeIndices[i], container.inputLayersTensorIndices[i]), name);
    return name;
  });

  // Every call of every layer that belongs to this model, run in dependency order
  // (a shared layer's later calls can read tensors made after its first call).
  const pending: { layer: LiveLayer; node: LiveNode; index: number; call: number }[] = [];
  for (const layer of container.layers) {
    if (layer.getClassName() === "InputLayer") continue;
    let call = 0;
    layer.inboundNodes.forEach((node, index) => {
      if (container.containerNodes.has(`${layer.name}_ib-${index}`)) pending.push({ layer, node, index, call: call++ });
    });
  }
  const sourceKeys = (node: LiveNode) => node.inboundLayers.map((l, j) => tensorKey(l.name, node.nodeIndices[j], node.tensorIndices[j]));

  while (pending.length > 0) {
    const ready = pending.findIndex(({ node }) => sourceKeys(node).every((key) => produced.has(key)));
    if (ready < 0) {
      const stuck = pending[0];
      const missing = stuck.node.inboundLayers.find((_, j) => !produced.has(sourceKeys(stuck.node)[j]))!;
      throw new Error(`layer "${prefix}${stuck.layer.name}" reads "${missing.name}", which no layer of the model computes`);
    }
    const [{ layer, node, index, call: k }] = pending.splice(ready, 1);
    const inputNames = sourceKeys(node).map((key) => produced.get(key)!);
    const name = prefix + layer.name + (k > 0 ? `_call${k}` : "");
    if (layer instanceof tf.LayersModel) {
      const inner = walk(functionalOf(layer), `${name}/`, inputNames, nodes);
      inner.outputs.forEach((o, j) => produced.set(tensorKey(layer.name, index, j), o));
      continue;
    }
    const className = layer.getClassName();
    const lowering = getLowering(className);
    if (!lowering) {
      throw new Error(`unsupported layer "${prefix}${layer.name}" (class ${className}); qdebug supports: ${supportedLayerClasses().join(", ")}`);
    }
    const call: LayerCall = {
      name,
      className,
      config: layer.getConfig() as Record<string, unknown>,
      weights: copyWeights(layer),
      inputShapes: inputNames.map(shapeOf),
    };
    let lowered;
    try {
      lowered = lowering.lower(call);
    } catch (err) {
      tf.dispose(Object.values(call.weights));
      throw err;
    }
    const kept = new Set(Object.values(lowered.params));
    tf.dispose(Object.values(call.weights).filter((t) => !kept.has(t)));
    const shape = node.outputShapes;
    nodes.push({
      name,
      op: lowered.op,
      layerClass: className,
      inputs: inputNames,
      params: lowered.params,
      attrs: lowered.attrs,
      outputShape: Array.isArray(shape[0]) ? (shape[0] as (number | null)[]) : (shape as (number | null)[]),
    });
    produced.set(tensorKey(layer.name, index, 0), name);
  }

  const outputs = container.outputLayers.map((layer, i) => {
    const name = produced.get(tensorKey(layer.name, container.outputLayersNodeIndices[i], container.outputLayersTensorIndices[i]));
    if (!name) throw new Error(`model output "${layer.name}" is not computed by any node`);
    return name;
  });
  return { inputs, outputs };
}

/** Copies of a layer's weights keyed by short name ("conv1/kernel" -> "kernel"). */
function copyWeights(layer: tf.layers.Layer): Params {
  const weights: Params = {};
  for (const v of layer.weights) {
    const short = v.originalName.split("/").pop()!.replace(/:\d+$/, "");
    weights[short] = tf.clone(v.read());
  }
  return weights;
}
