import { Graph } from "../../graph/graph";
import { getOp } from "../../graph/registry";
import { GraphNode, OnnxLayout, OnnxLoweringContext, OnnxValue, WeightLayout } from "../../graph/types";
import { channelsFirstPerm } from "../../graph/ops/onnx-common";
import { OnnxDtype, OnnxGraphBuilder } from "./builder";

/**
 * How an activation quantizer is lowered. Its encoding is fed per run (scale,
 * zero point, clip bounds), so one session serves every variant of a
 * simulation; only the storage type and whether it can be switched off are
 * fixed in the model.
 *  - "uint8" / "uint16": QuantizeLinear → DequantizeLinear, which compute our
 *    quantize-dequantize exactly (true division, round half to even); a Clip
 *    first when the grid has fewer codes than the storage type.
 *  - "float": Div → Round → Clip → Mul, for grids wider than 16 bits.
 */
export interface QuantizerLowering {
  /** Quantizer name (feeds are named after it). */
  name: string;
  storage: "uint8" | "uint16" | "float";
  clip: boolean;
  /** A boolean input chooses between the quantized and the original value. */
  switchable: boolean;
  /** Encoding values baked in as constants (an exported model) instead of fed per run. */
  constants?: { scale: number; zeroPoint: number; lo: number; hi: number };
}

/** Where a parameter comes from in the lowered model. */
export type ParamSource = { kind: "constant"; data?: Float32Array } | { kind: "input" };

export interface LowerOptions {
  /** Activation quantizers by node name (the node's output is quantized). */
  quantizers?: ReadonlyMap<string, QuantizerLowering>;
  /** Each parameter's source (default: a constant holding the graph's own values). */
  paramSource?: (node: GraphNode, key: string) => ParamSource;
  /** Nodes whose (quantized) outputs the model returns, in the graph's layout; default: the graph's outputs. */
  outputs?: readonly string[];
  /** Nodes whose outputs are also returned, in whatever layout the engine keeps them (for statistics and caches). */
  taps?: readonly { node: string; before?: "quantizer" }[];
  /** Node outputs fed from outside instead of computed (cached intermediates), in the layout `layouts` records. */
  fed?: readonly string[];
  /** Layouts of fed values, from an earlier lowering of the same graph. */
  layouts?: ReadonlyMap<string, OnnxValue>;
}

/** One input of the lowered model and what it carries. */
export type LoweredInput =
  | { kind: "model"; onnx: string; node: string; dtype: OnnxDtype }
  | { kind: "fed"; onnx: string; node: string; layout: OnnxLayout }
  | { kind: "param"; onnx: string; node: string; key: string; layout?: WeightLayout }
  | { kind: "quantizer"; onnx: string; quantizer: string; field: "scale" | "zeroPoint" | "lo" | "hi" | "on"; dtype: OnnxDtype };

export interface LoweredOutput {
  onnx: string;
  node: string;
  /** "output": a model output in the graph's layout; "tap": a node's value in the engine's layout. */
  role: "output" | "tap";
  layout: OnnxLayout;
  before?: "quantizer";
}

export interface LoweredModel {
  bytes: Uint8Array;
  inputs: LoweredInput[];
  outputs: LoweredOutput[];
  /** Every lowered node's output value (layout and rank), for lowering parts of the graph later. */
  values: Map<string, OnnxValue>;
}

/**
 * Lowers a graph (or the part of it that the requested outputs need, starting
 * from fed values) to an ONNX model. Tensors flow channels-first between
 * spatial ops and are transposed only where an op needs the graph's own order
 * (reshapes, dense layers, the model's outputs): NHWC is handled at the edges.
 */
export function lowerGraph(graph: Graph, options: LowerOptions = {}): LoweredModel {
  const b = new OnnxGraphBuilder();
  const inputs: LoweredInput[] = [];
  const fed = new Set(options.fed ?? []);
  const outputs = options.outputs ?? graph.outputs;
  const taps = options.taps ?? [];
  const needed = neededNodes(graph, [...outputs, ...taps.map((t) => t.node)], fed);
  outputs.forEach((name) => b.reserve(name));
  const { values, raw, as } = lowerNodes(b, graph, needed, inputs, { ...options, fed });

  // Outputs: the model's in the graph's layout; taps as they are.
  const lowered: LoweredOutput[] = [];
  const declared = new Set<string>();
  const declare = (name: string, node: string, role: LoweredOutput["role"], layout: OnnxLayout, before?: "quantizer") => {
    // A graph value can be declared an output only once: alias repeats through Identity.
    const onnxName = declared.has(name) || b.inputs.some((i) => i.name === name) ? b.node("Identity", [name], {}, { name: `${node}:${role}` })[0] : name;
    declared.add(onnxName);
    b.output(onnxName, node === "" ? "float32" : dtypeOf(graph.node(node)));
    lowered.push({ onnx: onnxName, node, role, layout, before });
  };
  for (const name of outputs) {
    // Model outputs carry the graph's output names, so an exported model reads like the TF.js one.
    const v = as(values.get(name)!, "native");
    declare(v === name ? v : b.node("Identity", [v], {}, { exactName: name, name })[0], name, "output", "native");
  }
  for (const t of taps) {
    const v = t.before === "quantizer" ? raw.get(t.node)! : values.get(t.node)!;
    declare(v.name, t.node, "tap", v.rank >= 3 ? v.layout : "native", t.before);
  }
  return { bytes: b.toModel(graph.name), inputs, outputs: lowered, values: new Map(raw) };
}

/** The nodes that computing `targets` needs, stopping at fed values and model inputs. */
export function neededNodes(graph: Graph, targets: readonly string[], fed: ReadonlySet<string> = new Set()): Set<string> {
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name)) return;
    needed.add(name);
    const node = graph.node(name);
    if (!fed.has(name) && node.op !== "input") node.inputs.forEach(visit);
  };
  targets.forEach(visit);
  return needed;
}

/** How one copy of the graph's nodes is lowered into a builder. */
export interface InstanceOptions {
  quantizers?: ReadonlyMap<string, QuantizerLowering>;
  paramSource?: (node: GraphNode, key: string) => ParamSource;
  /** Node outputs fed as model inputs instead of computed, in the layouts `layouts` records. */
  fed?: ReadonlySet<string>;
  layouts?: ReadonlyMap<string, OnnxValue>;
  /** Values already in the builder (another copy's, or its model inputs): used as they are. */
  given?: ReadonlyMap<string, OnnxValue>;
}

/**
 * Lowers the `needed` nodes in execution order into `b`, quantizing outputs
 * where a quantizer sits. One model can hold several copies of the graph
 * (FP32 beside quantized, sharing the model inputs through `given`).
 * Returns each node's value after its quantizer (`values`) and before (`raw`).
 */
export function lowerNodes(
  b: OnnxGraphBuilder,
  graph: Graph,
  needed: ReadonlySet<string>,
  inputs: LoweredInput[],
  options: InstanceOptions = {},
): { values: Map<string, OnnxValue>; raw: Map<string, OnnxValue>; as: (v: OnnxValue, layout: OnnxLayout) => string } {
  const fed = options.fed ?? new Set<string>();
  const values = new Map<string, OnnxValue>();
  const raw = new Map<string, OnnxValue>();
  const converted = new Map<string, string>();
  const params = new Map<string, string>();

  const as = (v: OnnxValue, layout: OnnxLayout) => {
    if (v.layout === layout || v.rank < 3) return v.name;
    const key = `${v.name}→${layout}`;
    let name = converted.get(key);
    if (!name) {
      const toFirst = channelsFirstPerm(v.rank);
      const perm = layout === "channelsFirst" ? toFirst : toFirst.map((_, i) => toFirst.indexOf(i));
      name = b.node("Transpose", [v.name], { perm }, { name: `${v.name}:${layout}` })[0];
      converted.set(key, name);
    }
    return name;
  };
  const ctx: OnnxLoweringContext = {
    node: (opType, ins, attrs = {}, opts = {}) => b.node(opType, ins, attrs as Record<string, never>, opts)[0],
    nodeOutputs: (opType, ins, attrs, opts) => b.node(opType, ins, attrs as Record<string, never>, opts),
    constant: (data, dims, dtype = "float32") => b.constant(data, dims, dtype),
    ints: (values) => b.ints(values),
    as,
    param: (node, key, layout) => {
      const id = `${node.name}/${key}`;
      const known = params.get(id);
      if (known) return known;
      const t = node.params[key];
      if (!t) throw new Error(`node "${node.name}" has no parameter "${key}"`);
      const source = options.paramSource?.(node, key) ?? { kind: "constant" };
      let name: string;
      if (source.kind === "input") {
        const dims = layout ? layout(new Float32Array(t.size), t.shape).dims : t.shape;
        name = b.input(`p:${id}`, "float32", dims);
        inputs.push({ kind: "param", onnx: name, node: node.name, key, layout });
      } else {
        const data = source.data ?? (t.dataSync() as Float32Array);
        const { data: d, dims } = layout ? layout(data, t.shape) : { data, dims: t.shape };
        name = b.constant(d, dims, "float32", `p:${id}`);
      }
      params.set(id, name);
      return name;
    },
  };

  for (const node of graph.nodes) {
    if (!needed.has(node.name)) continue;
    let value: OnnxValue;
    const given = options.given?.get(node.name);
    if (given) {
      // Computed elsewhere, but quantized here if this copy quantizes it (the model input's quantizer).
      value = given;
    } else if (fed.has(node.name)) {
      const known = options.layouts?.get(node.name);
      if (!known) throw new Error(`lowerGraph: the layout of fed value "${node.name}" is unknown`);
      const name = b.input(`c:${node.name}`, dtypeOf(node), new Array(known.rank).fill(null));
      inputs.push({ kind: "fed", onnx: name, node: node.name, layout: known.layout });
      values.set(node.name, { ...known, name });
      raw.set(node.name, { ...known, name });
      continue;
    } else if (node.op === "input") {
      const dtype: OnnxDtype = node.attrs.dtype === "int32" ? "int32" : "float32";
      const name = b.input(node.name, dtype, node.outputShape);
      inputs.push({ kind: "model", onnx: name, node: node.name, dtype });
      value = { name, layout: "native", rank: node.outputShape.length };
    } else {
      const lowering = getOp(node.op).onnx;
      if (!lowering) throw new Error(`op "${node.op}" (node "${node.name}") has no ONNX lowering yet: use the tfjs engine (QDEBUG_ENGINE=tfjs)`);
      value = lowering(ctx, node, node.inputs.map((i) => values.get(i)!));
    }
    raw.set(node.name, value);
    const q = options.quantizers?.get(node.name);
    if (q) value = { ...value, name: lowerQuantizer(b, q, value.name, inputs) };
    values.set(node.name, value);
  }
  return { values, raw, as };
}

function dtypeOf(node: GraphNode): OnnxDtype {
  return node.op === "input" && node.attrs.dtype === "int32" ? "int32" : "float32";
}

/** Adds one activation quantizer after `x`; its encoding arrives as inputs. */
function lowerQuantizer(b: OnnxGraphBuilder, q: QuantizerLowering, x: string, inputs: LoweredInput[]): string {
  const feed = (field: Extract<LoweredInput, { kind: "quantizer" }>["field"], dtype: OnnxDtype) => {
    if (q.constants && field !== "on") return b.constant([q.constants[field]], [], dtype, `${q.name}:${field}`);
    const name = b.input(`q:${q.name}:${field}`, dtype, []);
    inputs.push({ kind: "quantizer", onnx: name, quantizer: q.name, field, dtype });
    return name;
  };
  const scale = feed("scale", "float32");
  let y: string;
  if (q.storage === "float") {
    // Codes as floats: round(x / scale) clamped to [lo, hi] (the grid's first and last code), times scale.
    const codes = b.node("Clip", [b.node("Round", [b.node("Div", [x, scale])[0]])[0], feed("lo", "float32"), feed("hi", "float32")])[0];
    y = b.node("Mul", [codes, scale], {}, { name: `${q.name}` })[0];
  } else {
    const zeroPoint = feed("zeroPoint", q.storage);
    const clipped = q.clip ? b.node("Clip", [x, feed("lo", "float32"), feed("hi", "float32")])[0] : x;
    const codes = b.node("QuantizeLinear", [clipped, scale, zeroPoint])[0];
    y = b.node("DequantizeLinear", [codes, scale, zeroPoint], {}, { name: q.name })[0];
  }
  return q.switchable ? b.node("Where", [feed("on", "bool"), y, x])[0] : y;
}
