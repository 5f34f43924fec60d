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
import { TensorPool } from "./tensor-pool";
import { bakedSimulation } from "./baked-sim";
import { quantizerFeeds, segmentKey, storageFor, widerStorage } from "./sim-config";
import { engineMemory, valueBytesPerExample, WORKER_CHUNK, workerBytes } from "./memory";
import { engineWorkers, toWire, VariantWorker, WireTensor } from "./variant-workers";

/** One simulation to run, named by `key`. */
export interface ProgramVariant {
  key: string;
  sim: QuantSim;
}

type Feeds = Record<string, Ort.Tensor>;

/** A value as the program reads it: an ORT tensor, or one sent back by a worker thread. */
type Value = Pick<Ort.Tensor, "type" | "dims" | "data"> | WireTensor;

/** One batch of a pass: its model inputs, as ORT tensors (see OnnxProgram.feedsOf). */
export type PassBatch = Readonly<Record<string, Ort.Tensor>>;

interface Session {
  lowered: LoweredModel;
  session: Ort.InferenceSession;
  /** Output shapes by batch size, learned from the first run. */
  outputDims: Map<number, Map<string, readonly number[]>>;
}

/** The id of a segment's session for one configuration kept for the program's life, here and in the workers. */
/** Session ids start with their segment's index, so a segment's sessions can be found by it (forgetSegment). */
const segmentPrefix = (segment: number) => `${segment}|`;
const constantId = (segment: number, key: string) => `${segmentPrefix(segment)}const|${key}`;

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
  /** The last segment that reads a model input (the one holding its input node): after it, a pass needs its inputs no more. */
  private readonly lastInputSegment: number;
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly layouts: Map<string, OnnxValue>;
  private readonly ort = requireOrt();
  private readonly pool = new TensorPool(this.ort);
  /** Weights in ONNX layout, by a key naming the values (FP32 or a grid): the parametric sessions' feeds. */
  private readonly weightData = new Map<string, Ort.Tensor>();
  /** Quantized weights in the graph's layout, per segment, by a key naming the grid: baked into sessions. */
  private readonly bakedWeights: Map<string, Float32Array>[];

  /** Intra-op threads of every session. */
  private readonly threads: number;
  /** Worker threads that run a long pass's variants side by side (see runPass); made on first use. */
  private readonly workerCount: number;
  private workers: VariantWorker[] | undefined;
  /** Lowered constant segments by session id, for workers that do not hold them yet. */
  private readonly constantLowerings = new Map<string, LoweredModel>();
  private ownSessionCount = 0;

  constructor(graph: Graph, sites: readonly QuantizerSite[], options: { segments?: number; threads?: number; workers?: number } = {}) {
    this.graph = graph;
    this.threads = Math.max(1, options.threads ?? engineThreads());
    this.workerCount = options.workers ?? engineWorkers();
    const fusedOutputs = new Set([...graph.inputs, ...sites.filter((s) => s.kind === "activation").map((s) => s.node)]);
    this.segments = planSegments(graph, options.segments ?? 10, fusedOutputs);
    this.lastInputSegment = Math.max(-1, ...this.segments.filter((seg) => seg.nodes.some((n) => graph.node(n).op === "input")).map((seg) => seg.index));
    const segmentOf = new Map(this.segments.flatMap((s) => s.nodes.map((n) => [n, s.index] as const)));
    this.sitesBySegment = this.segments.map(() => []);
    for (const site of sites) this.sitesBySegment[segmentOf.get(site.node)!].push(site);
    this.bakedWeights = this.segments.map(() => new Map());
    // Layouts of every value, so a segment fed from the one before reads them as they were left.
    this.layouts = lowerGraph(graph, { paramSource: () => ({ kind: "input" }) }).values;
  }

  /**
   * Runs every variant on one batch; `onOutputs` receives each variant's graph
   * outputs (tf tensors, disposed after it returns), in the order given.
   */
  async run(inputs: readonly tf.Tensor[], variants: readonly ProgramVariant[], onOutputs: (key: string, outputs: tf.Tensor[]) => void | Promise<void>): Promise<void> {
    const byKey = new Map<string, tf.Tensor[]>();
    try {
      await this.runPass([this.feedsOf(inputs)], variants, (key, _batch, outputs) => {
        byKey.set(key, outputs.map((t) => t.clone()));
      });
      for (const v of variants) {
        const outputs = byKey.get(v.key)!;
        byKey.delete(v.key);
        try {
          await onOutputs(v.key, outputs);
        } finally {
          tf.dispose(outputs);
        }
      }
    } finally {
      for (const t of byKey.values()) tf.dispose(t);
    }
  }

  /** Bytes a pass holds per example: its inputs, the trunk's values at the widest cut, and its outputs. */
  passBytesPerExample(sample: readonly tf.Tensor[]): number {
    const values = (name: string) => valueBytesPerExample(this.graph, name, sample);
    const inputs = sample.reduce((a, t) => a + (4 * t.size) / Math.max(1, t.shape[0]), 0);
    const cut = Math.max(0, ...this.segments.map((seg) => seg.liveIn.reduce((a, n) => a + values(n), 0)));
    return inputs + cut + this.graph.outputs.reduce((a, n) => a + values(n), 0);
  }

  /** A batch's model inputs as the engine holds them (ORT tensors: a pass keeps many batches out of the wasm heap). */
  feedsOf(inputs: readonly tf.Tensor[]): PassBatch {
    return Object.fromEntries(this.graph.inputs.map((name, i) => [`in:${name}`, toOrtTensor(inputs[i])]));
  }

  /**
   * Runs every variant on every batch of a pass, segment by segment.
   *
   * The trunk is the configuration most variants share in each segment (FP32
   * in an "enable one" sweep, the quantized model in a "disable one" sweep).
   * Its values at the start of segment s are computed once per batch and
   * kept for the whole pass; each variant runs only from the segment where it
   * leaves the trunk, over all batches in turn. So a one-of-a-kind segment
   * gets a session with its weights and encodings baked in (built once, run on
   * every batch) instead of a parametric one, which ORT runs 2-3x slower. A
   * pass of one or two batches uses the parametric sessions: building a
   * session per variant would cost more than it saves there.
   *
   * `onOutputs` gets each variant's outputs batch by batch (tf tensors,
   * disposed after it returns); variants come in the order they leave the trunk.
   */
  async runPass(
    batches: readonly PassBatch[],
    variants: readonly ProgramVariant[],
    onOutputs: (key: string, batch: number, outputs: tf.Tensor[]) => void | Promise<void>,
    options: { consumeInputs?: boolean } = {},
  ): Promise<void> {
    const S = this.segments.length;
    const keys = variants.map((v) => this.sitesBySegment.map((sites) => segmentKey(v.sim, sites)));
    const counts = this.segments.map((_, s) => {
      const count = new Map<string, number>();
      for (const k of keys) count.set(k[s], (count.get(k[s]) ?? 0) + 1);
      return count;
    });
    // Building a session costs about three runs of a segment in the parametric one (measured on MobileNetV2).
    const ownSessions = batches.length >= 3;
    // A configuration several variants share keeps its session for the program's life, and so does FP32 (key ""), so that
    // the reference and an FP32 variant come from one session, bit for bit. In short passes, so does each of a few
    // configurations (the split's, scored batch by batch); in long ones, sessions used once are freed after use:
    // four whole InceptionV3 sessions held at once took 2.8 GB.
    const shared = counts.map((count) => new Set([...count].filter(([k, n]) => n > 1 || k === "" || (!ownSessions && count.size <= 8)).map(([k]) => k)));
    const trunkKey = counts.map((count) => [...count].reduce((a, b) => (b[1] > a[1] ? b : a))[0]);
    const trunkSim = trunkKey.map((k, s) => variants[keys.findIndex((vk) => vk[s] === k)].sim);
    const leaves = keys.map((k) => {
      let s = 0;
      while (s < S && k[s] === trunkKey[s]) s++;
      return s;
    });
    const paramSig = this.segments.map((_, s) => (ownSessions ? new Map() : this.storageSignature(s, variants, keys, shared[s])));

    let trunk: Feeds[] = batches.map((b) => ({ ...b }));
    const trunkOutputs: Map<string, Value>[] = batches.map(() => new Map());
    const deliver = async (key: string, b: number, outputs: Map<string, Value>) => {
      const tensors = this.graph.outputs.map((name) => {
        const t = outputs.get(name)!;
        return t.type === "int32" ? tf.tensor(t.data as Int32Array, t.dims as number[], "int32") : tf.tensor(t.data as Float32Array, t.dims as number[]);
      });
      try {
        await onOutputs(key, b, tensors);
      } finally {
        tf.dispose(tensors);
      }
    };

    // One variant from segment `from` to the end, on every batch; sessions it alone uses are built for it and freed after.
    const runVariant = async (v: number, from: number) => {
      const variant = variants[v];
      const own: Session[] = [];
      try {
        const sessions: { session: Session; fedSim?: QuantSim }[] = [];
        for (let s = from; s < S; s++) {
          const key = keys[v][s];
          if (shared[s].has(key)) sessions[s] = { session: await this.constantSession(this.segments[s], key, variant.sim) };
          else if (ownSessions) {
            const session = await this.bakedSession(this.segments[s], variant.sim);
            own.push(session);
            sessions[s] = { session };
          } else sessions[s] = { session: await this.parametricSession(this.segments[s], paramSig[s]), fedSim: variant.sim };
        }
        for (let b = 0; b < batches.length; b++) {
          const outputs = new Map(trunkOutputs[b]);
          let carried = trunk[b];
          for (let s = from; s < S; s++) {
            const values = await this.runSegment(s, sessions[s].session, carried, batches[b], sessions[s].fedSim);
            if (s > from) this.release(carried);
            for (const name of this.segments[s].outputs) outputs.set(name, values[`out:${name}`]);
            carried = values;
          }
          this.release(carried);
          await deliver(variant.key, b, outputs);
        }
      } finally {
        for (const session of own) await session.session.release();
        // Its weights now live in sessions or the program's caches: free the simulation's tfjs copies,
        // which would otherwise pile up in the wasm heap across a sweep's hundred variants.
        variant.sim.dispose();
      }
    };

    // onnxruntime-node runs inference on the calling thread, so variants run side by side only in worker threads,
    // each with sessions of its own: in long passes, when several variants leave the trunk. Their outputs are
    // handed to onOutputs one call at a time, as on the main thread.
    const workers = ownSessions && this.affordableWorkers(batches[0]) >= 2 && leaves.filter((l) => l < S).length >= 2 ? this.startWorkers() : undefined;
    let delivering: Promise<void> = Promise.resolve();
    const deliverInTurn = (key: string, b: number, outputs: Map<string, Value>) => {
      const done = delivering.then(() => deliver(key, b, outputs));
      delivering = done.catch(() => undefined);
      return done;
    };
    // Own segments lowered ahead, while a worker computes: lowering runs on this thread, and a worker waiting for it idles.
    const lowered = new Map<number, LoweredModel>();
    const ownLowering = (v: number, s: number) => {
      const made = lowered.get(v) ?? this.bakedLowering(this.segments[s], variants[v].sim);
      lowered.delete(v);
      return made;
    };
    const runVariantOn = async (worker: VariantWorker, v: number, from: number, next: () => number | undefined) => {
      const variant = variants[v];
      const own: string[] = [];
      try {
        const steps: string[] = [];
        // The model inputs its segments read: only those are sent (copied) to the worker with each batch.
        const read = new Set<string>();
        for (let s = from; s < S; s++) {
          const key = keys[v][s];
          const constant = shared[s].has(key);
          const id = constant ? constantId(s, key) : `${segmentPrefix(s)}own|${this.ownSessionCount++}`;
          const lowering = constant ? this.constantLowering(this.segments[s], key, variant.sim) : ownLowering(v, s);
          if (!constant) own.push(id);
          if (!worker.holds.has(id)) await worker.open(id, lowering, this.threads);
          steps.push(id);
          for (const input of lowering.inputs) if (input.kind === "model") read.add(`in:${input.node}`);
        }
        const send = (b: number) => {
          const carried = Object.fromEntries(Object.entries(trunk[b]).filter(([k]) => k.startsWith("val:")).map(([k, t]) => [k, toWire(t)]));
          const model = Object.fromEntries(Object.entries(batches[b]).filter(([k]) => read.has(k)).map(([k, t]) => [k, toWire(t)]));
          const running = worker.run(steps, carried, model, WORKER_CHUNK);
          // Awaited in turn below; until then a failure must not count as unhandled.
          running.catch(() => undefined);
          return running;
        };
        // Each batch is sent before the one ahead of it is taken back, so the worker never waits on this thread.
        let running = send(0);
        for (let b = 0; b < batches.length; b++) {
          const following = b + 1 < batches.length ? send(b + 1) : undefined;
          const n = b === 0 ? next() : undefined;
          if (n !== undefined && !lowered.has(n) && !shared[from].has(keys[n][from])) lowered.set(n, this.bakedLowering(this.segments[from], variants[n].sim));
          const produced = await running;
          const outputs = new Map<string, Value>(trunkOutputs[b]);
          for (const [name, t] of Object.entries(produced)) outputs.set(name, t);
          await deliverInTurn(variant.key, b, outputs);
          if (following) running = following;
        }
      } finally {
        await worker.release(own);
        variant.sim.dispose();
      }
    };
    // Each worker takes the next variant when it is free; the first failure stops the others after their current one.
    const runOnWorkers = async (pool: VariantWorker[], queue: number[], from: number) => {
      let failure: unknown;
      await Promise.all(
        pool.map(async (worker) => {
          while (queue.length && failure === undefined) {
            const v = queue.shift()!;
            try {
              await runVariantOn(worker, v, from, () => queue[0]);
            } catch (err) {
              failure ??= err;
            }
          }
        }),
      );
      if (failure !== undefined) throw failure;
    };

    try {
      for (let s = 0; s < S; s++) {
        const leaving = [...leaves.keys()].filter((v) => leaves[v] === s);
        if (workers && leaving.length) {
          await runOnWorkers(workers, leaving, s);
          lowered.clear();
        } else for (const v of leaving) await runVariant(v, s);
        if (!leaves.some((l) => l > s)) break;
        // The trunk moves on by one segment, batch by batch.
        const kept = shared[s].has(trunkKey[s]) || !ownSessions;
        const session = kept ? await this.constantSession(this.segments[s], trunkKey[s], trunkSim[s]) : await this.bakedSession(this.segments[s], trunkSim[s]);
        try {
          for (let b = 0; b < batches.length; b++) {
            const values = await this.runSegment(s, session, trunk[b], batches[b], undefined);
            this.release(trunk[b]);
            for (const name of this.segments[s].outputs) trunkOutputs[b].set(name, values[`out:${name}`]);
            trunk[b] = values;
          }
        } finally {
          if (!kept) await session.session.release();
        }
        await this.forgetSegment(s, workers);
        // With consumeInputs, the batches' inputs are dropped once read for the last time: the caller's objects are
        // emptied, so a long pass does not hold every photo to its end (256 at 224x224: 154 MB).
        if (options.consumeInputs && s === this.lastInputSegment) for (const batch of batches) for (const k of Object.keys(batch)) delete (batch as Record<string, Ort.Tensor>)[k];
      }
      // Variants that follow the trunk all the way (the quantized model in a "disable one" sweep).
      for (const [v, l] of leaves.entries()) {
        if (l < S) continue;
        for (let b = 0; b < batches.length; b++) await deliver(variants[v].key, b, trunkOutputs[b]);
      }
    } finally {
      for (const values of trunk) this.release(values);
      trunk = [];
    }
  }

  /** Frees every session and stops the worker threads. */
  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.constantLowerings.clear();
    const workers = this.workers ?? [];
    this.workers = undefined;
    for (const w of workers) await w.terminate();
    for (const s of all) await (await s).session.release();
  }

  /**
   * How many workers the memory budget allows, at most the configured count:
   * workers may use a third of the engine's memory (workerBytes each); a
   * pass's values take at most a tenth (PASS_SHARE in scoreVariants).
   */
  private affordableWorkers(batch: PassBatch): number {
    if (this.workerCount < 2) return this.workerCount;
    const first = Object.values(batch)[0];
    return Math.min(this.workerCount, Math.floor(engineMemory() / 3 / workerBytes(this.graph, [{ shape: first ? first.dims : [] }])));
  }

  /** Worker threads started so far (0 when every variant ran on the main thread). */
  get workerThreads(): number {
    return this.workers?.length ?? 0;
  }

  private startWorkers(): VariantWorker[] {
    this.workers ??= Array.from({ length: this.workerCount }, () => new VariantWorker());
    return this.workers;
  }

  /** A constant segment's lowering, kept for the program's life: its session here holds it anyway, and workers may need it later. */
  private constantLowering(segment: Segment, key: string, sim: QuantSim): LoweredModel {
    const id = constantId(segment.index, key);
    let lowered = this.constantLowerings.get(id);
    if (!lowered) {
      lowered = this.bakedLowering(segment, sim);
      this.constantLowerings.set(id, lowered);
    }
    return lowered;
  }

  /** Runs one segment; returns its values by role: "val:<node>" handed on, "out:<node>" graph outputs. */
  private async runSegment(s: number, session: Session, carried: Feeds, modelInputs: Feeds, sim: QuantSim | undefined): Promise<Feeds> {
    const feeds: Feeds = {};
    for (const input of session.lowered.inputs) {
      if (input.kind === "model") feeds[input.onnx] = modelInputs[`in:${input.node}`];
      else if (input.kind === "fed") feeds[input.onnx] = carried[`val:${input.node}`];
    }
    if (sim) Object.assign(feeds, this.variantFeeds(session.lowered, sim));
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

  /**
   * A session with `sim`'s configuration of this segment baked in, kept for the program's life (shared by many
   * variants). It is built from the same lowering the workers get, so a configuration is lowered once.
   */
  private constantSession(segment: Segment, key: string, sim: QuantSim): Promise<Session> {
    const id = constantId(segment.index, key);
    let made = this.sessions.get(id);
    if (!made) {
      const lowered = this.constantLowering(segment, key, sim);
      // The session keeps the plan, not the model's bytes: workers get them from constantLowering while it holds them.
      made = createSession(lowered.bytes, { threads: this.threads }).then((session) => ({ lowered: { ...lowered, bytes: new Uint8Array(0) }, session, outputDims: new Map() }));
      this.sessions.set(id, made);
    }
    return made;
  }

  /**
   * Drops what only variants leaving the trunk at or before segment `s` use:
   * the workers' sessions of it, its lowerings and quantized weights (a later
   * pass makes them again). Late in a sweep of a large model, these held most
   * of the memory: every segment's weights in each worker, twice over in ORT.
   */
  private async forgetSegment(s: number, workers: readonly VariantWorker[] | undefined): Promise<void> {
    const prefix = segmentPrefix(s);
    for (const id of [...this.constantLowerings.keys()]) if (id.startsWith(prefix)) this.constantLowerings.delete(id);
    this.bakedWeights[s].clear();
    for (const worker of workers ?? []) await worker.release([...worker.holds].filter((id) => id.startsWith(prefix)));
  }

  /** A new session computing exactly `sim`'s configuration of this segment; the caller releases it. */
  private async bakedSession(segment: Segment, sim: QuantSim): Promise<Session> {
    const lowered = this.bakedLowering(segment, sim);
    const session = await createSession(lowered.bytes, { threads: this.threads });
    return { lowered, session, outputDims: new Map() };
  }

  /** `sim`'s configuration of this segment as an ONNX model, its weights and encodings constants. */
  private bakedLowering(segment: Segment, sim: QuantSim): LoweredModel {
    const { quantizers } = bakedSimulation(sim, "ONNX Runtime engine");
    const siteOf = new Map(this.sitesBySegment[segment.index].filter((x) => x.kind !== "activation").map((x) => [`${x.node}/${x.param}`, x]));
    return this.lowerSegment(segment, quantizers, (node, param) => {
      const site = siteOf.get(`${node.name}/${param}`);
      if (!site || sim.encodingOf(site.name) === null) return { kind: "constant" };
      // Keyed by the grid: the variants of a sweep quantize most weights alike, and each is computed once.
      const cacheKey = `${site.name}|${segmentKey(sim, [site])}`;
      let data = this.bakedWeights[segment.index].get(cacheKey);
      if (!data) {
        data = sim.quantizedParam(site.name)!.dataSync() as Float32Array;
        this.bakedWeights[segment.index].set(cacheKey, data);
      }
      return { kind: "constant", data };
    });
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
