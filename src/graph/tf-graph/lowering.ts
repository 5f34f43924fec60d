import * as tf from "@tensorflow/tfjs";
import { Attrs, Params } from "../types";
import { TfAttr, TfNode } from "./tf-node";

/**
 * What a TF op's lowering sees of one node: its inputs (computed graph values
 * or folded constants), their shapes at the import's probe batch of 1, its
 * decoded attributes, and a way to add graph nodes.
 */
export interface TfLoweringContext {
  readonly node: TfNode;
  /** Number of value inputs (control dependencies excluded). */
  readonly arity: number;
  isConstant(i: number): boolean;
  /** The graph node computing input i; an error naming the node if it is a constant. */
  value(i: number): string;
  /** Input i's folded value (the importer owns it: clone what you keep); an error if it is computed. */
  constant(i: number, what: string): tf.Tensor;
  /** Input i's folded value as plain numbers. */
  ints(i: number, what: string): number[];
  /** Shape of input i at the probe batch of 1. */
  shape(i: number): number[];
  attr<T extends TfAttr>(name: string, fallback?: T): T;
  /** Adds a graph node and returns its name (the TF name, or TF name + "/" + suffix for helpers). */
  emit(op: string, inputs: string[], attrs?: Attrs, params?: Params, suffix?: string): string;
  /** The op and attrs of a graph node already emitted, for fusing a following op into it. */
  emitted(name: string): { op: string; attrs: Attrs; params: Params } | undefined;
  /** Whether `name` (a graph node) is read by this TF node only and is no model output, so it may be rewritten. */
  soleReader(name: string): boolean;
  /** Replaces an emitted node's attrs and params in place (fusion); its inputs stay. */
  rewrite(name: string, attrs: Attrs, params: Params): void;
  fail(why: string): never;
}

/** Returns the graph node name of each TF output the node has (index 0 first). */
export type TfLowering = (ctx: TfLoweringContext) => string | string[];

const lowerings = new Map<string, TfLowering>();

export function registerTfOp(ops: string | string[], lowering: TfLowering): void {
  for (const op of typeof ops === "string" ? [ops] : ops) lowerings.set(op, lowering);
}

export function getTfLowering(op: string): TfLowering | undefined {
  return lowerings.get(op);
}

export function supportedTfOps(): string[] {
  return [...lowerings.keys(), ...PASS_OPS, "Const", "Placeholder"].sort();
}

/** Ops that forward their first input unchanged. */
export const PASS_OPS = ["Identity", "StopGradient", "Snapshot", "PreventGradient"];

/** TF's "SAME" / "VALID" (EXPLICIT handled by the conv lowerings). */
export function paddingOf(ctx: TfLoweringContext): "same" | "valid" {
  const p = ctx.attr<string>("padding", "VALID");
  if (p === "SAME") return "same";
  if (p === "VALID") return "valid";
  return ctx.fail(`padding "${p}" is not supported here`);
}

/** NHWC is the only data format qdebug runs (what tfjs-converter writes for TF.js). */
export function requireNhwc(ctx: TfLoweringContext): void {
  const f = ctx.attr<string>("data_format", "NHWC");
  if (f !== "NHWC") ctx.fail(`data_format "${f}" is not supported (only NHWC)`);
}
