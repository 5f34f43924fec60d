import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../data/types";
import { Graph } from "../graph/graph";
import { Params } from "../graph/types";
import { ProgressFn } from "../progress";
import { forward, ForwardOptions, GraphInputs, NodeHook } from "../graph/forward";
import { runDataset, RunDatasetOptions, RunSummary } from "../runner/run-dataset";
import { computeEncoding, Encoding } from "./encoding";
import { fakeQuant } from "./fake-quant";
import { placeQuantizers, QuantizerKind, QuantizerSite } from "./placement";
import { rangeFromStats, weightRange } from "./range-setting";
import {
  compileOverrides,
  DEFAULT_ACTIVATIONS,
  DEFAULT_BIASES,
  DEFAULT_WEIGHTS,
  normalizePatch,
  QuantizerSettings,
  QuantSimConfig,
  SettingsPatch,
} from "./settings";
import { TensorStats } from "./stats";
import { validateConfig } from "./config-schema";
import { onnxCanRun } from "../engine/onnx/support";
import { runTaps } from "../engine/onnx/taps";

/** One row of `QuantSim.quantizers()`: what a table or a view shows. */
export interface QuantizerInfo extends QuantizerSettings {
  name: string;
  node: string;
  kind: QuantizerKind;
  param?: string;
  /** Per tensor: the encoding; per channel: one per channel; null before calibration or when bypassed. */
  encoding: Encoding | Encoding[] | null;
}

/** Encodings fixed from outside (an imported AIMET file), by quantizer name. */
export type FixedEncodings = ReadonlyMap<string, Encoding | Encoding[]>;

/**
 * A weight whose quantized values were chosen by a fix (AdaRound) rather than by
 * rounding to nearest: values on the grid of `encoding`, in the parameter's own
 * shape. Plain arrays, so simulations can share them without owning tensors.
 */
export interface FrozenWeight {
  encoding: Encoding | Encoding[];
  values: Float32Array;
  shape: number[];
}

/** Everything a simulation is made of besides its graph and config; shared by derived simulations. */
interface SimState {
  stats: ReadonlyMap<string, TensorStats> | undefined;
  fixed: FixedEncodings;
  frozen: ReadonlyMap<string, FrozenWeight>;
  /** Overrides added by `with()`, applied after the config's own, in order. */
  layers: readonly Record<string, SettingsPatch>[];
}

/**
 * A quantization simulation over a graph: "fake" quantizers on weights (and
 * optionally biases) and on activations, placed as runtimes fuse ops.
 *
 * A QuantSim is a value: settings are fixed at creation, and `with()` or
 * `calibrate()` return a new simulation. Encodings are pure functions of the
 * statistics (collected once by `calibrate`, shared by every derived sim) and
 * of each quantizer's settings, so changing a bit-width or range method needs
 * no new pass over the data. Quantized weights are computed on first use and
 * freed by `dispose()`.
 */
export class QuantSim {
  readonly graph: Graph;
  readonly config: QuantSimConfig;
  readonly sites: readonly QuantizerSite[];
  private readonly settings: ReadonlyMap<string, QuantizerSettings>;
  private readonly state: SimState;
  private readonly encodings = new Map<string, Encoding | Encoding[] | null>();
  private quantizedParams: Map<string, Params> | undefined;
  private ownedParams: tf.Tensor[] = [];

  private constructor(graph: Graph, config: QuantSimConfig, state: SimState) {
    this.graph = graph;
    this.config = config;
    this.state = state;
    this.sites = placeQuantizers(graph, { biases: config.biases !== undefined && config.biases !== false });
    this.settings = resolveSettings(this.sites, config, state.layers);
  }

  /** A simulation of `graph` with AIMET-like defaults, then `config`. Not calibrated yet. */
  static create(graph: Graph, config: QuantSimConfig = {}): QuantSim {
    // The same check as a config file gets: a misspelled key ("wieghts") is an error, not a silent default.
    validateConfig(config);
    return new QuantSim(graph, config, { stats: undefined, fixed: new Map(), frozen: new Map(), layers: [] });
  }

  /** The overrides `with()` added on top of the config, in order (with the config, what reproduces this simulation). */
  get overrides(): readonly Record<string, SettingsPatch>[] {
    return this.state.layers;
  }

  get calibrated(): boolean {
    return this.state.stats !== undefined;
  }

  /**
   * The same quantization settings (config, overrides, fixed encodings) over
   * another graph: what a fix that edits the model
   * (CLE, bias correction, QAT) hands on. Activation statistics describe the old
   * graph, so the result is not calibrated unless `keepStats` says the
   * activations did not change; frozen weights belong to the old weights and are dropped.
   */
  withGraph(graph: Graph, options: { keepStats?: boolean } = {}): QuantSim {
    // Quantizers may come and go (folding removes BatchNorm outputs): encodings fixed for vanished ones are never
    // looked up; an override that no longer matches anything is an error, as at creation.
    return new QuantSim(graph, this.config, { ...this.state, stats: options.keepStats ? this.state.stats : undefined, frozen: new Map() });
  }

  /**
   * A new simulation whose listed weight quantizers output the given on-grid
   * values instead of rounding to nearest (AdaRound's result). A frozen weight
   * is used while its quantizer keeps the frozen encoding's bit-width and scheme.
   */
  withFrozenWeights(weights: ReadonlyMap<string, FrozenWeight>): QuantSim {
    for (const [name, w] of weights) {
      const site = this.site(name);
      if (site.kind === "activation") throw new Error(`withFrozenWeights: "${name}" quantizes an activation, not a weight`);
      const shape = this.graph.node(site.node).params[site.param!].shape;
      if (shape.join(",") !== w.shape.join(",") || w.values.length !== shape.reduce((a, b) => a * b, 1)) {
        throw new Error(`withFrozenWeights: "${name}" has shape [${shape.join(", ")}], the frozen values [${w.shape.join(", ")}] (${w.values.length} values)`);
      }
    }
    const fixed = new Map([...this.state.fixed, ...[...weights].map(([n, w]) => [n, w.encoding] as [string, Encoding | Encoding[]])]);
    return new QuantSim(this.graph, this.config, { ...this.state, fixed, frozen: new Map([...this.state.frozen, ...weights]) });
  }

  /** The frozen (e.g. AdaRound) weight of a quantizer, if it has one in use. */
  frozenWeightOf(name: string): FrozenWeight | undefined {
    const w = this.state.frozen.get(name);
    return w && this.encodingOf(name) === this.state.fixed.get(name) ? w : undefined;
  }

  /**
   * A new simulation with more overrides (by quantizer name, node name or glob),
   * applied on top of everything this one has, in the order given; statistics
   * are shared.
   */
  with(overrides: Record<string, SettingsPatch>): QuantSim {
    return new QuantSim(this.graph, this.config, { ...this.state, layers: [...this.state.layers, overrides] });
  }

  /** A new simulation whose listed quantizers use the given encodings (e.g. read from an AIMET file). */
  withEncodings(encodings: FixedEncodings): QuantSim {
    for (const name of encodings.keys()) this.site(name);
    return new QuantSim(this.graph, this.config, { ...this.state, fixed: new Map([...this.state.fixed, ...encodings]) });
  }

  /**
   * Calibration: one pass over `data` with the FP32 model, collecting per-activation
   * statistics (min, max, histogram) in bounded memory. Returns the calibrated
   * simulation. Unlike AIMET, which gathers activation ranges with weights already
   * quantized, the statistics here do not depend on any quantizer's settings, so
   * every derived simulation (other bit-widths, schemes, range methods) reuses
   * them, and a 32-bit simulation reproduces FP32.
   */
  async calibrate(data: Dataset, options: { onProgress?: ProgressFn } = {}): Promise<QuantSim> {
    const activationSites = new Map(this.sites.filter((s) => s.kind === "activation").map((s) => [s.node, s.name]));
    const stats = new Map<string, TensorStats>([...activationSites.values()].map((name) => [name, new TensorStats()]));
    const hook: NodeHook = (node, out) => {
      const name = activationSites.get(node.name);
      if (!name) return;
      try {
        stats.get(name)!.update(out);
      } catch (err) {
        throw new Error(`calibration: quantizer "${name}": ${(err as Error).message}`);
      }
    };
    if (onnxCanRun(this.graph, [])) {
      await runTaps(this.graph, data, [...activationSites.keys()], (node, values) => {
        const name = activationSites.get(node)!;
        try {
          stats.get(name)!.addValues(values);
        } catch (err) {
          throw new Error(`calibration: quantizer "${name}": ${(err as Error).message}`);
        }
      }, { onProgress: options.onProgress, task: "calibration" });
    } else {
      await runDataset(this.graph, data, { hook, onProgress: options.onProgress, task: "calibration" });
    }
    return new QuantSim(this.graph, this.config, { ...this.state, stats });
  }

  /** The statistics calibration collected for an activation quantizer. */
  statsOf(name: string): TensorStats | undefined {
    return this.state.stats?.get(name);
  }

  settingsOf(name: string): QuantizerSettings {
    this.site(name);
    return this.settings.get(name)!;
  }

  /** The quantizer's encoding under its current settings; null when it is bypassed. */
  encodingOf(name: string): Encoding | Encoding[] | null {
    if (!this.encodings.has(name)) this.encodings.set(name, this.computeEncodingOf(this.site(name)));
    return this.encodings.get(name)!;
  }

  quantizers(): QuantizerInfo[] {
    return this.sites.map((s) => ({ ...s, ...this.settings.get(s.name)!, encoding: this.encodingOf(s.name) }));
  }

  /**
   * What a weight or bias quantizer hands to its layer: the parameter
   * quantize-dequantized (or the frozen AdaRound values), in the parameter's
   * shape; undefined when the quantizer is bypassed. The simulation owns it.
   */
  quantizedParam(name: string): tf.Tensor | undefined {
    const site = this.site(name);
    if (site.kind === "activation") throw new Error(`quantizedParam: "${name}" quantizes an activation, not a parameter`);
    if (!this.encodingOf(name)) return undefined;
    return this.paramsOverride().get(site.node)![site.param!];
  }

  /**
   * `value` quantize-dequantized the way this simulation quantizes parameter
   * quantizer `name`: its encoding (or `options.encoding`), per channel on its
   * axis, with its rounding and seed (or `options.seed`). For values that are not
   * the graph's own, such as QAT's weights while they train (the fake-quant
   * gradient passes straight through). The caller owns the result; the reshapes
   * around the per-channel kernel are left to the caller's scope (call it inside
   * `tf.tidy` or a gradient function, which must see them).
   */
  quantizeParamValue(name: string, value: tf.Tensor, options: { encoding?: Encoding | Encoding[]; seed?: number } = {}): tf.Tensor {
    const site = this.site(name);
    if (site.kind === "activation") throw new Error(`quantizeParamValue: "${name}" quantizes an activation, not a parameter`);
    const enc = options.encoding ?? this.encodingOf(name);
    if (!enc) throw new Error(`quantizeParamValue: quantizer "${name}" is bypassed or has no range yet`);
    const { rounding } = this.settings.get(name)!;
    const y = fakeQuant(site.channelShape ? tf.reshape(value, site.channelShape) : value, enc, { axis: site.channelAxis, rounding, seed: options.seed ?? this.seedFor(name) });
    return site.channelShape ? tf.reshape(y, value.shape) : y;
  }

  /** Runs one batch through the simulation; the caller owns the returned tensors. */
  forward(inputs: GraphInputs, options: Omit<ForwardOptions, "params"> = {}): tf.Tensor[] {
    return forward(this.graph, inputs, { ...options, params: this.paramsOverride(), hook: this.hookWith(options.hook) });
  }

  /** Runs the simulation over a dataset, batch by batch (see runDataset). */
  run(data: Dataset, options: Omit<RunDatasetOptions, "params"> = {}): Promise<RunSummary> {
    return runDataset(this.graph, data, { ...options, params: this.paramsOverride(), hook: this.hookWith(options.hook) });
  }

  /** The activation quantizers' hook, then the caller's (which sees quantized outputs). */
  private hookWith(user: NodeHook | undefined): NodeHook {
    const quantize = this.activationHook();
    if (!user) return quantize;
    return (node, out) => {
      const q = quantize(node, out) ?? out;
      return user(node, q) ?? q;
    };
  }

  /** Frees the quantized weights this simulation made (the graph stays). */
  dispose(): void {
    tf.dispose(this.ownedParams);
    this.ownedParams = [];
    this.quantizedParams = undefined;
  }

  private site(name: string): QuantizerSite {
    const s = this.sites.find((x) => x.name === name);
    if (!s) throw new Error(`no quantizer named "${name}" (quantizers: ${this.sites.slice(0, 6).map((x) => x.name).join(", ")}${this.sites.length > 6 ? ", ..." : ""})`);
    return s;
  }

  private computeEncodingOf(site: QuantizerSite): Encoding | Encoding[] | null {
    const s = this.settings.get(site.name)!;
    if (!s.enabled) return null;
    const fixed = this.state.fixed.get(site.name);
    const first = Array.isArray(fixed) ? fixed[0] : fixed;
    if (fixed && first && first.bitwidth === s.bitwidth && first.scheme === s.scheme) return fixed;
    if (s.range) return computeEncoding(s.range.min, s.range.max, s.bitwidth, s.scheme);
    if (site.kind === "activation") {
      const stats = this.state.stats?.get(site.name);
      if (!stats) throw new Error(`quantizer "${site.name}" has no range yet: calibrate the simulation first (sim = await sim.calibrate(data))`);
      const r = rangeFromStats(stats, s.rangeMethod, { bitwidth: s.bitwidth, scheme: s.scheme, percentile: s.percentile });
      return computeEncoding(r.min, r.max, s.bitwidth, s.scheme);
    }
    const method = s.rangeMethod === "mse" ? "mse" : "minmax";
    const t = this.paramTensor(site);
    try {
      if (s.perChannel) {
        const ranges = weightRange(t, method, { bitwidth: s.bitwidth, scheme: s.scheme, axis: site.channelAxis }) as { min: number; max: number }[];
        return ranges.map((r) => computeEncoding(r.min, r.max, s.bitwidth, s.scheme));
      }
      const r = weightRange(t, method, { bitwidth: s.bitwidth, scheme: s.scheme }) as { min: number; max: number };
      return computeEncoding(r.min, r.max, s.bitwidth, s.scheme);
    } catch (err) {
      throw new Error(`quantizer "${site.name}": ${(err as Error).message}`);
    } finally {
      if (t !== this.graph.node(site.node).params[site.param!]) t.dispose();
    }
  }

  /** The parameter, reshaped so that its output channels lie on `channelAxis` (a new tensor when reshaped). */
  private paramTensor(site: QuantizerSite): tf.Tensor {
    const t = this.graph.node(site.node).params[site.param!];
    return site.channelShape ? tf.reshape(t, site.channelShape) : t;
  }

  /** Quantized weights by node, made once per simulation. */
  private paramsOverride(): Map<string, Params> {
    if (this.quantizedParams) return this.quantizedParams;
    const out = new Map<string, Params>();
    for (const site of this.sites) {
      if (site.kind === "activation") continue;
      const enc = this.encodingOf(site.name);
      if (!enc) continue;
      const node = this.graph.node(site.node);
      const frozen = this.frozenWeightOf(site.name);
      const q = frozen ? tf.tensor(frozen.values, frozen.shape) : tf.tidy(() => this.quantizeParamValue(site.name, node.params[site.param!], { encoding: enc }));
      // Only the quantized tensors are ours; the other entries point at the graph's own.
      this.ownedParams.push(q);
      const params = out.get(site.node) ?? { ...node.params };
      params[site.param!] = q;
      out.set(site.node, params);
    }
    this.quantizedParams = out;
    return out;
  }

  /** The hook that fake-quantizes every enabled activation quantizer's node output. */
  private activationHook(): NodeHook {
    const byNode = new Map<string, { enc: Encoding; rounding: QuantizerSettings["rounding"]; seed: number }>();
    for (const site of this.sites) {
      if (site.kind !== "activation") continue;
      const enc = this.encodingOf(site.name);
      if (enc) byNode.set(site.node, { enc: enc as Encoding, rounding: this.settings.get(site.name)!.rounding, seed: this.seedFor(site.name) });
    }
    return (node, out) => {
      const q = byNode.get(node.name);
      return q ? fakeQuant(out, q.enc, { rounding: q.rounding, seed: q.seed }) : undefined;
    };
  }

  private seedFor(name: string): number {
    let h = this.config.seed ?? 0;
    for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
    return h >>> 0;
  }
}

/** Settings per quantizer: defaults by kind, config per kind, then overrides in order. */
function resolveSettings(sites: readonly QuantizerSite[], config: QuantSimConfig, layers: readonly Record<string, SettingsPatch>[]): Map<string, QuantizerSettings> {
  const base: Record<QuantizerKind, QuantizerSettings> = {
    weight: { ...DEFAULT_WEIGHTS, ...normalizePatch(config.weights ?? {}, "weights") },
    activation: { ...DEFAULT_ACTIVATIONS, ...normalizePatch(config.activations ?? {}, "activations") },
    bias: { ...DEFAULT_BIASES, ...normalizePatch(typeof config.biases === "object" ? config.biases : {}, "biases") },
  };
  const overrides = [config.overrides, ...layers].flatMap((o) => compileOverrides(o as Record<string, unknown> | undefined));
  for (const o of overrides) {
    if (!sites.some((s) => o.matches(s.name) || o.matches(s.node))) {
      throw new Error(`override "${o.pattern}" matches no quantizer (quantizer names look like ${sites.slice(0, 3).map((s) => `"${s.name}"`).join(", ")})`);
    }
  }
  return new Map(
    sites.map((s) => {
      let settings = { ...base[s.kind] };
      for (const o of overrides) if (o.matches(s.name) || o.matches(s.node)) settings = { ...settings, ...o.patch };
      if (s.kind === "activation") settings.perChannel = false;
      return [s.name, settings];
    }),
  );
}
