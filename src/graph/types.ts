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
  /** The same op as ONNX nodes, for the ONNX Runtime engine. */
  onnx?: OnnxLowering;
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

/**
 * How a tensor is laid out in a lowered (ONNX) graph. "native" is the graph's
 * own channels-last order; "channelsFirst" moves the last axis to position 1
 * ([N, H, W, C] as [N, C, H, W]; [N, T, C] as [N, C, T]), as ONNX's spatial ops want.
 */
export type OnnxLayout = "native" | "channelsFirst";

/** A tensor of the lowered graph: its ONNX name, layout and rank. */
export interface OnnxValue {
  readonly name: string;
  readonly layout: OnnxLayout;
  readonly rank: number;
}

/** Rewrites a weight from its graph layout to the one its ONNX op wants (e.g. HWIO to OIHW). */
export type WeightLayout = (data: Float32Array, shape: readonly number[]) => { data: Float32Array; dims: number[] };

/**
 * What an op's ONNX lowering may ask of the engine: add nodes and constants,
 * read its parameters (as constants or as inputs fed per run), and get an input
 * in the layout it wants. Implemented by the ONNX engine; declared here so the
 * graph layer does not depend on it.
 */
export interface OnnxLoweringContext {
  node(opType: string, inputs: readonly string[], attrs?: Record<string, unknown>, options?: { name?: string }): string;
  /** A node with several outputs (TopK's values and indices): their names, in order. */
  nodeOutputs(opType: string, inputs: readonly string[], attrs: Record<string, unknown>, options: { name?: string; outputs: number }): string[];
  constant(data: ArrayLike<number>, dims: readonly number[], dtype?: "float32" | "int64" | "int32"): string;
  ints(values: readonly number[]): string;
  /** The node's parameter `key`, in the layout `layout` gives (default: as stored). */
  param(node: GraphNode, key: string, layout?: WeightLayout): string;
  /** `value` in `layout` (transposed once and remembered). */
  as(value: OnnxValue, layout: OnnxLayout): string;
}

/** Lowers one node to ONNX ops; returns its output value. */
export type OnnxLowering = (ctx: OnnxLoweringContext, node: GraphNode, inputs: readonly OnnxValue[]) => OnnxValue;
