import * as tf from "@tensorflow/tfjs";

/** Named parameter tensors of a node (kernel, bias, gamma, moving_mean, ...). */
export type Params = Record<string, tf.Tensor>;

/** Plain, JSON-friendly attributes of a node (strides, padding, activation, ...). */
export type Attrs = Record<string, unknown>;

/**
 * One operation of the dataflow graph. Each node produces exactly one tensor,
 * named like the node; `inputs` are the names of the nodes feeding it, in order.
 */
export interface GraphNode {
  /** Unique and stable: the Keras layer name, prefixed "outer/" for flattened nested models. */
  readonly name: string;
  /** Op kind, a key of the op registry ("conv2d", "batchNorm", "add", ...). */
  readonly op: string;
  /** The Keras class the node was imported from ("Conv2D", "ReLU", ...). */
  readonly layerClass: string;
  readonly inputs: readonly string[];
  readonly params: Params;
  readonly attrs: Attrs;
  /** Output shape with the batch axis first (null where any size goes). */
  readonly outputShape: readonly (number | null)[];
}

/** Executes one op kind with tfjs ops; called inside a tidy by the runner. */
export interface OpKernel {
  readonly op: string;
  run(node: GraphNode, inputs: tf.Tensor[], params: Params): tf.Tensor;
}

/** What the importer knows about one call of a Keras layer. */
export interface LayerCall {
  name: string;
  className: string;
  /** The layer's `getConfig()` (camelCase keys, as tfjs serializes them). */
  config: Record<string, unknown>;
  /** Copies of the layer's weights, keyed by their short name ("kernel", "bias"...); owned by the importer. */
  weights: Params;
  inputShapes: (number | null)[][];
}

/** The lowered form of a layer call; weights not listed in `params` are disposed by the importer. */
export interface Lowered {
  op: string;
  attrs: Attrs;
  params: Params;
}

/** Turns calls of one or more Keras layer classes into graph nodes. */
export interface LayerLowering {
  readonly classNames: readonly string[];
  lower(call: LayerCall): Lowered;
}
