import * as tf from "@tensorflow/tfjs";
import type * as Ort from "onnxruntime-node";
import { Graph } from "../../graph/graph";
import { GraphNode, OnnxValue } from "../../graph/types";
import { Encoding } from "../../quant/encoding";
import { QuantizerSite } from "../../quant/placement";
import { QuantSim } from "../../quant/quantsim";
import { lowerGraph, LoweredModel, ParamSource, QuantizerLowering } from "./lower-graph";
import { createSession, engineThreads, requireOrt, toOrtTensor } from "./runtime";
import { planSegments, Segment } from "./segments";
import { bakedSimulation } from "./baked-sim";
import { quantizerFeeds, segmentKey, storageFor, widerStorage } from "./sim-config";

/** One simulation to run, named by `key`. */
export interface ProgramVariant {
  key: string;
  sim: QuantSim;
}

type Feeds = Record<string, Ort.Tensor>;

interface Session {
  lowered: LoweredModel;
  session: Ort.InferenceSession;
  /** Output shapes by batch size, learned from the first run. */
  outputDims: Map<number, Map<string, readonly number[]>>;
}

/** Float buffers of the shapes segments hand on, reused from batch to batch and variant to variant. */
class TensorPool {
  private readonly free = new Map<string, Ort.Tensor[]>();
  constructor(private readonly ort: ReturnType<typeof requireOrt>) {}
  take(dims: readonly number[]): Ort.Tensor {
    const t = this.free.get(dims.join("x"))?.pop();
    return t ?? new this.ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  give(t: Ort.Tensor): void {
    if (t.type !== "float32") return;
    const key = t.dims.join("x");
    const list = this.free.get(key) ?? [];
    list.push(t);
    this.free.set(key, list);
  }
}

/**
 * Runs many simulations of one graph with ONNX Runtime, batch by batch.
 *
 * The graph is cut into segments (planSegments). In each segment a simulation
 * either matches a configuration that several simulations share (FP32, the
 * fully quantized model): those run in a session built for it, weights and
 * encodings baked in as constants, which ORT optimizes fully; or it is one of
 * a kind (a sweep's variant): it runs in the segment's parametric session,
 * whose weights and quantizer encodings are fed per run, and whose quantizers
 * can each be switched off. Results are shared along equal prefixes: variants
 * that agree on every segment before k reuse the values computed there, so an
 * "enable one layer" sweep computes the FP32 trunk once per batch.
 */
export class OnnxProgram {
  readonly graph: Graph;
  readonly segments: Segment[];
  private readonly sitesBySegment: QuantizerSite[][];
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly layouts: Map<string, OnnxValue>;
  private readonly ort = requireOrt();
  private readonly pool = new TensorPool(this.ort);
  /** Weights in ONNX layout, by a key naming the values (FP32 or a grid). */
  private readonly weightData = new Map<string, Ort.Tensor>();

  /** How many variants run at once; each session then gets its share of the threads. */
  private readonly lanes: number;
  private readonly threads: number;

  constructor(graph: Graph, sites: readonly QuantizerSite[], options: { segments?: number; lanes?: number } = {}) {
    this.graph = graph;
    this.lanes = Math.max(1, Math.min(options.lanes ?? 1, engineThreads()));
    this.threads = Math.max(1, Math.floor(engineThreads() / this.lanes));
    const fusedOutputs = new Set([...graph.inputs, ...sites.filter((s) => s.kind === "activation").map((s) => s.node)]);
    this.segments = planSegments(graph, options.segments ?? 10, fusedOutputs);
    const segmentOf = new Map(this.segments.flatMap((s) => s.nodes.map((n) => [n, s.index] as const)));
    this.sitesBySegment = this.segments.map(() => []);
    for (const site of sites) this.sitesBySegment[segmentOf.get(site.node)!].push(site);
    // Layouts of every value, so a segment fed from the one before reads them as they were left.
    this.layouts = lowerGraph(graph, { paramSource: () => ({ kind: "input" }) }).values;
  }

  /**
   * Runs every variant on one batch; `onOutputs` receives each variant's graph
   * outputs (tf tensors, disposed after it returns), in the order given.
   */
  async run(inputs: readonly tf.Tensor[], variants: readonly ProgramVariant[], onOutputs: (key: string, outputs: tf.Tensor[]) => void | Promise<void>): Promise<void> {
    const keys = variants.map((v) => this.sitesBySegment.map((sites) => segmentKey(v.sim, sites)));
    // A configuration several variants share in a segment gets a constant session, and so does each of a few (the split's);
    // the many one-of-a-kind configurations of a sweep share the segment's parametric one.
    const shared = this.segments.map((_, s) => {
      const count = new Map<string, number>();
      for (const k of keys) count.set(k[s], (count.get(k[s]) ?? 0) + 1);
      return new Set([...count].filter(([, n]) => n > 1 || count.size <= 8).map(([k]) => k));
    });
    const paramSig = this.segments.map((_, s) => this.storageSignature(s, variants, keys, shared[s]));
    // Path keys: a variant's configuration up to and including segment s. Equal paths hold equal values.
    const paths = keys.map((k) => k.map((_, s) => k.slice(0, s + 1).join("\u0001")));
    const pending = new Map<string, number>();
    for (const p of paths) for (const key of new Set(p)) pending.set(key, (pending.get(key) ?? 0) + 1);
    // Values of a path, computed once: a second lane that needs them while they are computed waits for them.
    const memo = new Map<string, Promise<Feeds>>();
    const modelInputs = this.modelFeeds(inputs);

    const compute = async (v: number): Promise<Map<string, Ort.Tensor>> => {
      const variant = variants[v];
      let carried: Feeds = modelInputs;
      let carriedPath: string | undefined;
      const outputs = new Map<string, Ort.Tensor>();
      // A path's values are freed when every variant that reads them has run the segment after them.
      const doneWith = (path: string | undefined, values: Feeds) => {
        if (path === undefined) return;
        const left = pending.get(path)! - 1;
        pending.set(path, left);
        if (left > 0) return;
        memo.delete(path);
        this.release(values);
      };
      for (const segment of this.segments) {
        const s = segment.index;
        const path = paths[v][s];
        let produced = memo.get(path);
        if (!produced) {
          const segKey = keys[v][s];
          const isShared = shared[s].has(segKey);
          const from = carried;
          produced = (async () => {
            const session = isShared ? await this.constantSession(segment, segKey, variant.sim) : await this.parametricSession(segment, paramSig[s]);
            return this.runSegment(s, session, from, modelInputs, isShared ? undefined : variant.sim);
          })();
          if ((pending.get(path) ?? 0) > 1) memo.set(path, produced);
        }
        const values = await produced;
        doneWith(carriedPath, carried);
        for (const name of segment.outputs) outputs.set(name, values[`out:${name}`]);
        carried = values;
        carriedPath = path;
      }
      doneWith(carriedPath, carried);
      return outputs;
    };

    // Lanes run variants side by side (each session on fewer threads); outputs are handed on in the order given.
    const done = new Map<number, Map<string, Ort.Tensor>>();
    let handed = 0;
    let next = 0;
    let delivering = Promise.resolve();
    const deliver = async () => {
      while (done.has(handed)) {
        const outputs = done.get(handed)!;
        done.delete(handed);
        const key = variants[handed].key;
        handed++;
        const tensors = this.graph.outputs.map((name) => {
          const t = outputs.get(name)!;
          return t.type === "int32" ? tf.tensor(t.data as Int32Array, t.dims as number[], "int32") : tf.tensor(t.data as Float32Array, t.dims as number[]);
        });
        try {
          await onOutputs(key, tensors);
        } finally {
          tf.dispose(tensors);
        }
      }
    };
    const lane = async () => {
      while (next < variants.length) {
        const v = next++;
        done.set(v, await compute(v));
        delivering = delivering.then(deliver);
        await delivering;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.lanes, variants.length) }, lane));
  }

  /** Frees every session. */
  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).session.release();
  }

  private modelFeeds(inputs: readonly tf.Tensor[]): Feeds {
    return Object.fromEntries(this.graph.inputs.map((name, i) => [`in:${name}`, toOrtTensor(inputs[i])]));
  }

  /** Runs one segment; returns its values by role: "val:<node>" handed on, "out:<node>" graph outputs. */
  private async runSegment(s: number, session: Session, carried: Feeds, modelInputs: Feeds, sim: QuantSim | undefined): Promise<Feeds> {
    const feeds: Feeds = {};
    for (const input of session.lowered.inputs) {
      if (input.kind === "model") feeds[input.onnx] = modelInputs[`in:${input.node}`];
      else if (input.kind === "fed") feeds[input.onnx] = carried[`val:${input.node}`];
    }
    if (sim) {
      Object.assign(feeds, this.variantFeeds(session.lowered, sim));
      // The variant's quantized weights now live in the feeds' cache: free the simulation's tfjs copies,
      // which would otherwise pile up in the wasm heap across a sweep's hundred variants.
      sim.dispose();
    }
    // Values handed to the next segment go into pooled buffers: ORT's own output allocation costs more than
    // the segment's compute on large activations. Their shapes are known after the first run at a batch size.
    const batch = Object.values(feeds).find((t) => t.dims.length > 0)?.dims[0] ?? 0;
    const known = session.outputDims.get(batch);
    const fetches: Record<string, Ort.Tensor | null> = {};
    for (const o of session.lowered.outputs) fetches[o.onnx] = known && o.role === "tap" ? this.pool.take(known.get(o.onnx)!) : null;
    let results: Ort.InferenceSession.ReturnType;
    try {
      results = await session.session.run(feeds, fetches);
    } catch (err) {
      for (const t of Object.values(fetches)) if (t) this.pool.give(t);
      throw new Error(`ONNX Runtime engine, segment ${s} (${this.segments[s].nodes[0]} … ${this.segments[s].nodes.at(-1)}): ${(err as Error).message}`);
    }
    if (!known) session.outputDims.set(batch, new Map(session.lowered.outputs.map((o) => [o.onnx, results[o.onnx].dims])));
    const out: Feeds = {};
    for (const o of session.lowered.outputs) out[`${o.role === "output" ? "out" : "val"}:${o.node}`] = results[o.onnx];
    return out;
  }

  /** Gives a segment's handed-on values back to the pool once nothing reads them any more. */
  private release(values: Feeds): void {
    for (const [key, t] of Object.entries(values)) if (key.startsWith("val:")) this.pool.give(t);
  }

  /** Storage per activation quantizer of a segment's parametric session: the widest any variant needs there. */
  private storageSignature(s: number, variants: readonly ProgramVariant[], keys: string[][], shared: Set<string>): Map<string, QuantizerLowering["storage"]> {
    const sig = new Map<string, QuantizerLowering["storage"]>();
    for (const [v, variant] of variants.entries()) {
      if (shared.has(keys[v][s])) continue;
      for (const site of this.sitesBySegment[s]) {
        if (site.kind !== "activation") continue;
        const enc = variant.sim.encodingOf(site.name);
        const storage = enc ? storageFor(enc as Encoding) : "uint8";
        sig.set(site.name, widerStorage(sig.get(site.name) ?? "uint8", storage));
      }
    }
    return sig;
  }

  private lowerSegment(segment: Segment, quantizers: Map<string, QuantizerLowering>, paramSource: (node: GraphNode, key: string) => ParamSource): LoweredModel {
    const lowered = lowerGraph(this.graph, {
      outputs: segment.outputs,
      taps: segment.liveOut.map((node) => ({ node })),
      fed: segment.liveIn,
      layouts: this.layouts,
      quantizers,
      paramSource,
    });
    return lowered;
  }

  /** A session with `sim`'s configuration of this segment baked in. */
  private constantSession(segment: Segment, key: string, sim: QuantSim): Promise<Session> {
    const id = `${segment.index}|const|${key}`;
    let made = this.sessions.get(id);
    if (!made) {
      const { quantizers, paramSource } = bakedSimulation(sim, "ONNX Runtime engine");
      const lowered = this.lowerSegment(segment, quantizers, paramSource);
      made = createSession(lowered.bytes, { threads: this.threads }).then((session) => ({ lowered, session, outputDims: new Map() }));
      this.sessions.set(id, made);
    }
    return made;
  }


  /** The segment's session with every weight and encoding fed per run, and every quantizer switchable. */
  private parametricSession(segment: Segment, storage: Map<string, QuantizerLowering["storage"]>): Promise<Session> {
    const sig = [...storage].map(([k, v]) => `${k}:${v}`).join(",");
    const id = `${segment.index}|param|${sig}`;
    let made = this.sessions.get(id);
    if (!made) {
      const sites = this.sitesBySegment[segment.index];
      const quantizers = new Map<string, QuantizerLowering>();
      for (const site of sites) {
        if (site.kind === "activation") quantizers.set(site.node, { name: site.name, storage: storage.get(site.name) ?? "uint8", clip: true, switchable: true });
      }
      const weighted = new Set(sites.filter((x) => x.kind !== "activation").map((x) => `${x.node}/${x.param}`));
      const lowered = this.lowerSegment(segment, quantizers, (node, param) => (weighted.has(`${node.name}/${param}`) ? { kind: "input" } : { kind: "constant" }));
      made = createSession(lowered.bytes, { threads: this.threads }).then((session) => ({ lowered, session, outputDims: new Map() }));
      this.sessions.set(id, made);
    }
    return made;
  }

  /** A parametric session's feeds for one simulation: its weights (quantized or not) and encodings. */
  private variantFeeds(lowered: LoweredModel, sim: QuantSim): Feeds {
    const feeds: Feeds = {};
    const siteOf = new Map(sim.sites.map((x) => [x.kind === "activation" ? x.node : `${x.node}/${x.param}`, x]));
    // The storage type of each quantizer is the type of its zero point (none: float codes).
    const storages = new Map<string, QuantizerLowering["storage"]>();
    for (const i of lowered.inputs) if (i.kind === "quantizer" && i.field === "zeroPoint") storages.set(i.quantizer, i.dtype as "uint8" | "uint16");
    for (const input of lowered.inputs) {
      if (input.kind === "param") {
        // Keyed by the grid, so variants that quantize a weight alike share one copy, made once.
        const site = siteOf.get(`${input.node}/${input.key}`);
        const quantized = site !== undefined && sim.encodingOf(site.name) !== null;
        const cacheKey = quantized ? `${site.name}|${segmentKey(sim, [site])}` : `${input.node}/${input.key}|fp32`;
        let t = this.weightData.get(cacheKey);
        if (!t) {
          const source = quantized ? sim.quantizedParam(site.name)! : this.graph.node(input.node).params[input.key];
          const data = source.dataSync() as Float32Array;
          const { data: d, dims } = input.layout ? input.layout(data, source.shape) : { data, dims: source.shape };
          t = new this.ort.Tensor("float32", d, dims);
          this.weightData.set(cacheKey, t);
        }
        feeds[input.onnx] = t;
      } else if (input.kind === "quantizer") {
        const enc = sim.encodingOf(input.quantizer) as Encoding | null;
        if (input.field === "on") {
          feeds[input.onnx] = new this.ort.Tensor("bool", new Uint8Array([enc ? 1 : 0]), []);
          continue;
        }
        const storage = storages.get(input.quantizer) ?? "float";
        // A switched-off quantizer still computes (Where picks the original): any harmless encoding will do.
        const values = enc ? quantizerFeeds(enc, storage) : { scale: 1, zeroPoint: 0, lo: -1, hi: 1 };
        feeds[input.onnx] = this.scalar(input, values);
      }
    }
    return feeds;
  }

  private scalar(input: { field: string; dtype: string }, v: ReturnType<typeof quantizerFeeds>): Ort.Tensor {
    switch (input.field) {
      case "scale":
        return new this.ort.Tensor("float32", new Float32Array([v.scale]), []);
      case "zeroPoint":
        return input.dtype === "uint8" ? new this.ort.Tensor("uint8", new Uint8Array([v.zeroPoint]), []) : new this.ort.Tensor("uint16", new Uint16Array([v.zeroPoint]), []);
      case "lo":
        return new this.ort.Tensor("float32", new Float32Array([v.lo]), []);
      default:
        return new this.ort.Tensor("float32", new Float32Array([v.hi]), []);
    }
  }
}
