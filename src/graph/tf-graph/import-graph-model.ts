import * as tf from "@tensorflow/tfjs";
import { Graph } from "../graph";
import { getOp } from "../registry";
import { Attrs, GraphNode, Params } from "../types";
import "../ops/all";
import "./lower-conv";
import "./lower-math";
import "./lower-shape";
import { controlFlowError, cutHint, cutPoints } from "./control-flow";
import { uniqueLabels } from "./labels";
import { getTfLowering, PASS_OPS, supportedTfOps, TfLoweringContext } from "./lowering";
import { parseNode, parseRef, RawTfNode, refKey, TfNode, TfRef } from "./tf-node";
import { forward } from "../forward";

export interface GraphModelImportOptions {
  /**
   * TF tensors to end the graph at ("node" or "node:1") instead of the model's
   * outputs: cut a detection model before its control flow and post-processing.
   */
  outputs?: readonly string[];
  /**
   * TF tensors (node names) to start the graph at instead of the model's inputs,
   * with their full shapes: cut off pre-processing the graph cannot run (a loop
   * that resizes the image). They are fed float32 values.
   */
  inputs?: Readonly<Record<string, readonly number[]>>;
  /** Full shapes for inputs whose sizes the model leaves open (besides the batch), by input name. */
  inputShapes?: Readonly<Record<string, readonly number[]>>;
  /** The graph's name; default "graph-model" (loadGraph uses the model's folder name). */
  name?: string;
}

/** Ops whose output depends on their input's shape only, which is known at import. */
/** What the importer reads of one model input (tfjs-converter's TensorInfo). */
interface InputInfo {
  name: string;
  info: { shape?: number[]; dtype: string };
}

const SHAPE_ONLY = new Set(["Shape", "ShapeN", "Size", "Rank"]);

/**
 * Imports a tf.GraphModel (tfjs-converter's output) into an explicit `Graph`:
 *   1. read its GraphDef, inputs and outputs (the signature's, else TF.js's own
 *      choice: placeholders and leaf nodes), or the cut points `outputs` give;
 *   2. keep the nodes the outputs need, refusing control flow (naming op, node
 *      and cut points) and ops without a lowering (naming op and node);
 *   3. fold constants and shape-only subgraphs (Shape → StridedSlice → Pack →
 *      Reshape) with TF.js's own executor on a probe batch of 1;
 *   4. lower each computed node through the TF op registry into graph ops,
 *      running each on the probe batch as it is made (so lowerings know their
 *      input shapes, and any failure names the node);
 *   5. run the graph at batch 2 to learn which axes follow the batch; a graph
 *      that cannot (a batch of 1 baked into a constant) keeps a batch of 1.
 * The model is left as it was; the graph owns copies of the weights it keeps.
 */
export function importGraphModel(model: tf.GraphModel, options: GraphModelImportOptions = {}): Graph {
  const name = options.name ?? "graph-model";
  const artifacts = (model as unknown as { artifacts?: tf.io.ModelArtifacts }).artifacts;
  const raw = artifacts?.modelTopology as { node?: RawTfNode[] } | undefined;
  if (!raw || !Array.isArray(raw.node)) throw new Error(`graph model ${name} has no GraphDef (modelTopology.node): was it loaded with tf.loadGraphModel?`);
  const tfNodes = new Map(raw.node.map((n) => [n.name, parseNode(n)]));

  // 1. Inputs and outputs.
  const inputs: InputInfo[] = options.inputs
    ? Object.entries(options.inputs).map(([input, shape]) => {
        if (!tfNodes.has(input)) throw new Error(`graph model ${name} has no node "${input}" to start at${closeNames(input, tfNodes)}`);
        return { name: input, info: { shape: [...shape], dtype: "float32" } };
      })
    : model.inputs.map((info) => ({ name: info.name.replace(/:0$/, ""), info: { shape: info.shape, dtype: info.dtype } }));
  const outputs = (options.outputs ?? modelOutputs(model, artifacts)).map((o) => parseRef(o)!);
  if (!outputs.length) throw new Error(`graph model ${name} names no outputs (no signature, and every node is read by another): give them with loadGraph(path, { outputs: ["node", ...] })`);
  for (const o of outputs) if (!tfNodes.has(o.node)) throw new Error(`graph model ${name} has no node "${o.node}" to output${closeNames(o.node, tfNodes)}`);
  const inputNames = new Set(inputs.map((i) => i.name));

  // 2. The nodes the outputs need, in dependency order.
  const cyclic: string[] = [];
  const order = neededNodes(name, outputs, tfNodes, inputNames, cyclic);
  const isStatic = staticNodes(order);
  // Nodes the graph starts at are inputs, whatever op made them.
  const asInputs = order.map((n) => (inputNames.has(n.name) ? { ...n, op: "Placeholder", inputs: [] } : n));
  const flow = controlFlowError(name, asInputs, (n) => isStatic.has(n) || tfNodes.get(n)?.op === "Const");
  if (flow) throw flow;
  if (cyclic.length) throw new Error(`graph model ${name}: node "${cyclic[0]}" is part of a cycle, which qdebug cannot run`);
  const computed = order.filter((n) => !isStatic.has(n.name));
  const unsupported = computed.filter((n) => !inputNames.has(n.name) && !PASS_OPS.includes(n.op) && !getTfLowering(n.op));
  if (unsupported.length) {
    const first = unsupported[0];
    const others = [...new Set(unsupported.map((n) => n.op))].filter((op) => op !== first.op);
    const bad = new Set(unsupported.map((n) => n.name));
    const cuts = cutPoints(order, (n) => bad.has(n.name), (n) => isStatic.has(n));
    throw new Error(
      `graph model ${name}: op ${first.op} at node "${first.name}" is not supported${others.length ? ` (nor ${others.join(", ")})` : ""}; ` +
        `${cuts.length ? `cut the graph before it with ${cutHint(cuts)}` : "no cut before it leaves a network"}. Supported ops: ${supportedTfOps().join(", ")}`,
    );
  }

  // 3. Probe inputs at batch 1, and the folded constants computed nodes read.
  const probeShapes = new Map(inputs.map(({ name: input, info }) => [input, probeShape(name, input, options.inputShapes?.[input] ?? info.shape)]));
  const folded = new Map<string, tf.Tensor>();
  const executed: tf.Tensor[] = [];
  const nodes: GraphNode[] = [];
  const probe = new Map<string, tf.Tensor>();
  try {
    foldConstants(model, computed, isStatic, tfNodes, probeShapes, inputs, folded, executed);

    // 4. Lower.
    const lowered = lowerNodes(name, computed, tfNodes, inputs, probeShapes, folded, outputs, nodes, probe);
    const outNames = outputs.map((o) => lowered.refToNode.get(refKey(o))!);
    tf.dispose([...probe.values()]);
    probe.clear();
    const labels = uniqueLabels(nodes.map((n) => n.name));
    const labelled = nodes.map((n) => ({ ...n, attrs: { ...n.attrs, label: labels.get(n.name) } }));

    // 5. Which axes follow the batch.
    return withBatchAxes(name, labelled, [...inputNames], outNames, lowered.shapes);
  } catch (err) {
    tf.dispose(nodes.flatMap((n) => Object.values(n.params)));
    throw err;
  } finally {
    tf.dispose(executed);
    tf.dispose([...probe.values()]);
  }
}

/**
 * The TF tensors the model outputs: its signature's (whose keys are not node
 * names), else what TF.js chose (the nodes no other node reads).
 */
export function modelOutputs(model: tf.GraphModel, artifacts?: tf.io.ModelArtifacts): string[] {
  const signature = (artifacts?.signature as { outputs?: Record<string, { name?: string }> } | undefined)?.outputs;
  const named = signature ? Object.values(signature).map((o) => o.name).filter((n): n is string => typeof n === "string") : [];
  return named.length ? named.map((n) => n.replace(/:0$/, "")) : model.outputs.map((o) => o.name);
}

function closeNames(wanted: string, nodes: Map<string, TfNode>): string {
  const close = [...nodes.keys()].filter((n) => n.includes(wanted) || wanted.includes(n)).slice(0, 5);
  return close.length ? ` (did you mean ${close.join(", ")}?)` : "";
}

/** The probe's shape of one input: batch 1, every other size known. */
function probeShape(model: string, input: string, shape: readonly number[] | undefined): number[] {
  const hint = `loadGraph(path, { inputShapes: { ${JSON.stringify(input)}: [1, ...] } })`;
  if (!shape) throw new Error(`graph model ${model}: input "${input}" has no known rank; give its shape with ${hint}`);
  const open = shape.map((d, i) => (i > 0 && (d == null || d < 0) ? i : -1)).filter((i) => i >= 0);
  if (open.length) {
    throw new Error(`graph model ${model}: input "${input}" has open sizes [${shape.map((d) => (d == null || d < 0 ? "?" : d)).join(", ")}] (axes ${open.join(", ")}); give its size with ${hint}`);
  }
  return shape.map((d, i) => (i === 0 && (d == null || d < 0) ? 1 : d));
}

/** Depth-first from the outputs (iteratively: graphs run to thousands of nodes), stopping at the inputs. */
function neededNodes(model: string, outputs: readonly TfRef[], nodes: Map<string, TfNode>, inputs: Set<string>, cyclic: string[]): TfNode[] {
  const order: TfNode[] = [];
  const state = new Map<string, "open" | "done">();
  for (const out of outputs) {
    const stack: { name: string; next: number }[] = [{ name: out.node, next: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const node = nodes.get(top.name)!;
      if (top.next === 0) {
        if (state.get(top.name) === "done") { stack.pop(); continue; }
        state.set(top.name, "open");
        if (node.op === "Placeholder" && !inputs.has(node.name)) {
          throw new Error(`graph model ${model}: the outputs need placeholder "${node.name}", which is not a model input (inputs: ${[...inputs].join(", ")})`);
        }
      }
      const deps = inputs.has(node.name) ? [] : node.inputs;
      if (top.next < deps.length) {
        const dep = deps[top.next++].node;
        if (!nodes.has(dep)) throw new Error(`graph model ${model}: node "${node.name}" reads "${dep}", which is not in the graph`);
        // A loop's back edge: skipped here; the control-flow check names the loop's ops.
        if (state.get(dep) === "open") { cyclic.push(node.name); continue; }
        if (state.get(dep) !== "done") stack.push({ name: dep, next: 0 });
        continue;
      }
      state.set(top.name, "done");
      order.push(node);
      stack.pop();
    }
  }
  return order;
}

/** Nodes whose value is known at import: constants, shapes of inputs, and what only they feed. */
function staticNodes(order: readonly TfNode[]): Set<string> {
  const known = new Set<string>();
  for (const n of order) {
    if (n.op === "Placeholder") continue;
    if (n.op === "Const" || SHAPE_ONLY.has(n.op) || n.inputs.every((r) => known.has(r.node))) known.add(n.name);
  }
  return known;
}

/**
 * Values of the static refs computed nodes read: constants from the model's
 * weights, anything else from TF.js's executor on the probe batch, so folded
 * shapes are exactly what GraphModel.execute computes.
 */
function foldConstants(model: tf.GraphModel, computed: readonly TfNode[], isStatic: Set<string>, nodes: Map<string, TfNode>, probeShapes: Map<string, number[]>, inputs: InputInfo[], folded: Map<string, tf.Tensor>, executed: tf.Tensor[]): void {
  const refs = new Map<string, TfRef>();
  for (const n of computed) for (const r of n.inputs) if (isStatic.has(r.node)) refs.set(refKey(r), r);
  const toRun: TfRef[] = [];
  for (const [key, r] of refs) {
    if (nodes.get(r.node)!.op === "Const") {
      const value = model.weights[r.node]?.[r.index];
      if (!value) throw new Error(`constant "${r.node}" has no value among the model's weights`);
      folded.set(key, value);
    } else {
      toRun.push(r);
    }
  }
  if (!toRun.length) return;
  const feeds = Object.fromEntries(inputs.map(({ name, info }, i) => [name, info.dtype === "int32" ? tf.zeros(probeShapes.get(name)!, "int32") : tf.randomUniform(probeShapes.get(name)!, 0, 1, "float32", 1 + i)]));
  try {
    let out: tf.Tensor | tf.Tensor[];
    try {
      out = model.execute(feeds, toRun.map((r) => `${r.node}:${r.index}`));
    } catch (err) {
      throw new Error(`TF.js's own executor fails on this graph model while folding its shape computations (${toRun.map(refKey).slice(0, 3).join(", ")}): ${(err as Error).message}`);
    }
    const list = Array.isArray(out) ? out : [out];
    executed.push(...list);
    toRun.forEach((r, i) => folded.set(refKey(r), list[i]));
  } finally {
    tf.dispose(Object.values(feeds));
  }
}

interface Lowered {
  refToNode: Map<string, string>;
  /** Every graph node's output shape at batch 1. */
  shapes: Map<string, number[]>;
}

/** Step 4: each computed TF node through its lowering, probing as it goes (see importGraphModel). */
function lowerNodes(model: string, computed: readonly TfNode[], tfNodes: Map<string, TfNode>, inputs: InputInfo[], probeShapes: Map<string, number[]>, folded: Map<string, tf.Tensor>, outputs: readonly TfRef[], nodes: GraphNode[], probe: Map<string, tf.Tensor>): Lowered {
  const refToNode = new Map<string, string>();
  const shapes = new Map<string, number[]>();
  const index = new Map<string, number>();
  // Pending reads of each graph node's value by TF nodes not lowered yet; outputs are read at the end.
  const readers = new Map<string, number>();
  const outputNodes = new Set<string>();
  const reads = new Map<string, number>();
  for (const n of computed) for (const r of n.inputs) if (!folded.has(refKey(r))) reads.set(refKey(r), (reads.get(refKey(r)) ?? 0) + 1);
  const outputKeys = new Set(outputs.map(refKey));
  const bind = (key: string, node: string) => {
    refToNode.set(key, node);
    readers.set(node, (readers.get(node) ?? 0) + (reads.get(key) ?? 0));
    if (outputKeys.has(key)) outputNodes.add(node);
  };
  const release = (node: string) => {
    const left = readers.get(node)! - 1;
    readers.set(node, left);
    if (left === 0 && !outputNodes.has(node)) {
      probe.get(node)?.dispose();
      probe.delete(node);
    }
  };
  const add = (node: GraphNode, value: tf.Tensor) => {
    index.set(node.name, nodes.length);
    nodes.push(node);
    probe.set(node.name, value);
    shapes.set(node.name, value.shape);
  };

  for (const n of computed) {
    const info = inputs.find((i) => i.name === n.name);
    if (info) {
      const shape = probeShapes.get(n.name)!;
      const dtype = info.info.dtype === "int32" ? "int32" : "float32";
      add({ name: n.name, op: "input", layerClass: "Placeholder", inputs: [], params: {}, attrs: { dtype, tfName: n.name }, outputShape: shape }, dtype === "int32" ? tf.zeros(shape, "int32") : tf.randomUniform(shape, 0, 1, "float32", 1));
      bind(n.name, n.name);
      continue;
    }
    const refName = (i: number) => refToNode.get(refKey(n.inputs[i]));
    if (PASS_OPS.includes(n.op)) {
      bind(n.name, refName(0)!);
      release(refName(0)!);
      continue;
    }
    const fail = (why: string): never => {
      throw new Error(`graph model ${model}: node "${n.name}" (op ${n.op}): ${why}`);
    };
    const emittedNow: string[] = [];
    // Which TF weight (a Const in the manifest) each constant argument came from, for weight names.
    const read = new Map<string, string>();
    const ctx: TfLoweringContext = {
      node: n,
      arity: n.inputs.length,
      isConstant: (i) => folded.has(refKey(n.inputs[i])),
      value: (i) => {
        if (i >= n.inputs.length) fail(`has no input ${i}`);
        return refName(i) ?? fail(`its input ${i} ("${refKey(n.inputs[i])}") is a constant where a computed value is expected`);
      },
      constant: (i, what) => {
        if (i >= n.inputs.length) fail(`lacks its ${what} (input ${i})`);
        if (tfNodes.get(n.inputs[i].node)?.op === "Const") read.set(what, n.inputs[i].node);
        return folded.get(refKey(n.inputs[i])) ?? fail(`its ${what} (input ${i}, "${refKey(n.inputs[i])}") is computed from the data, not a constant`);
      },
      ints: (i, what) => Array.from(ctx.constant(i, what).dataSync()),
      shape: (i) => folded.get(refKey(n.inputs[i]))?.shape ?? shapes.get(ctx.value(i))!,
      attr: <T>(key: string, fallback?: T) => {
        const v = n.attrs[key];
        if (v !== undefined && v !== null) return v as T;
        if (fallback !== undefined) return fallback;
        return fail(`lacks attribute ${key}`);
      },
      emit: (op, ins, attrs = {}, params = {}, suffix) => {
        let nodeName = suffix ? `${n.name}/${suffix}` : n.name;
        for (let k = 1; index.has(nodeName); k++) nodeName = `${n.name}/${suffix ?? op}_${k}`;
        const weights = weightNames(params, read);
        const node: GraphNode = { name: nodeName, op, layerClass: n.op, inputs: ins, params, attrs: { ...attrs, tfName: n.name, ...(weights ? { weights } : {}) }, outputShape: [] };
        let value: tf.Tensor;
        try {
          value = tf.tidy(() => getOp(op).run(node, ins.map((i) => probe.get(i)!), params));
        } catch (err) {
          tf.dispose(Object.values(params));
          return fail(`the ${op} it lowers to failed on the probe batch: ${(err as Error).message}`);
        }
        add(node, value);
        emittedNow.push(nodeName);
        return nodeName;
      },
      emitted: (nodeName) => {
        const i = index.get(nodeName);
        return i === undefined ? undefined : nodes[i];
      },
      soleReader: (nodeName) => readers.get(nodeName) === 1 && !outputNodes.has(nodeName),
      rewrite: (nodeName, attrs, params) => {
        const i = index.get(nodeName)!;
        const old = nodes[i];
        const kept = new Set(Object.values(params));
        tf.dispose(Object.values(old.params).filter((t) => !kept.has(t)));
        const weights = { ...(old.attrs.weights as Record<string, string> | undefined), ...weightNames(params, read) };
        nodes[i] = { ...old, attrs: { ...attrs, tfName: n.name, weights }, params };
      },
      fail,
    };
    const result = getTfLowering(n.op)!(ctx);
    const outs = typeof result === "string" ? [result] : result;
    outs.forEach((o, k) => bind(k === 0 ? n.name : `${n.name}:${k}`, o));
    // Helper nodes (a padding before a convolution) were read by the node emitted after them.
    for (const e of emittedNow) if (!outs.includes(e)) { probe.get(e)?.dispose(); probe.delete(e); }
    for (let i = 0; i < n.inputs.length; i++) if (!folded.has(refKey(n.inputs[i]))) release(refName(i)!);
  }
  for (const o of outputs) {
    const node = refToNode.get(refKey(o));
    if (node === undefined) throw new Error(`graph model ${model}: output "${refKey(o)}" is a constant, not computed from the inputs`);
  }
  return { refToNode, shapes };
}

/** The role each lowering reads a constant as, by the param key it becomes. */
const PARAM_ROLES: Record<string, string[]> = { kernel: ["filter", "matrix"], depthwise_kernel: ["filter"], bias: ["bias", "operand"], alpha: ["PReLU alpha", "alpha"], operand: ["operand"], value: ["value", "params", "operand"] };

/** Param key → the TF weight it was read from (tfjs-converter's weight name), where known. */
function weightNames(params: Params, read: Map<string, string>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const key of Object.keys(params)) {
    const role = (PARAM_ROLES[key] ?? []).find((r) => read.has(r));
    if (role) out[key] = read.get(role)!;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Runs the graph at batch 2 to mark the axes that follow the batch (null in
 * outputShape). A graph that fails there, or whose model fixed another batch,
 * keeps the probe's shapes: a batch of 1.
 */
function withBatchAxes(name: string, nodes: GraphNode[], inputs: string[], outputs: string[], shapes: Map<string, number[]>): Graph {
  const fixed = new Graph({ name, nodes: nodes.map((n) => ({ ...n, outputShape: shapes.get(n.name)! })), inputs, outputs });
  const seen = new Map<string, number[]>();
  const batch = inputs.map((i) => {
    const s = [2, ...shapes.get(i)!.slice(1)];
    return fixed.node(i).attrs.dtype === "int32" ? tf.zeros(s, "int32") : tf.randomUniform(s, 0, 1, "float32", 2);
  });
  try {
    if (inputs.some((i) => shapes.get(i)![0] !== 1)) return fixed;
    tf.dispose(forward(fixed, batch, { hook: (node, out) => void seen.set(node.name, out.shape), outputs: nodes.map((n) => n.name).filter((n) => fixed.consumers(n).length === 0 || outputs.includes(n)) }));
  } catch {
    return fixed;
  } finally {
    tf.dispose(batch);
  }
  // Every output must carry the batch; one that does not (a batch of 1 baked into a reshape) means the graph runs at 1 only.
  if (nodes.some((n) => !seen.has(n.name)) || outputs.some((o) => seen.get(o)![0] !== 2)) return fixed;
  return new Graph({
    name,
    nodes: nodes.map((n) => {
      const one = shapes.get(n.name)!;
      const two = seen.get(n.name)!;
      return { ...n, outputShape: one.map((d, i) => (two.length === one.length && two[i] !== d ? null : d)) };
    }),
    inputs,
    outputs,
  });
}
