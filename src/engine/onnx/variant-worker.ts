import { parentPort } from "worker_threads";
import type * as Ort from "onnxruntime-node";
import { createSession, requireOrt } from "./runtime";
import { TensorPool } from "./tensor-pool";
import type { WorkerReply, WorkerRequest, WireSegment, WireTensor } from "./variant-workers";

/**
 * A worker thread that runs a sweep's variants with ONNX Runtime.
 * onnxruntime-node runs inference synchronously on the thread that calls it, so
 * the only way to use a second core for the many small runs of a sweep is a
 * second thread with sessions of its own. The main thread lowers each segment
 * and sends the model bytes; this thread builds the session once and runs it on
 * every batch it is sent (see VariantWorkers).
 */

interface WorkerSession {
  session: Ort.InferenceSession;
  plan: WireSegment;
  /** Shapes of the values handed on, by batch size, learned from the first run. */
  outputDims: Map<number, Map<string, readonly number[]>>;
}

const ort = requireOrt();
const sessions = new Map<string, WorkerSession>();
/** Buffers of values handed from segment to segment, reused. */
const pool = new TensorPool(ort);
const toOrt = (w: WireTensor): Ort.Tensor => new ort.Tensor(w.type, w.data, w.dims);

/** Runs `steps` (session ids, one per segment) on one batch; returns the graph outputs they produce. */
async function runChain(steps: readonly string[], carriedIn: Record<string, WireTensor>, model: Record<string, WireTensor>): Promise<Record<string, WireTensor>> {
  const outputs: Record<string, WireTensor> = {};
  let carried: Record<string, Ort.Tensor> = Object.fromEntries(Object.entries(carriedIn).map(([k, w]) => [k, toOrt(w)]));
  let pooled = false;
  for (const id of steps) {
    const s = sessions.get(id);
    if (!s) throw new Error(`variant worker: no session "${id}"`);
    const feeds: Record<string, Ort.Tensor> = {};
    for (const input of s.plan.inputs) {
      const value = input.kind === "model" ? model[`in:${input.node}`] : carried[`val:${input.node}`];
      if (!value) throw new Error(`variant worker: segment input "${input.node}" was not sent`);
      feeds[input.onnx] = value instanceof ort.Tensor ? value : toOrt(value as WireTensor);
    }
    const batch = Object.values(feeds).find((t) => t.dims.length > 0)?.dims[0] ?? 0;
    const known = s.outputDims.get(batch);
    const fetches: Record<string, Ort.Tensor | null> = {};
    for (const o of s.plan.outputs) fetches[o.onnx] = known && o.role === "tap" ? pool.take(known.get(o.onnx)!) : null;
    const results = await s.session.run(feeds, fetches);
    if (!known) s.outputDims.set(batch, new Map(s.plan.outputs.map((o) => [o.onnx, results[o.onnx].dims])));
    if (pooled) for (const t of Object.values(carried)) pool.give(t);
    const next: Record<string, Ort.Tensor> = {};
    for (const o of s.plan.outputs) {
      const t = results[o.onnx];
      if (o.role === "output") outputs[o.node] = { type: t.type as WireTensor["type"], dims: [...t.dims], data: (t.data as Float32Array | Int32Array).slice() };
      else next[`val:${o.node}`] = t;
    }
    carried = next;
    pooled = true;
  }
  if (pooled) for (const t of Object.values(carried)) pool.give(t);
  return outputs;
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.kind) {
    case "session": {
      const session = await createSession(request.bytes, { threads: request.threads });
      sessions.set(request.session, { session, plan: request.plan, outputDims: new Map() });
      return { req: request.req };
    }
    case "release": {
      for (const id of request.sessions) {
        const s = sessions.get(id);
        sessions.delete(id);
        if (s) await s.session.release();
      }
      return { req: request.req };
    }
    case "run":
      return { req: request.req, outputs: await runChain(request.steps, request.carried, request.model) };
  }
}

parentPort!.on("message", (request: WorkerRequest) => {
  handle(request).then(
    (reply) => {
      const transfer = reply.outputs ? Object.values(reply.outputs).map((w) => w.data.buffer as ArrayBuffer) : [];
      parentPort!.postMessage(reply, transfer);
    },
    (err: Error) => parentPort!.postMessage({ req: request.req, error: err.message ?? String(err) }),
  );
});
