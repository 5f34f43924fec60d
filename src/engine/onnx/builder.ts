import { onnx } from "onnx-proto";

/** Element types we write into ONNX models. */
export type OnnxDtype = "float32" | "int32" | "int64" | "uint8" | "int8" | "uint16" | "int16" | "bool";

const DTYPE: Record<OnnxDtype, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  uint16: onnx.TensorProto.DataType.UINT16,
  int16: onnx.TensorProto.DataType.INT16,
  bool: onnx.TensorProto.DataType.BOOL,
};

const BYTES: Record<OnnxDtype, number> = { float32: 4, int32: 4, int64: 8, uint8: 1, int8: 1, uint16: 2, int16: 2, bool: 1 };

/** An attribute value: numbers are ints unless written as `{ f: x }`; arrays of numbers are ints. */
export type AttrValue = number | { f: number } | string | number[] | { floats: number[] } | onnx.IGraphProto;

/** Opset of the default domain we target: QuantizeLinear with 16-bit types and ReduceMean with axes as input. */
export const OPSET = 21;

/**
 * Builds one ONNX graph: initializers, inputs, nodes and outputs, with names
 * kept unique. Plain data in, protobuf bytes out (`toModel`); lowering code
 * never touches the protobuf types.
 */
export class OnnxGraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();

  private readonly reserved = new Set<string>();

  /** A fresh name derived from `base` (ONNX names must be unique in a graph). */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name) || this.reserved.has(name); i++) name = `${base}__${i}`;
    this.used.add(name);
    return name;
  }

  /** Keeps `name` free for a later `node(..., { exactName })` (the model's output names). */
  reserve(name: string): void {
    this.reserved.add(name);
  }

  /** Declares a graph input; `dims` entries of null are symbolic. */
  input(name: string, dtype: OnnxDtype, dims: readonly (number | null)[]): string {
    const n = this.fresh(name);
    this.inputs.push(valueInfo(n, dtype, dims));
    return n;
  }

  output(name: string, dtype: OnnxDtype, dims?: readonly (number | null)[]): void {
    this.outputs.push(valueInfo(name, dtype, dims));
  }

  /** A constant tensor; identical small constants are shared. */
  constant(data: ArrayLike<number> | ArrayBufferView, dims: readonly number[], dtype: OnnxDtype = "float32", base = "const"): string {
    const bytes = rawBytes(data, dtype);
    const key = bytes.length <= 64 ? `${dtype}:${dims.join("x")}:${Buffer.from(bytes).toString("hex")}` : undefined;
    const known = key && this.constants.get(key);
    if (known) return known;
    const name = this.fresh(base);
    this.initializers.push({ name, dims: [...dims], dataType: DTYPE[dtype], rawData: bytes });
    if (key) this.constants.set(key, name);
    return name;
  }

  /** Shorthands for int64 and float constants (shapes, axes, bounds). */
  ints(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant(values, dims, "int64", "ints");
  }

  scalar(value: number, dtype: OnnxDtype = "float32"): string {
    return this.constant([value], [], dtype, "scalar");
  }

  /** Adds a node and returns the names of its outputs (one unless `outputs` says more). */
  node(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue | undefined> = {}, options: { name?: string; exactName?: string; outputs?: number; domain?: string } = {}): string[] {
    const base = options.name ?? opType;
    const exact = options.exactName !== undefined && !this.used.has(options.exactName) ? options.exactName : undefined;
    if (exact) this.used.add(exact);
    const outs = Array.from({ length: options.outputs ?? 1 }, (_, i) => (i === 0 && exact ? exact : this.fresh(i === 0 ? base : `${base}:${i}`)));
    this.nodes.push({
      opType,
      domain: options.domain,
      name: this.fresh(`n:${base}`),
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => attribute(k, v!)),
    });
    return outs;
  }

  /** The graph as a protobuf message (for If branches). */
  toGraph(name: string): onnx.IGraphProto {
    return { name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs };
  }

  /** The serialized model. */
  toModel(name: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 10,
      producerName: "qdebug",
      opsetImport: [{ domain: "", version: OPSET }],
      graph: this.toGraph(name),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dtype: OnnxDtype, dims?: readonly (number | null)[]): onnx.IValueInfoProto {
  const shape = dims && { dim: dims.map((d, i) => (d === null || d < 0 ? { dimParam: `d${i}` } : { dimValue: d })) };
  return { name, type: { tensorType: { elemType: DTYPE[dtype], shape } } };
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return { name, type: T.INT, i: v };
  if (typeof v === "string") return { name, type: T.STRING, s: Buffer.from(v, "utf8") };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ("f" in v && typeof v.f === "number") return { name, type: T.FLOAT, f: v.f };
  if ("floats" in v && Array.isArray(v.floats)) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.GRAPH, g: v as onnx.IGraphProto };
}

/** Little-endian bytes of `data` as `dtype` (what TensorProto.raw_data holds). */
function rawBytes(data: ArrayLike<number> | ArrayBufferView, dtype: OnnxDtype): Uint8Array {
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
    const matches =
      (dtype === "float32" && data instanceof Float32Array) || (dtype === "int32" && data instanceof Int32Array) ||
      (dtype === "uint8" && data instanceof Uint8Array) || (dtype === "int8" && data instanceof Int8Array) ||
      (dtype === "uint16" && data instanceof Uint16Array) || (dtype === "int16" && data instanceof Int16Array);
    if (matches) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  }
  const values = data as ArrayLike<number>;
  const out = new Uint8Array(values.length * BYTES[dtype]);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    switch (dtype) {
      case "float32": view.setFloat32(i * 4, v, true); break;
      case "int32": view.setInt32(i * 4, v, true); break;
      case "int64": view.setBigInt64(i * 8, BigInt(v), true); break;
      case "uint8": case "bool": view.setUint8(i, v); break;
      case "int8": view.setInt8(i, v); break;
      case "uint16": view.setUint16(i * 2, v, true); break;
      case "int16": view.setInt16(i * 2, v, true); break;
    }
  }
  return out;
}
