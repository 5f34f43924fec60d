/**
 * A node of a TF.js graph model's GraphDef (`modelTopology.node`), with its
 * inputs split into data references and control dependencies and its
 * attributes decoded into plain values once, here.
 */
export interface TfRef {
  /** The producing node. */
  node: string;
  /** Which of its outputs (":k" in TF's notation; 0 when absent). */
  index: number;
}

export interface TfNode {
  name: string;
  op: string;
  inputs: TfRef[];
  attrs: Record<string, TfAttr>;
}

/** A decoded attribute: numbers, strings, booleans, dtypes, shapes (-1 for open), or lists of them. */
export type TfAttr = number | string | boolean | number[] | string[] | boolean[] | null;

/** The raw JSON of one node in model.json. */
export interface RawTfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, RawAttr>;
}

type RawAttr = {
  i?: string | number;
  f?: number;
  b?: boolean;
  s?: string;
  type?: string;
  shape?: { dim?: { size?: string | number }[]; unknownRank?: boolean };
  list?: { i?: (string | number)[]; f?: number[]; b?: boolean[]; s?: string[]; type?: string[] };
  tensor?: unknown;
  func?: unknown;
};

/** "name", "name:2" or "^name" (a control dependency, which carries no value). */
export function parseRef(input: string): TfRef | undefined {
  if (input.startsWith("^")) return undefined;
  const m = /^(.*):(\d+)$/.exec(input);
  return m ? { node: m[1], index: Number(m[2]) } : { node: input, index: 0 };
}

export const refKey = (r: TfRef): string => (r.index === 0 ? r.node : `${r.node}:${r.index}`);

export function parseNode(raw: RawTfNode): TfNode {
  const attrs: Record<string, TfAttr> = {};
  for (const [key, value] of Object.entries(raw.attr ?? {})) attrs[key] = decodeAttr(value);
  return { name: raw.name, op: raw.op, inputs: (raw.input ?? []).map(parseRef).filter((r): r is TfRef => r !== undefined), attrs };
}

function decodeAttr(a: RawAttr): TfAttr {
  if (a.i !== undefined) return Number(a.i);
  if (a.f !== undefined) return Number(a.f);
  if (a.b !== undefined) return a.b;
  if (a.s !== undefined) return Buffer.from(a.s, "base64").toString("utf8");
  if (a.type !== undefined) return a.type;
  if (a.shape !== undefined) return a.shape.unknownRank ? null : (a.shape.dim ?? []).map((d) => Number(d.size ?? -1));
  if (a.list !== undefined) {
    const l = a.list;
    if (l.i) return l.i.map(Number);
    if (l.f) return l.f.map(Number);
    if (l.b) return l.b;
    if (l.s) return l.s.map((s) => Buffer.from(s, "base64").toString("utf8"));
    if (l.type) return l.type;
    return [];
  }
  return null;
}
