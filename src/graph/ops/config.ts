import { LayerCall } from "../types";

/**
 * Readers for Keras layer configs: each turns one raw field into its canonical
 * form once, at import, with an error that names the layer, so kernels never
 * re-check options (the Observable Plot way).
 */
function fail(call: LayerCall, field: string, why: string): never {
  throw new Error(`layer "${call.name}" (${call.className}): ${field} ${why}`);
}

export function pair(call: LayerCall, field: string, fallback?: number): [number, number] {
  const v = call.config[field] ?? fallback;
  if (typeof v === "number") return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number")) return [v[0], v[1]];
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === "number") return [v[0], v[0]];
  return fail(call, field, `must be a number or a pair of numbers, got ${JSON.stringify(v)}`);
}

export function single(call: LayerCall, field: string, fallback?: number): number {
  const v = call.config[field] ?? fallback;
  if (typeof v === "number") return v;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === "number") return v[0];
  return fail(call, field, `must be a number, got ${JSON.stringify(v)}`);
}

export function padding(call: LayerCall): "same" | "valid" {
  const v = call.config.padding ?? "valid";
  if (v === "same" || v === "valid") return v;
  return fail(call, "padding", `"${String(v)}" is not supported (expected "same" or "valid")`);
}

/** Only channels-last data is supported; tfjs in Node runs NHWC kernels anyway. */
export function channelsLast(call: LayerCall): void {
  const v = call.config.dataFormat;
  if (v !== undefined && v !== null && v !== "channelsLast") {
    fail(call, "dataFormat", `"${String(v)}" is not supported (only channelsLast)`);
  }
}

export function bool(call: LayerCall, field: string, fallback: boolean): boolean {
  const v = call.config[field];
  return typeof v === "boolean" ? v : fallback;
}

export function axisList(call: LayerCall, field: string, fallback: number): number[] {
  const v = call.config[field] ?? fallback;
  if (typeof v === "number") return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
  return fail(call, field, `must be an axis or a list of axes, got ${JSON.stringify(v)}`);
}

/** Rank of the (single) input, batch axis included. */
export function inputRank(call: LayerCall): number {
  return call.inputShapes[0].length;
}

/** Resolves a possibly negative axis against a rank. */
export function positiveAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export function requireWeight(call: LayerCall, name: string): void {
  if (!call.weights[name]) {
    fail(call, "weights", `lack "${name}" (found: ${Object.keys(call.weights).join(", ") || "none"})`);
  }
}

/** Attributes of a 2-D convolution (Conv2D, DepthwiseConv2D, SeparableConv2D). */
export interface Conv2dAttrs {
  strides: [number, number];
  padding: "same" | "valid";
  dilations: [number, number];
  activation: string;
}

/** Reads a 2-D convolution's config once; `activation` comes from the caller's activation reader. */
export function conv2dAttrs(call: LayerCall, activation: string): Conv2dAttrs {
  channelsLast(call);
  return { strides: pair(call, "strides", 1), padding: padding(call), dilations: pair(call, "dilationRate", 1), activation };
}
