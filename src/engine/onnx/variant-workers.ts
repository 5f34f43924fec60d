import * as path from "path";
import { Worker } from "worker_threads";
import type * as Ort from "onnxruntime-node";
import type { LoweredModel } from "./lower-graph";
import { perCoreSetting } from "./runtime";

/** A tensor as it crosses between threads (copied, or transferred when it is a result). */
export interface WireTensor {
  type: "float32" | "int32";
  dims: readonly number[];
  data: Float32Array | Int32Array;
}

/** What a worker needs of a lowered segment to feed and read its session. */
export interface WireSegment {
  inputs: { kind: "model" | "fed"; onnx: string; node: string }[];
  outputs: { onnx: string; node: string; role: "output" | "tap" }[];
}

export type WorkerRequest =
  | { kind: "session"; req: number; session: string; bytes: Uint8Array; threads: number; plan: WireSegment }
  | { kind: "release"; req: number; sessions: string[] }
  | { kind: "run"; req: number; steps: string[]; carried: Record<string, WireTensor>; model: Record<string, WireTensor> };

/** The answer to request `req`. */
export interface WorkerReply {
  req: number;
  error?: string;
  outputs?: Record<string, WireTensor>;
}

/** Worker threads for sweeps: QDEBUG_WORKERS, else one per core (0 or 1: run on the main thread). */
export function engineWorkers(): number {
  return perCoreSetting("QDEBUG_WORKERS", 0);
}

/** The part of a lowered segment a worker needs (parametric inputs never go to workers). */
export function wireSegment(lowered: LoweredModel): WireSegment {
  const inputs: WireSegment["inputs"] = [];
  for (const i of lowered.inputs) {
    if (i.kind === "model" || i.kind === "fed") inputs.push({ kind: i.kind, onnx: i.onnx, node: i.node });
    else throw new Error(`variant worker: segment input "${i.onnx}" is fed per variant; only baked sessions run in workers`);
  }
  return { inputs, outputs: lowered.outputs.map((o) => ({ onnx: o.onnx, node: o.node, role: o.role })) };
}

export const toWire = (t: Ort.Tensor): WireTensor => ({ type: t.type as WireTensor["type"], dims: t.dims, data: t.data as Float32Array | Int32Array });

/** One worker thread and the sessions it holds. */
export class VariantWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private next = 0;
  private failure: Error | undefined;
  /** Session ids this worker holds. */
  readonly holds = new Set<string>();

  constructor() {
    this.worker = new Worker(path.join(__dirname, "variant-worker.js"));
    this.worker.unref();
    const failAll = (err: Error) => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on("message", (reply: WorkerReply) => {
      const p = this.pending.get(reply.req);
      this.pending.delete(reply.req);
      if (!p) return;
      if (reply.error !== undefined) p.reject(new Error(reply.error));
      else p.resolve(reply);
    });
    this.worker.on("error", (err) => failAll(err));
    this.worker.on("exit", (code) => failAll(new Error(`the ONNX Runtime worker thread exited (code ${code})`)));
  }

  private call(request: WorkerRequest): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(request.req, { resolve, reject });
      this.worker.postMessage(request);
    });
  }

  /** Builds a session in the worker (its bytes are copied there). */
  async open(id: string, lowered: LoweredModel, threads: number): Promise<void> {
    await this.call({ kind: "session", req: this.next++, session: id, bytes: lowered.bytes, threads, plan: wireSegment(lowered) });
    this.holds.add(id);
  }

  async release(ids: string[]): Promise<void> {
    const held = ids.filter((id) => this.holds.delete(id));
    if (held.length && !this.failure) await this.call({ kind: "release", req: this.next++, sessions: held });
  }

  /**
   * Runs sessions `steps` in turn on one batch; the graph outputs they produce.
   * The batch goes through in parts of at most `chunk` examples: each session's
   * arena grows to its largest run and never shrinks, and a worker holds a copy
   * of every session it uses, so smaller runs keep the workers' memory small.
   */
  async run(steps: string[], carried: Record<string, WireTensor>, model: Record<string, WireTensor>, chunk = Infinity): Promise<Record<string, WireTensor>> {
    const values = [...Object.values(carried), ...Object.values(model)];
    const n = values[0]?.dims[0] ?? 0;
    if (!(n > chunk) || values.some((t) => t.dims[0] !== n)) return (await this.call({ kind: "run", req: this.next++, steps, carried, model })).outputs!;
    const part = (t: WireTensor, start: number, m: number): WireTensor => {
      const per = t.data.length / n;
      // A copy, not a view: a view would send its whole buffer to the worker.
      return { type: t.type, dims: [m, ...t.dims.slice(1)], data: t.data.slice(start * per, (start + m) * per) };
    };
    const parts: Record<string, WireTensor>[] = [];
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const slice = (r: Record<string, WireTensor>) => Object.fromEntries(Object.entries(r).map(([k, t]) => [k, part(t, start, m)]));
      parts.push((await this.call({ kind: "run", req: this.next++, steps, carried: slice(carried), model: slice(model) })).outputs!);
    }
    return Object.fromEntries(Object.keys(parts[0]).map((name) => [name, concatBatch(parts.map((p) => p[name]), name)]));
  }

  async terminate(): Promise<void> {
    this.failure ??= new Error("the ONNX Runtime worker thread was stopped");
    await this.worker.terminate();
  }
}

/** Parts of one output, computed on consecutive examples, joined along the batch axis. */
function concatBatch(parts: WireTensor[], name: string): WireTensor {
  const first = parts[0];
  if (parts.some((p) => p.type !== first.type || p.dims.slice(1).join(",") !== first.dims.slice(1).join(","))) {
    throw new Error(`variant worker: the parts of output "${name}" differ in shape beyond the batch axis`);
  }
  const data = first.type === "int32" ? new Int32Array(parts.reduce((a, p) => a + p.data.length, 0)) : new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { type: first.type, dims: [parts.reduce((a, p) => a + p.dims[0], 0), ...first.dims.slice(1)], data };
}
