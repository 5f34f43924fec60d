import * as tf from "@tensorflow/tfjs";
import { classIndices } from "../eval/class-labels";
import { Graph } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";
import { computeEncoding, Encoding } from "../quant/encoding";
import { fakeQuant } from "../quant/fake-quant";
import { QuantSim } from "../quant/quantsim";
import { forward, NodeHook } from "../graph/forward";
import { learnedRangeFakeQuant, projectRange } from "./learned-range";
import { QatLoss } from "./qat-options";
import { HostExamples, gather } from "./qat-data";
import { ClassifierOutput, softmaxKl } from "./qat-losses";

/** The model QAT trains: the simulation's graph over variables, fake quantizers with straight-through gradients, learned ranges, one training step. */
/** A learned activation range next to the calibrated one. */
export interface LearnedRangeRow {
  quantizer: string;
  before: { min: number; max: number };
  after: { min: number; max: number };
}



/**
 * The graph rewritten for gradients, sharing the given parameters: a conv/dense
 * node with a fused activation tfjs has no fused gradient for (anything but
 * linear and relu) becomes the linear op, named `<node>/qat_linear`, then the
 * activation under the node's own name, so quantizers and readers are unchanged.
 * `logits` names the node whose output a softmax classifier is trained on.
 */
export function forTraining(graph: Graph, paramsOf: (node: GraphNode) => Params): { graph: Graph; paramNode: Map<string, string>; logits?: string } {
  const nodes: GraphNode[] = [];
  const paramNode = new Map<string, string>();
  for (const node of graph.nodes) {
    const act = node.attrs.activation;
    if (typeof act === "string" && act !== "linear" && act !== "relu" && node.op !== "activation") {
      const linear = `${node.name}/qat_linear`;
      if (graph.has(linear)) throw new Error(`qat: cannot split the fused activation of "${node.name}": a node named "${linear}" exists`);
      nodes.push({ ...node, name: linear, attrs: { ...node.attrs, activation: "linear" }, params: paramsOf(node) });
      nodes.push({ name: node.name, op: "activation", layerClass: node.layerClass, inputs: [linear], params: {}, attrs: { fn: act }, outputShape: node.outputShape });
      paramNode.set(node.name, linear);
    } else {
      nodes.push({ ...node, params: paramsOf(node) });
      paramNode.set(node.name, node.name);
    }
  }
  const out = graph.node(graph.outputs[0]);
  let logits: string | undefined;
  if (graph.outputs.length === 1 && out.op === "activation" && out.attrs.fn === "softmax") logits = out.inputs[0];
  else if (graph.outputs.length === 1 && out.attrs.activation === "softmax") logits = `${out.name}/qat_linear`;
  return { graph: new Graph({ name: graph.name, nodes, inputs: [...graph.inputs], outputs: [...graph.outputs] }), paramNode, logits };
}

/** Parameters that are statistics, not weights: BatchNorm's moving mean and variance stay fixed. */
const FROZEN_PARAMS = new Set(["moving_mean", "moving_variance"]);

interface TrainingModel {
  /** Same nodes and names as the simulation's graph, parameters = variables (or the original, frozen ones). */
  varGraph: Graph;
  /** `varGraph` rewritten for gradients (see forTraining). */
  train: ReturnType<typeof forTraining>;
  weights: tf.Variable[];
  /** Learned [min, max] per activation quantizer. */
  ranges: Map<string, tf.Variable>;
  snapshotSim(): QuantSim;
  weightEncodings(): Map<string, Encoding | Encoding[]>;
  /** The weights as the simulation sees them: fake-quantized variables (straight-through gradient), by training-graph node. */
  simulatedParams(encodings: Map<string, Encoding | Encoding[]>, roundingSeed: number): Map<string, Params>;
  activationQuantizers(): Map<string, (x: tf.Tensor) => tf.Tensor>;
  projectRanges(): void;
  learnedEncodings(): Map<string, Encoding>;
  learnedRangeRows(): LearnedRangeRow[];
  trainedGraph(): Graph;
  dispose(): void;
}

export function makeTrainingModel(sim: QuantSim, activationEncodings: Map<string, Encoding | null>, learnRanges: boolean): TrainingModel {
  const weights: tf.Variable[] = [];
  const ranges = new Map<string, tf.Variable>();
  const source = sim.graph;
  try {
    const nodes = source.nodes.map((node) => {
      const params: Params = {};
      for (const [k, t] of Object.entries(node.params)) {
        if (FROZEN_PARAMS.has(k) || t.dtype !== "float32") params[k] = t;
        else {
          const v = tf.variable(t, true);
          weights.push(v);
          params[k] = v;
        }
      }
      return { ...node, params };
    });
    if (weights.length === 0) throw new Error(`qat: graph "${source.name}" has no trainable weights (no float parameters besides BatchNorm statistics)`);
    const varGraph = new Graph({ name: source.name, nodes, inputs: [...source.inputs], outputs: [...source.outputs] });
    const train = forTraining(varGraph, (n) => n.params);
    const activationSites = sim.sites.filter((s) => s.kind === "activation");
    const paramSites = sim.sites.filter((s) => s.kind !== "activation");
    const schemes = new Map(activationSites.map((s) => [s.name, sim.settingsOf(s.name).scheme]));
    const initial = new Map<string, { min: number; max: number }>();
    if (learnRanges) {
      for (const site of activationSites) {
        const enc = activationEncodings.get(site.name);
        if (!enc) continue;
        initial.set(site.name, { min: enc.min, max: enc.max });
        const init = tf.tensor1d([enc.min, enc.max]);
        ranges.set(site.name, tf.variable(init, true));
        init.dispose();
      }
    }
    const rangeValues = (name: string) => {
      const [min, max] = ranges.get(name)!.dataSync();
      return { min, max };
    };
    const learnedEncoding = (name: string): Encoding => {
      const { min, max } = rangeValues(name);
      const enc = activationEncodings.get(name)!;
      return computeEncoding(min, max, enc.bitwidth, schemes.get(name)!);
    };
    const model: TrainingModel = {
      varGraph,
      train,
      weights,
      ranges,
      snapshotSim() {
        const snapshot = sim.withGraph(varGraph, { keepStats: true });
        return ranges.size ? snapshot.withEncodings(model.learnedEncodings()) : snapshot;
      },
      weightEncodings() {
        // A simulation over the current weights computes their encodings with the simulation's own rules.
        const current = sim.withGraph(varGraph, { keepStats: true });
        const out = new Map<string, Encoding | Encoding[]>();
        for (const site of current.sites) {
          if (site.kind === "activation") continue;
          const enc = current.encodingOf(site.name);
          if (enc) out.set(site.name, enc);
        }
        return out;
      },
      simulatedParams(encodings, roundingSeed) {
        const out = new Map<string, Params>();
        for (const site of paramSites) {
          const enc = encodings.get(site.name);
          if (!enc) continue;
          const node = train.graph.node(train.paramNode.get(site.node)!);
          const v = node.params[site.param!];
          // The simulation's own quantizer, applied to the weight being trained (a new seed each step).
          const params = out.get(node.name) ?? { ...node.params };
          params[site.param!] = sim.quantizeParamValue(site.name, v, { encoding: enc, seed: seedOf(site.name, roundingSeed) });
          out.set(node.name, params);
        }
        return out;
      },
      activationQuantizers() {
        const out = new Map<string, (x: tf.Tensor) => tf.Tensor>();
        for (const site of activationSites) {
          const enc = activationEncodings.get(site.name);
          if (!enc) continue;
          const range = ranges.get(site.name);
          if (range) {
            const { min, max } = rangeValues(site.name);
            const current = { min, max, bitwidth: enc.bitwidth, scheme: schemes.get(site.name)! };
            out.set(site.node, (x) => learnedRangeFakeQuant(x, range, current));
          } else {
            out.set(site.node, (x) => fakeQuant(x, enc));
          }
        }
        return out;
      },
      projectRanges() {
        for (const [name, v] of ranges) {
          const { min, max } = rangeValues(name);
          const [lo, hi] = projectRange(min, max);
          if (lo !== min || hi !== max) tf.tidy(() => v.assign(tf.tensor1d([lo, hi])));
        }
      },
      learnedEncodings() {
        return new Map([...ranges.keys()].map((name) => [name, learnedEncoding(name)]));
      },
      learnedRangeRows() {
        return [...ranges.keys()].map((quantizer) => {
          const enc = learnedEncoding(quantizer);
          return { quantizer, before: initial.get(quantizer)!, after: { min: enc.min, max: enc.max } };
        });
      },
      trainedGraph() {
        // The trained weights replace the source's through Graph.edit, so the export and reports see what QAT changed.
        const trained = new Map<string, Params>();
        for (const node of source.nodes) {
          const changed = Object.entries(varGraph.node(node.name).params).filter(([k]) => weights.includes(varGraph.node(node.name).params[k] as tf.Variable));
          if (changed.length) trained.set(node.name, Object.fromEntries(changed.map(([k, t]) => [k, tf.clone(t)])));
        }
        return source.edit({ by: "qat", params: trained });
      },
      dispose() {
        tf.dispose(weights);
        tf.dispose([...ranges.values()]);
      },
    };
    return model;
  } catch (err) {
    tf.dispose(weights);
    tf.dispose([...ranges.values()]);
    throw err;
  }
}

interface StepContext {
  loss: QatLoss;
  classifier: ClassifierOutput | undefined;
  teacher: ReturnType<typeof forTraining> | undefined;
  weightOptimizer: tf.Optimizer;
  rangeOptimizer: tf.Optimizer | undefined;
  /** Seeds the weights' stochastic rounding (if the simulation uses it): run seed + steps done. */
  roundingSeed: number;
}

/** One optimizer step on the examples `indices`; returns the batch's loss (before the step). */
export function trainStep(model: TrainingModel, examples: HostExamples, indices: readonly number[], ctx: StepContext): number {
  const weightEncodings = model.weightEncodings();
  const quantizers = model.activationQuantizers();
  const train = model.train;
  const useLogits = ctx.loss !== "mse" && ctx.classifier?.kind === "softmax" && train.logits !== undefined;
  const targets = useLogits ? [train.logits!] : [...train.graph.outputs];
  const inputs = examples.inputs.map((c) => gather(c, indices));
  const labels = examples.labels ? gather(examples.labels, indices) : undefined;
  let teacherOut: tf.Tensor[] | undefined;
  try {
    if (ctx.teacher) teacherOut = forward(ctx.teacher.graph, inputs, { outputs: useLogits ? [ctx.teacher.logits!] : undefined });
    const hook: NodeHook = (node, out) => quantizers.get(node.name)?.(out);
    const lossFn = (): tf.Scalar => {
      const params = model.simulatedParams(weightEncodings, ctx.roundingSeed);
      const outputs = forward(train.graph, inputs, { params, hook, outputs: targets });
      switch (ctx.loss) {
        case "crossentropy": {
          const classes = ctx.classifier!.classes;
          const onehot = labels!.rank === 1 ? tf.oneHot(classIndices(labels!) as tf.Tensor1D, classes).toFloat() : labels!;
          return tf.losses.softmaxCrossEntropy(onehot, outputs[0]) as tf.Scalar;
        }
        case "mse":
          return tf.losses.meanSquaredError(labels!, outputs[0]) as tf.Scalar;
        case "distillation":
          if (ctx.classifier) return softmaxKl(teacherOut![0], outputs[0]);
          return tf.div(tf.addN(outputs.map((o, i) => tf.losses.meanSquaredError(teacherOut![i], o))), outputs.length) as tf.Scalar;
      }
    };
    const variables = [...model.weights, ...model.ranges.values()];
    const { value, grads } = tf.variableGrads(lossFn, variables);
    try {
      const rangeNames = new Set([...model.ranges.values()].map((v) => v.name));
      const weightGrads: tf.NamedTensorMap = {};
      const rangeGrads: tf.NamedTensorMap = {};
      for (const [name, g] of Object.entries(grads)) (rangeNames.has(name) ? rangeGrads : weightGrads)[name] = g;
      ctx.weightOptimizer.applyGradients(weightGrads);
      if (ctx.rangeOptimizer && Object.keys(rangeGrads).length) ctx.rangeOptimizer.applyGradients(rangeGrads);
      model.projectRanges();
      return value.dataSync()[0];
    } finally {
      value.dispose();
      tf.dispose(Object.values(grads));
    }
  } finally {
    tf.dispose(inputs);
    labels?.dispose();
    if (teacherOut) tf.dispose(teacherOut);
  }
}

/** A per-quantizer seed for stochastic rounding. */
function seedOf(name: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return h >>> 0;
}
