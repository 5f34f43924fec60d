import { TfNode } from "./tf-node";

/**
 * TF control flow and the dynamic ops that come with it: loops, conditionals,
 * tensor arrays and lists, and detection post-processing whose output size
 * depends on the data. qdebug's graph is a fixed dataflow, so a model that
 * needs them is cut before them (the network body, the part that is quantized).
 */
const CONTROL_FLOW = new Set([
  "Enter", "Exit", "Switch", "Merge", "LoopCond", "NextIteration", "RefEnter", "RefExit", "RefSwitch", "RefMerge", "RefNextIteration",
  "If", "StatelessIf", "While", "StatelessWhile", "Where",
  "TensorArrayV3", "TensorArrayReadV3", "TensorArrayWriteV3", "TensorArrayGatherV3", "TensorArrayScatterV3", "TensorArrayConcatV3", "TensorArraySplitV3", "TensorArraySizeV3", "TensorArrayCloseV3",
  "TensorListReserve", "TensorListFromTensor", "TensorListStack", "TensorListSetItem", "TensorListGetItem", "TensorListLength", "TensorListConcat", "TensorListSplit", "TensorListPopBack", "TensorListPushBack", "TensorListResize", "TensorListGather", "TensorListScatter", "TensorListScatterV2", "TensorListElementShape",
  "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV4", "NonMaxSuppressionV5",
]);

export function isControlFlow(op: string): boolean {
  return CONTROL_FLOW.has(op);
}

/**
 * Where to cut a graph before the nodes `barrier` picks (control flow, an op
 * qdebug does not run) and everything downstream of them: computed values
 * (not constants, not the inputs themselves) that feed them without depending
 * on them. Loops feed back, so the downstream set is spread to a fixed point.
 */
export function cutPoints(order: readonly TfNode[], barrier: (n: TfNode) => boolean, isConstant: (name: string) => boolean): string[] {
  const tainted = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of order) {
      if (!tainted.has(n.name) && (barrier(n) || n.inputs.some((r) => tainted.has(r.node)))) {
        tainted.add(n.name);
        changed = true;
      }
    }
  }
  const fromData = new Set<string>();
  for (const n of order) if (n.op === "Placeholder" || n.inputs.some((r) => fromData.has(r.node))) fromData.add(n.name);
  const byName = new Map(order.map((n) => [n.name, n]));
  const cuts = new Set<string>();
  for (const n of order) {
    if (!tainted.has(n.name)) continue;
    for (const r of n.inputs) {
      if (!tainted.has(r.node) && !isConstant(r.node) && fromData.has(r.node) && byName.get(r.node)?.op !== "Placeholder") cuts.add(r.index ? `${r.node}:${r.index}` : r.node);
    }
  }
  return [...cuts];
}

/** `loadGraph(path, { outputs: [...] })` filled with cut points, for error messages. */
export function cutHint(candidates: readonly string[]): string {
  const shown = candidates.slice(0, 12).map((c) => JSON.stringify(c)).join(", ");
  return `loadGraph(path, { outputs: [${shown}${candidates.length > 12 ? ", …" : ""}] }) (CLI: --outputs a,b)`;
}

/**
 * The error for a graph with control flow among the nodes its outputs need:
 * names the op and node, and lists cut points ready to pass as `outputs`.
 */
export function controlFlowError(modelName: string, order: readonly TfNode[], isConstant: (name: string) => boolean): Error | undefined {
  const flow = order.filter((n) => isControlFlow(n.op));
  if (!flow.length) return undefined;
  const candidates = cutPoints(order, (n) => isControlFlow(n.op), isConstant);
  const ops = [...new Set(flow.map((n) => n.op))];
  const first = flow[0];
  const what = `graph model ${modelName} has control flow, which qdebug cannot run: op ${first.op} at node "${first.name}"` +
    `${flow.length > 1 ? ` (and ${flow.length - 1} more nodes: ${ops.join(", ")})` : ""}. `;
  if (!candidates.length) {
    return new Error(`${what}It reads the model's inputs directly (pre-processing in a loop or a conditional), so no cut before it leaves a network to debug.`);
  }
  return new Error(`${what}Cut the graph before it and debug the network body: ${cutHint(candidates)}; ${candidates.length} value(s) feed the control flow without depending on it.`);
}
